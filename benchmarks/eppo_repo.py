"""Write the metrics of `generate.py` in eppo-metrics-sync's YAML format, for a like-for-like comparison.

    python benchmarks/eppo_repo.py OUT_DIR --metrics 10000 --files 100

Each file holds one fact source (one fact per metric) and its metrics, mapped from LaunchDarkly's types:
conversion binary -> distinct_entity, conversion count / pageview / click -> count, numeric -> sum,
percentile -> a percentile metric (0.95).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from generate import split


def eppo_metric(m: dict[str, Any], fact: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": m["name"], "entity": "User"}
    if m.get("analysisType") == "percentile":
        out.update(type="percentile", percentile={"fact_name": fact, "percentile_value": 0.95})
    elif m["kind"] == "custom" and m.get("isNumeric"):
        out["numerator"] = {"fact_name": fact, "operation": "sum"}
    elif m["kind"] == "custom" and m.get("unitAggregationType") == "average":
        out["numerator"] = {"fact_name": fact, "operation": "distinct_entity"}
    else:
        out["numerator"] = {"fact_name": fact, "operation": "count"}
    return out


def write(out: Path, n_metrics: int, n_files: int, seed: int = 7) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for f, chunk in enumerate(split(n_metrics, n_files, seed)[1]):
        facts = [{"name": f"{m['key']} fact", "column": "value"} for m in chunk]
        doc = {
            "fact_sources": [{"name": f"Events {f}", "sql": f"select * from events_{f}",
                              "timestamp_column": "ts", "entities": [{"entity_name": "User", "column": "user_id"}],
                              "facts": facts}],
            "metrics": [eppo_metric(m, fact["name"]) for m, fact in zip(chunk, facts, strict=True)],
        }
        (out / f"eppo-{f:03d}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()
    write(args.out, args.metrics, args.files)


if __name__ == "__main__":
    main()
