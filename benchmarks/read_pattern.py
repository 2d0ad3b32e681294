"""Two ways to read a project's metrics, for the read-pattern benchmark (benchmarks/run.py).

    python benchmarks/read_pattern.py paged URL PROJECT
    python benchmarks/read_pattern.py per-metric URL PROJECT KEYS.json

`paged` is what metrics-sync plan does: list calls of 50 metrics. `per-metric` is the Terraform
provider's documented refresh: one GET per metric from its state, one at a time (concurrency 1). Both use
metrics-sync's client, so only the access pattern differs. The token comes from LD_ACCESS_TOKEN.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from metrics_sync.core.resources import METRIC
from metrics_sync.launchdarkly.client import Client


def main() -> int:
    mode, url, project = sys.argv[1:4]
    with Client(url, os.environ["LD_ACCESS_TOKEN"]) as client:
        if mode == "paged":
            count = len(client.list_items(METRIC, project))
        else:
            keys = json.loads(Path(sys.argv[4]).read_text())
            count = sum(1 for key in keys if client.get_item(METRIC, project, key))
    print(f"read {count} metrics")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
