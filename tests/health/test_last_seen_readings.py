"""What `lastSeen` means (A50): the emulator serves either reading, its clock and events are test controls, and
doctor tells from the metric list which reading an account shows."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.emulator.readings import Readings
from tests.conftest import TOKEN, FakeClock, run_cli

ENV = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"}
TWINS = [{"key": k, "kind": "custom", "eventKey": "order-placed", "isNumeric": False} for k in ("orders", "buyers")]


def _emulator(reading: str) -> tuple[Store, EmulatorApp, httpx.Client, FakeClock]:
    clock = FakeClock()
    store = Store(["shop"], clock=clock, readings=Readings(last_seen=reading))
    app = EmulatorApp(store, token=TOKEN, clock=clock)
    return store, app, httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://127.0.0.1",
                                    headers={"Authorization": TOKEN}), clock


def _seen(http: httpx.Client) -> dict[str, int | None]:
    return {m["key"]: m.get("lastSeen") for m in http.get("/api/v2/metrics/shop").json()["items"]}


def test_per_event_key_metrics_sharing_a_key_share_last_seen() -> None:
    store, _, http, clock = _emulator("event_key")
    store.seed({"projects": {"shop": TWINS[:1]}, "events": {"shop": {"order-placed": "-2h"}}})
    store.seed({"projects": {"shop": TWINS[1:]}})  # created after the event: it still shares it
    assert _seen(http) == {"orders": int(clock() * 1000) - 7_200_000, "buyers": int(clock() * 1000) - 7_200_000}
    moved = http.post("/_emulator/clock", json={"advance": 3600}).json()["now"]
    assert moved == int(clock() * 1000) + 3_600_000
    http.post("/_emulator/events", json={"project": "shop", "eventKey": "order-placed"})
    assert _seen(http) == {"orders": moved, "buyers": moved}


def test_per_metric_only_events_after_a_metric_exists_count_for_it() -> None:
    store, _, http, clock = _emulator("metric")
    store.seed({"projects": {"shop": TWINS[:1]}, "events": {"shop": {"order-placed": "-2h"}}})
    store.seed({"projects": {"shop": TWINS[1:]}})
    assert _seen(http) == {"orders": int(clock() * 1000) - 7_200_000, "buyers": None}
    http.post("/_emulator/events", json={"project": "shop", "eventKey": "order-placed"})
    assert _seen(http) == {"orders": int(clock() * 1000), "buyers": int(clock() * 1000)}


def test_controls_refuse_bad_bodies_and_need_the_token() -> None:
    _, _, http, _ = _emulator("event_key")
    assert http.post("/_emulator/clock", json={"advance": -1}).status_code == 400
    assert http.post("/_emulator/clock", json=[1]).status_code == 400
    assert http.post("/_emulator/events", json={"project": "shop"}).status_code == 400
    assert http.post("/_emulator/events", json={"project": "nope", "eventKey": "x"}).status_code == 404
    assert http.post("/_emulator/clock", json={"advance": 1}, headers={"Authorization": "wrong"}).status_code == 401


def test_last_used_is_expanded_on_the_single_read_only() -> None:
    store, _, http, _ = _emulator("event_key")
    store.seed({"projects": {"shop": TWINS}, "experiments": {"shop": [
        {"key": "old", "status": "stopped", "metrics": ["orders"], "creationDate": "-40d"},
        {"key": "new", "status": "running", "metrics": ["orders"], "creationDate": "-1d"}]},
        "guardedRollouts": {"shop": [{"flagKey": "f", "environmentKey": "production", "metrics": ["orders"]}]}})
    listed = http.get("/api/v2/metrics/shop", params={"expand": "experimentCount"}).json()["items"]
    assert not any("lastUsedInExperiment" in m for m in listed)
    one = http.get("/api/v2/metrics/shop/orders",
                   params={"expand": "lastUsedInExperiment,lastUsedInGuardedRollout"}).json()
    assert one["lastUsedInExperiment"]["key"] == "new"
    assert one["lastUsedInGuardedRollout"]["flagKey"] == "f"
    assert "lastUsedInExperiment" not in http.get("/api/v2/metrics/shop/buyers",
                                                  params={"expand": "lastUsedInExperiment"}).json()


def test_a_seed_time_is_epoch_ms_or_relative() -> None:
    store, _, _, _ = _emulator("event_key")
    with pytest.raises(ValueError, match="relative such as"):
        store.seed({"events": {"shop": {"x": "yesterday"}}})


@pytest.mark.parametrize(("reading", "observed"), [("event_key", "share their lastSeen"),
                                                   ("metric", "have different lastSeen values")])
def test_doctor_tells_the_reading_from_two_metrics_on_one_event_key(tmp_path: Path, reading: str,
                                                                   observed: str) -> None:
    store, app, _, _ = _emulator(reading)
    store.seed({"projects": {"shop": TWINS[:1]}, "events": {"shop": {"order-placed": "-2h"}}})
    store.seed({"projects": {"shop": TWINS[1:]}})
    result = run_cli("doctor", "--project", "shop", cwd=tmp_path, env=ENV, transport=httpx.WSGITransport(app=app))
    check = next(c for c in json.loads((tmp_path / "metrics-sync-doctor.json").read_text())["checks"]
                 if c["id"] == "A50")
    assert observed in check["observed"] and check["reading"] == reading, result.out


def test_doctor_says_when_the_reading_cannot_be_told(tmp_path: Path) -> None:
    store, app, _, _ = _emulator("event_key")
    store.seed({"projects": {"shop": TWINS[:1]}, "events": {"shop": {"order-placed": "-2h"}}})
    run_cli("doctor", "--project", "shop", cwd=tmp_path, env=ENV, transport=httpx.WSGITransport(app=app))
    report = json.loads((tmp_path / "metrics-sync-doctor.json").read_text())
    check = next(c for c in report["checks"] if c["id"] == "A50")
    assert check["observed"].startswith("not observable") and check["reading"] is None
