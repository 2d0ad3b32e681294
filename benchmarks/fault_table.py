"""Print the fault-injection table: for each fault, an apply of 200 mixed changes (100 creates, 70
updates, 30 archives) repeated until it succeeds, and what happened to every change.

    python benchmarks/fault_table.py [--seeds 3]

It drives the same scenario as tests/apply/test_faults.py (in-process emulator, FaultTransport), and counts from
the emulator's side: duplicated = creates LaunchDarkly refused because the metric already existed, plus
writes beyond one per change; lost = changes whose metric does not end in the desired state.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metrics_sync.emulator import EmulatorApp, Faults
from tests.apply.test_faults import ARCHIVES, CREATES, FAULTS, UPDATES, converge, scenario
from tests.conftest import FakeClock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    # A harsher mix than the tests use, so some changes exhaust their retries and a later run finishes them.
    table = {**FAULTS, "harsh (35% 5xx, 20% reset, 10% hang)": Faults(fail_rate=0.35, reset_rate=0.2, timeout_rate=0.1)}
    print(f"{'fault':<34} {'attempted':>9} {'runs':>5} {'succeeded':>9} {'failed (then retried)':>22} "
          f"{'duplicated':>10} {'lost':>5}  faults injected")
    for name, faults in table.items():
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp) / "repo"
                store, versions = scenario(root)
                clock = FakeClock()
                app = EmulatorApp(store, token="api-0123456789abcdef-secret-token", faults=faults,
                                  rng=random.Random(11 + seed), clock=clock, sleep=clock.sleep)
                runs = converge(root, app, clock)
            succeeded = sum(1 for run in runs for r in run["results"] if r["outcome"] != "failed")
            failed = sum(1 for run in runs for r in run["results"] if r["outcome"] == "failed")
            duplicated = (app.stats.route_statuses["POST /api/v2/metrics/{projectKey} 409"]
                          + app.stats.writes["created"] - CREATES
                          + app.stats.writes["patched"] - UPDATES - ARCHIVES)
            lost = 0
            for i in range(UPDATES):
                record = store.get("shop", f"m{i:03d}")
                lost += record["name"] != f"Renamed {i}" or record["_version"] != versions[record["key"]] + 1
            for i in range(UPDATES, UPDATES + ARCHIVES):
                lost += not store.get("shop", f"m{i:03d}")["archived"]
            lost += CREATES - sum(1 for i in range(1000, 1000 + CREATES)
                                  if any(m["key"] == f"m{i:03d}" for m in store.snapshot_metrics("shop")))
            injected = ", ".join(f"{k} {v}" for k, v in sorted(app.stats.faults.items()))
            print(f"{name + f' (seed {seed})':<34} {CREATES + UPDATES + ARCHIVES:>9} {len(runs):>5} {succeeded:>9} "
                  f"{failed:>22} {duplicated:>10} {lost:>5}  {injected}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
