"""Metric versions (docs/launchdarkly-contract.md, A47, A48): what an update does to a metric's `_versionId`, and
which version a running experiment iteration measures. No source settles either, so the emulator has a switch
for each; under every reading the plan's alert says what really happens to a running experiment, apply then plan
is clean, and a given version stays readable with `versionId`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_sync.core.resources import METRIC
from metrics_sync.emulator.readings import Readings, every_reading
from tests.conftest import TOKEN, Shop, make_client

READINGS = every_reading()
EXPERIMENT = {"experiments": {"shop": [
    {"key": "checkout-redesign", "name": "Checkout redesign", "environmentKey": "production", "status": "running",
     "metrics": ["order-value"]},
    {"key": "next-quarter", "name": "Next quarter", "environmentKey": "production", "status": "not_started",
     "metrics": ["order-value"]}]}}
EVENT = ("    eventKey: order-placed\n    isNumeric: true", "    eventKey: order-completed\n    isNumeric: true")
WHEN = ("changes the results of experiment `checkout-redesign` (production, running): at once if LaunchDarkly "
        "measures a running iteration with the latest metric version, else from the next one; results before and "
        "after the change will not be comparable")


def _id(readings: Readings) -> str:
    changed = [f"{k}={v}" for k, v in vars(readings).items() if v != getattr(Readings(), k)]
    return ",".join(changed) or "defaults"


@pytest.fixture(params=READINGS, ids=_id)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Shop:
    shop = Shop(tmp_path / "repo", request.param)
    assert shop.run("apply", "--auto-approve").code == 0
    shop.store.seed(EXPERIMENT)
    return shop


def _get(shop: Shop, path: str, **params: str) -> httpx.Response:
    with httpx.Client(transport=shop.transport, base_url="http://emulator") as http:
        return http.get(path, params=params, headers={"Authorization": TOKEN})


def _measured(shop: Shop, experiment: str) -> str:
    """The `_versionId` of `order-value` the experiment's current iteration measures."""
    rep = _get(shop, f"/api/v2/projects/shop/environments/production/experiments/{experiment}").json()
    [entry] = [m for m in rep["currentIteration"]["metrics"] if m["key"] == "order-value"]
    return str(entry["_versionId"])


def _version(shop: Shop, version_id: str) -> dict[str, Any]:
    answer = _get(shop, "/api/v2/metrics/shop/order-value", versionId=version_id)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_alert_says_when_an_update_reaches_a_running_experiment_and_it_does(shop: Shop) -> None:
    readings = shop.store.readings
    started = shop.store.get("shop", "order-value")["_versionId"]
    assert _measured(shop, "checkout-redesign") == started
    shop.edit_yaml("checkout.yaml", *EVENT)
    plan = shop.run("plan")
    assert WHEN in plan.out, plan.out
    applied = shop.run("apply", "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    now = shop.store.get("shop", "order-value")["_versionId"]
    assert (now != started) == (readings.metric_versions == "new")
    # What the running iteration measures now: the version it started with, or the changed definition.
    measured = _version(shop, _measured(shop, "checkout-redesign"))
    kept = readings.metric_versions == "new" and readings.iteration_versions == "pinned"
    assert measured["eventKey"] == ("order-placed" if kept else "order-completed")
    # "else from the next one": an iteration that starts after the update measures the changed definition.
    assert _version(shop, _measured(shop, "next-quarter"))["eventKey"] == "order-completed"
    again = shop.run("plan", "--detailed-exitcode")
    assert again.code == 0, again.out


def test_an_old_version_stays_readable_by_its_id_when_updates_make_new_ones(shop: Shop) -> None:
    first = shop.store.get("shop", "order-value")
    shop.ui_edit("order-value", [{"op": "replace", "path": "/eventKey", "value": "order-completed"}])
    second = shop.store.get("shop", "order-value")
    assert second["_version"] == first["_version"] + 1
    if shop.store.readings.metric_versions == "new":
        assert second["_versionId"] != first["_versionId"]
        assert _version(shop, first["_versionId"])["eventKey"] == "order-placed"
    else:
        assert second["_versionId"] == first["_versionId"]
    assert _version(shop, second["_versionId"])["eventKey"] == "order-completed"
    assert _get(shop, "/api/v2/metrics/shop/order-value", versionId="f" * 32).status_code == 404
    # The list's `versionIds` filter finds a metric by its current version.
    listed = _get(shop, "/api/v2/metrics/shop", filter=f'versionIds anyOf ["{second["_versionId"]}"]').json()
    assert [m["key"] for m in listed["items"]] == ["order-value"]


def test_a_no_op_patch_makes_no_version(shop: Shop) -> None:
    before = shop.store.get("shop", "order-value")
    shop.ui_edit("order-value", [{"op": "replace", "path": "/eventKey", "value": before["eventKey"]}])
    after = shop.store.get("shop", "order-value")
    assert (after["_version"], after["_versionId"]) == (before["_version"], before["_versionId"])


def test_the_client_reads_a_given_version(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "repo", Readings(metric_versions="new"))
    assert shop.run("apply", "--auto-approve").code == 0
    first = shop.store.get("shop", "order-value")
    shop.ui_edit("order-value", [{"op": "replace", "path": "/description", "value": "Changed in the UI."}])
    with make_client(shop.app) as client:
        old = client.get_item(METRIC, "shop", "order-value", version_id=first["_versionId"])
        current = client.get_item(METRIC, "shop", "order-value")
    assert old["_versionId"] == first["_versionId"] and old["description"] == first["description"]
    assert current["description"] == "Changed in the UI."


def test_versions_survive_a_restart(tmp_path: Path) -> None:
    from metrics_sync.emulator.store import Store

    state = tmp_path / "state.json"
    store = Store(["shop"], state_file=state)
    store.create("shop", {"key": "m", "kind": "custom", "eventKey": "e", "isNumeric": False})
    first = store.get("shop", "m")["_versionId"]
    store.patch("shop", "m", [{"op": "replace", "path": "/eventKey", "value": "f"}])
    again = Store(["shop"], state_file=state)
    assert again.version("shop", "m", first)["eventKey"] == "e"
    again.compact()
    assert Store(["shop"], state_file=state).version("shop", "m", first)["eventKey"] == "e"
