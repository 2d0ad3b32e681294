"""A realistic catalogue for `health`: the example shop's definitions and application, applied to an emulator
seeded with examples/emulator-seed.json (experiments running and stopped, a guarded rollout, a holdout, a release
policy, the events LaunchDarkly has seen), on a clock the test controls."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.emulator.readings import Readings
from tests.conftest import ENV, ROOT, TOKEN, FakeClock, Result, run_cli

SEED = ROOT / "examples" / "emulator-seed.json"
# Every finding the example catalogue has, as (code, metric key or event key): each code at least once.
EXPECTED = {
    ("running-without-events", "payment-failed"),  # a guarded rollout measures it; its event was last seen 3 days ago
    ("never-seen", "checkout-latency-p95"),  # checkout-page-rendered: sent by the web app, never seen
    ("not-seen-recently", "add-to-cart-count"),  # add-to-cart last seen 45 days ago
    ("not-sent-by-code", "signup-completed"),  # made in the UI; no code sends its event
    ("not-sent-by-code", "wishlist-added"),
    ("unmeasured-event", "newsletter-signup"),  # sent by the Go worker; no definition counts it
    ("archive-candidate", "product-page-views"),  # nothing uses it, in no group
    ("undefined", "wishlist-added"),  # tagged managed-by-metrics-sync, definition deleted
}


class Catalogue:
    def __init__(self, root: Path, readings: Readings | None = None) -> None:
        self.root = root
        shutil.copytree(ROOT / "examples", root, ignore=shutil.ignore_patterns("demo.py", "github", "__pycache__"))
        self.clock = FakeClock()
        self.store = Store(["shop"], clock=self.clock, readings=readings)
        self.store.seed(json.loads(SEED.read_text()))
        self.app = EmulatorApp(self.store, token=TOKEN, clock=self.clock)
        self.transport = httpx.WSGITransport(app=self.app)
        applied = self.run("apply", "--auto-approve")
        assert applied.code == 0, applied.err

    def run(self, *args: str) -> Result:
        return run_cli(*args, env=ENV, cwd=self.root, transport=self.transport, clock=self.clock)

    def control(self, path: str, body: dict[str, Any]) -> Any:
        with httpx.Client(transport=self.transport, base_url="http://127.0.0.1") as client:
            answer = client.post(f"/_emulator/{path}", json=body, headers={"Authorization": TOKEN})
            assert answer.status_code == 200, answer.text
            return answer.json()

    def health(self, *args: str) -> Any:
        result = self.run("health", "--code", "app", "--format", "json", *args)
        assert result.code in (0, 1), result.err
        return json.loads(result.out)


def found(report: Any) -> set[tuple[str, str]]:
    return {(f["code"], f["key"]) for f in report["findings"]}


@pytest.fixture
def catalogue(tmp_path: Path) -> Catalogue:
    return Catalogue(tmp_path / "shop")
