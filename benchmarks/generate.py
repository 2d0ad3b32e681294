"""Generate a realistic definitions repo: N metrics of every kind spread over F files.

    python benchmarks/generate.py OUT_DIR --metrics 10000 --files 100 [--project bench] [--ui-made]

Also writes OUT_DIR/seed.json: the same metrics for `metrics-sync emulator --seed`, as metrics-sync
would have created them (so a plan over the repo starts in sync). With --ui-made the seed instead looks
like a project people built in LaunchDarkly's UI: no ownership tag, and a few metrics metrics-sync
cannot fully express (a trace metric, event filters, a warehouse data source) plus archived ones —
the input for `metrics-sync export`.
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


def split(n_metrics: int, n_files: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """The N metrics (deterministic for a seed), and the same metrics cut into at most F files' worth."""
    rng = random.Random(seed)
    metrics = [metric(i, rng) for i in range(n_metrics)]
    per_file = -(-n_metrics // n_files)
    return metrics, [metrics[i:i + per_file] for i in range(0, n_metrics, per_file)]


def generate(out: Path, n_metrics: int, n_files: int, project: str, seed: int = 7) -> list[dict[str, Any]]:
    metrics, files = split(n_metrics, n_files, seed)
    folder = out / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    for f, chunk in enumerate(files):
        team = TEAMS[f % len(TEAMS)]
        body = [MODELINE, f"# Generated benchmark definitions, file {f}.\n", f"project: {project}\n",
                f"defaults:\n  tags: [{team}]\n  analysisUnits: [user]\n", "metrics:\n"]
        body.extend(_yaml_metric(m) for m in chunk)
        (folder / f"{team}-{f:03d}.yaml").write_text("".join(body), encoding="utf-8")
    return metrics


def seed_metrics(metrics: list[dict[str, Any]], n_files: int, ownership_tag: str | None) -> list[dict[str, Any]]:
    """The metrics as LaunchDarkly holds them after an apply of the generated files."""
    per_file = -(-len(metrics) // n_files)
    seeded = []
    for i, m in enumerate(metrics):
        team = TEAMS[(i // per_file) % len(TEAMS)]
        tags = sorted({team, *m.get("tags", []), *([ownership_tag] if ownership_tag else [])})
        seeded.append({**m, "tags": tags, "analysisUnits": ["user"]})
    return seeded


def ui_extras(project: str) -> list[dict[str, Any]]:
    """Metrics a UI-built project has that metrics-sync cannot fully express, and archived ones."""
    return [
        {"key": "api-latency-trace", "name": "API latency (trace)", "kind": "trace", "isNumeric": True,
         "traceQuery": 'service.name = "api"', "traceValueLocation": "duration", "unit": "ms",
         "successCriteria": "LowerThanBaseline"},
        {"key": "pro-plan-upgrades", "name": "Upgrades to Pro", "kind": "custom", "eventKey": "upgrade",
         "isNumeric": False, "tags": ["growth"],
         "filters": {"type": "eventProperty", "attribute": "plan", "op": "in", "values": ["pro"], "negate": False}},
        {"key": "warehouse-revenue", "name": "Revenue (warehouse)", "kind": "custom", "eventKey": "revenue",
         "isNumeric": True, "unit": "USD", "successCriteria": "HigherThanBaseline", "tags": ["payments"],
         "dataSource": {"key": "snowflake-prod", "environmentKey": "production"}},
        {"key": "old-banner-click", "name": "Old banner click", "kind": "click", "selector": "#banner",
         "urls": [{"kind": "exact", "url": "https://shop.example.com/"}], "archived": True},
        {"key": "old-signup", "name": "Old signup", "kind": "custom", "eventKey": "signup-v1",
         "isNumeric": False, "archived": True, "experimentCount": 4},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--project", default="bench")
    parser.add_argument("--ui-made", action="store_true", help="seed a UI-built project (for export)")
    args = parser.parse_args()
    metrics = generate(args.out, args.metrics, args.files, args.project)
    seeded = seed_metrics(metrics, args.files, None if args.ui_made else "managed-by-metrics-sync")
    if args.ui_made:
        seeded += ui_extras(args.project)
    (args.out / "seed.json").write_text(json.dumps({"projects": {args.project: seeded}}), encoding="utf-8")
    print(f"wrote {len(metrics)} metrics in {min(args.files, len(metrics))} files under {args.out / 'metrics'}, "
          f"and {len(seeded)} metrics to {args.out / 'seed.json'}")


if __name__ == "__main__":
    main()
