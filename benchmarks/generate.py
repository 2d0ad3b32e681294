"""Generate a realistic definitions repo: N metrics of every kind spread over F files.

    python benchmarks/generate.py OUT_DIR --metrics 10000 --files 100 [--project bench]

Also writes OUT_DIR/seed.json, the same metrics as LaunchDarkly would return them, for
`metrics-sync emulator --seed` (so a plan over the repo starts "in sync").
Deterministic: the same arguments always give the same files.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

MODELINE = "# yaml-language-server: $schema=../../schemas/metrics.schema.json\n"
TEAMS = ["checkout", "search", "growth", "payments", "catalog", "mobile", "platform", "support"]


def metric(i: int, rng: random.Random) -> dict[str, Any]:
    """The i-th metric: the kinds rotate so every file holds a mix."""
    key = f"m{i:05d}-{rng.choice(['orders', 'clicks', 'views', 'latency', 'revenue', 'signups'])}"
    base: dict[str, Any] = {"key": key, "name": f"Metric {i}", "description": f"Benchmark metric number {i}."}
    shape = i % 6
    if shape == 0:  # custom conversion binary
        base.update(kind="custom", eventKey=f"event-{i}", isNumeric=False, unitAggregationType="average")
    elif shape == 1:  # custom conversion count
        base.update(kind="custom", eventKey=f"event-{i}", isNumeric=False, unitAggregationType="sum")
    elif shape == 2:  # custom numeric
        base.update(kind="custom", eventKey=f"event-{i}", isNumeric=True, unit="USD",
                    successCriteria="HigherThanBaseline", unitAggregationType="sum")
    elif shape == 3:  # custom numeric, percentile
        base.update(kind="custom", eventKey=f"event-{i}", isNumeric=True, unit="ms",
                    successCriteria="LowerThanBaseline", analysisType="percentile", percentileValue=95,
                    eventDefault={"disabled": True})
    elif shape == 4:  # pageview
        base.update(kind="pageview", urls=[{"kind": "substring", "substring": f"/page-{i}"}])
    else:  # click
        base.update(kind="click", selector=f"#button-{i}",
                    urls=[{"kind": "exact", "url": f"https://shop.example.com/p/{i}"}])
    if rng.random() < 0.5:
        base["tags"] = sorted(rng.sample(["web", "mobile", "kpi", "guardrail", "revenue"], 2))
    return base


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar


def _yaml_metric(m: dict[str, Any]) -> str:
    lines = []
    first = True
    for k, v in m.items():
        prefix = "  - " if first else "    "
        first = False
        if isinstance(v, list) and v and isinstance(v[0], dict):
            lines.append(f"{prefix}{k}:")
            for item in v:
                inner = list(item.items())
                lines.append(f"      - {inner[0][0]}: {_yaml_scalar(inner[0][1])}")
                lines.extend(f"        {ik}: {_yaml_scalar(iv)}" for ik, iv in inner[1:])
        elif isinstance(v, list):
            lines.append(f"{prefix}{k}: [{', '.join(_yaml_scalar(x) for x in v)}]")
        elif isinstance(v, dict):
            lines.append(f"{prefix}{k}:")
            lines.extend(f"      {ik}: {_yaml_scalar(iv)}" for ik, iv in v.items())
        else:
            lines.append(f"{prefix}{k}: {_yaml_scalar(v)}")
    return "\n".join(lines) + "\n"


def generate(out: Path, n_metrics: int, n_files: int, project: str, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    metrics = [metric(i, rng) for i in range(n_metrics)]
    folder = out / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-n_metrics // n_files)
    for f in range(n_files):
        chunk = metrics[f * per_file:(f + 1) * per_file]
        if not chunk:
            break
        team = TEAMS[f % len(TEAMS)]
        body = [MODELINE, f"# Generated benchmark definitions, file {f}.\n", f"project: {project}\n",
                f"defaults:\n  tags: [{team}]\n  analysisUnits: [user]\n", "metrics:\n"]
        body.extend(_yaml_metric(m) for m in chunk)
        (folder / f"{team}-{f:03d}.yaml").write_text("".join(body), encoding="utf-8")
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--project", default="bench")
    args = parser.parse_args()
    metrics = generate(args.out, args.metrics, args.files, args.project)
    print(f"wrote {len(metrics)} metrics in {min(args.files, len(metrics))} files under {args.out / 'metrics'}")


if __name__ == "__main__":
    main()
