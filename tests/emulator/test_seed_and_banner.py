"""The example seed a user tries first holds something of each kind, and the banner names every token the
emulator accepts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx

from metrics_sync.emulator import EmulatorApp, Store
from tests.conftest import ROOT

SEED = ROOT / "examples" / "emulator-seed.json"


def test_the_example_seed_holds_metrics_groups_experiments_and_a_guarded_rollout() -> None:
    data = json.loads(SEED.read_text())
    assert {"projects", "metricGroups", "experiments", "guardedRollouts", "environments", "holdouts",
            "releasePolicies"} <= set(data)
    store = Store(["shop"])
    store.seed(data)
    app = EmulatorApp(store, token="t")
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://127.0.0.1") as client:
        metrics = client.get("/api/v2/metrics/shop", headers={"Authorization": "t"}).json()
        beta = {"Authorization": "t", "LD-API-Version": "beta"}
        groups = client.get("/api/v2/projects/shop/metric-groups", headers=beta).json()
        group = client.get("/api/v2/projects/shop/metric-groups/growth-guardrails", params={"expand": "experiments"},
                           headers=beta).json()
        holdouts = client.get("/api/v2/projects/shop/environments/production/holdouts",
                              headers={"Authorization": "t"}).json()
        holdout = client.get("/api/v2/projects/shop/environments/production/holdouts/growth-holdout",
                             headers={"Authorization": "t"}).json()
        policies = client.get("/api/v2/projects/shop/release-policies", headers=beta).json()
    # The third: a managed metric whose definition was deleted (health's `undefined` finding).
    assert sorted(m["key"] for m in metrics["items"]) == ["newsletter-signup", "signup-completed", "wishlist-added"]
    # The events LaunchDarkly has seen give the metrics their lastSeen (A50).
    assert all(isinstance(m.get("lastSeen"), int) for m in metrics["items"])
    assert [g["key"] for g in groups["items"]] == ["growth-guardrails"]
    assert [e["key"] for e in group["experiments"]] == ["signup-flow"]
    assert [h["key"] for h in holdouts["items"]] == ["growth-holdout"] and holdouts["total_count"] == 1
    assert [m["key"] for m in holdout["baseExperiment"]["currentIteration"]["metrics"]] == ["signup-completed"]
    assert policies["items"][0]["guardedReleaseConfig"]["metricGroupKeys"] == ["growth-guardrails"]
    # The docs say where to find it.
    assert "examples/emulator-seed.json" in (ROOT / "docs" / "emulator.md").read_text()


def test_the_banner_prints_the_reader_token_when_there_is_one() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "metrics_sync", "emulator", "--port", "0", "--token", "t0k",
                             "--reader-token", "r3ad"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert lines[0].startswith("listening on http://127.0.0.1:")
    assert lines[1:] == ["access token: t0k\n", "reader token: r3ad (may only read: writes get 403)\n"]
