"""Apply under faults: 200 mixed changes converge with no duplicate create, no lost or doubled update, and
exact accounting, under every fault the emulator can inject (in-process, and once over loopback)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from metrics_sync.emulator import EmulatorApp, Faults, Store
from metrics_sync.emulator.server import serve_in_thread
from tests.conftest import TOKEN, FakeClock, run_cli
from tests.faults import FaultTransport

OWNER = "managed-by-metrics-sync"
CREATES, UPDATES, ARCHIVES = 100, 70, 30  # 200 changes


def metric(i: int, *, name: str = "Metric") -> dict[str, Any]:
    kinds: list[dict[str, Any]] = [
        {"kind": "custom", "eventKey": f"e{i}", "isNumeric": False},
        {"kind": "custom", "eventKey": f"e{i}", "isNumeric": False, "unitAggregationType": "sum"},
        {"kind": "custom", "eventKey": f"e{i}", "isNumeric": True, "unit": "ms",
         "successCriteria": "LowerThanBaseline"},
        {"kind": "pageview", "urls": [{"kind": "substring", "substring": f"/p{i}"}]},
        {"kind": "click", "selector": f"#b{i}", "urls": [{"kind": "exact", "url": f"https://x.test/{i}"}]},
    ]
    return {"key": f"m{i:03d}", "name": f"{name} {i}", **kinds[i % len(kinds)]}


def scenario(root: Path) -> tuple[Store, dict[str, int]]:
    """Remote: 100 managed metrics. YAML: 70 of them renamed, 100 new ones; the other 30 left (archived)."""
    root.mkdir()
    store = Store(["shop"])
    existing = [{**metric(i), "tags": [OWNER]} for i in range(UPDATES + ARCHIVES)]
    store.seed({"projects": {"shop": existing}})
    desired = [metric(i, name="Renamed") for i in range(UPDATES)]
    desired += [metric(i) for i in range(1000, 1000 + CREATES)]
    (root / "metrics.yaml").write_text(yaml.safe_dump({"project": "shop", "metrics": desired}))
    versions = {m["key"]: store.get("shop", m["key"])["_version"] for m in existing}
    return store, versions


def converge(root: Path, app: EmulatorApp, clock: FakeClock | None, transport: Any = None,
             attempts: int = 8, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Run apply until it succeeds; returns every run's JSON result."""
    env = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"}
    runs = []
    for _ in range(attempts):
        result = run_cli("apply", "metrics.yaml", "--prune", "--auto-approve", "--format", "json", *extra,
                         env=env, cwd=root, transport=transport or FaultTransport(app), clock=clock)
        assert "Traceback" not in result.err
        if result.out:
            runs.append(json.loads(result.out))
        if result.code == 0:
            return runs
        assert result.code == 1, result.err
    raise AssertionError(f"apply did not converge in {attempts} runs")


def check_outcome(store: Store, app: EmulatorApp, versions: dict[str, int], runs: list[dict[str, Any]]) -> None:
    # Nothing duplicated: exactly one real create per new metric, one real write per update and archive.
    assert app.stats.writes["created"] == CREATES
    assert app.stats.writes["patched"] == UPDATES + ARCHIVES
    # No create was ever sent for a metric that existed (a retried guarded PATCH whose first attempt landed
    # is refused with 409 by its `test`, and counted as done once: see the accounting below).
    assert app.stats.route_statuses["POST /api/v2/metrics/{projectKey} 409"] == 0
    # Nothing lost or doubled: every update moved its metric exactly one version on.
    for i in range(UPDATES):
        record = store.get("shop", f"m{i:03d}")
        assert record["name"] == f"Renamed {i}" and record["_version"] == versions[record["key"]] + 1
    for i in range(UPDATES, UPDATES + ARCHIVES):
        record = store.get("shop", f"m{i:03d}")
        assert record["archived"] is True and record["_version"] == versions[record["key"]] + 1
    assert len(store.snapshot_metrics("shop")) == UPDATES + ARCHIVES + CREATES
    # Exact accounting: across runs, each change is reported done exactly once, or reported failed when its
    # request got no clear answer and the read that checks for it failed too: it landed (the store says so
    # above), and later runs find nothing left to do, so they cannot report it.
    done = [(r["key"], r["outcome"]) for run in runs for r in run["results"] if r["outcome"] != "failed"]
    assert len(done) == len(set(done))
    unreported = {f"m{i:03d}" for i in range(UPDATES + ARCHIVES)} | {f"m{i}" for i in range(1000, 1000 + CREATES)}
    unreported -= {key for key, _ in done}
    failed_checks = {r["key"] for run in runs for r in run["results"] if r["outcome"] == "failed"}
    assert unreported <= failed_checks
    assert len(done) + len(unreported) == CREATES + UPDATES + ARCHIVES
    totals = {k: sum(run["summary"][k] for run in runs) for k in ("created", "updated", "archived")}
    missing = {"created": sum(k.startswith("m1") and len(k) == 5 for k in unreported),
               "updated": sum(int(k[1:]) < UPDATES for k in unreported if len(k) == 4),
               "archived": sum(int(k[1:]) >= UPDATES for k in unreported if len(k) == 4)}
    assert {k: totals[k] + missing[k] for k in totals} == {"created": CREATES, "updated": UPDATES,
                                                             "archived": ARCHIVES}
    failed = sum(run["summary"]["failed"] for run in runs)
    assert failed == sum(1 for run in runs for r in run["results"] if r["outcome"] == "failed")


FAULTS = {
    "5xx": Faults(fail_rate=0.25),
    "reset": Faults(reset_rate=0.25),
    "timeout": Faults(timeout_rate=0.25),
    "429-retry-after": Faults(throttle_rate=0.1, throttle_header="retry-after"),
    "429-ratelimit-reset": Faults(throttle_rate=0.1, throttle_header="reset"),
    "slow": Faults(slow_rate=0.3, slow_ms=2000),
    "everything": Faults(fail_rate=0.1, reset_rate=0.1, timeout_rate=0.1, throttle_rate=0.05, slow_rate=0.1),
}


# `make stress` soaks every fault with many random seeds; `make test` runs one.
SEEDS = range(int(os.environ.get("METRICS_SYNC_STRESS_SEEDS", "1")))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", FAULTS)
def test_apply_converges_under_faults(name: str, seed: int, tmp_path: Path) -> None:
    store, versions = scenario(tmp_path / "repo")
    clock = FakeClock()
    app = EmulatorApp(store, token=TOKEN, faults=FAULTS[name], rng=random.Random(11 + seed), clock=clock,
                      sleep=clock.sleep)
    runs = converge(tmp_path / "repo", app, clock)
    check_outcome(store, app, versions, runs)
    assert sum(app.stats.faults.values()) > 0  # the faults really happened
    app.faults = Faults()
    final = run_cli("plan", "metrics.yaml", "--prune", "--detailed-exitcode", cwd=tmp_path / "repo",
                    env={"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"},
                    transport=FaultTransport(app))
    assert final.code == 0, final.out


@pytest.mark.slow
def test_apply_converges_under_faults_over_loopback(tmp_path: Path) -> None:
    store, versions = scenario(tmp_path / "repo")
    faults = Faults(fail_rate=0.05, reset_rate=0.05, timeout_rate=0.03, hang_seconds=1.0, throttle_rate=0.02,
                    burst_seconds=0.2)
    app = EmulatorApp(store, token=TOKEN, faults=faults, rng=random.Random(5))
    server, url = serve_in_thread(app)
    try:
        env = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": url}
        runs = []
        for _ in range(8):
            result = run_cli("apply", "metrics.yaml", "--prune", "--auto-approve", "--format", "json",
                             "--timeout", "0.3", "--parallelism", "8", env=env, cwd=tmp_path / "repo",
                             real_time=True)
            assert "Traceback" not in result.err
            runs.append(json.loads(result.out))
            if result.code == 0:
                break
        else:
            raise AssertionError("apply did not converge over loopback")
    finally:
        server.shutdown()
        server.server_close()
    check_outcome(store, app, versions, runs)
    assert app.stats.faults["reset"] > 0 and app.stats.faults["timeout"] > 0
