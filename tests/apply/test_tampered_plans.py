"""A saved plan applies exactly what was reviewed, and nothing else: each tampering below is refused before
any write, and apply itself never sends an archive of an unmanaged metric, an operation on a field it does
not manage, or an update without its guards, whatever plan it is given."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from metrics_sync.apply.executor import apply_plan
from metrics_sync.apply.guard import unsafe
from metrics_sync.core.model import Change, FieldChange, Plan, ProjectPlan
from tests.conftest import TOKEN, Shop, make_client

TAG = "managed-by-metrics-sync"


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    shop = Shop(tmp_path / "repo")
    assert shop.run("apply", "--auto-approve").code == 0
    shop.store.create("shop", {"key": "made-in-ui", "name": "UI", "kind": "custom", "eventKey": "u",
                               "isNumeric": False})
    shop.edit_yaml("checkout.yaml", "name: Order value", "name: Order value (USD)")
    assert shop.run("plan", "--out", "plan.json").code == 0
    return shop


def _tamper(shop: Shop, edit: Callable[[dict[str, Any]], None]) -> None:
    path = shop.root / "plan.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _update(data: dict[str, Any]) -> dict[str, Any]:
    change: dict[str, Any] = data["projects"][0]["changes"][0]
    assert change["key"] == "order-value" and change["action"] == "update"
    return change


def _refused(shop: Shop, expected: str, *paths: str) -> None:
    writes_before = sum(shop.app.stats.writes.values())
    result = shop.run("apply", "--plan", "plan.json", *paths)
    assert result.code == 1, result.out
    assert result.err == expected
    assert sum(shop.app.stats.writes.values()) == writes_before  # nothing written


def test_the_untouched_plan_applies(shop: Shop) -> None:
    result = shop.run("apply", "--plan", "plan.json", "metrics")
    assert result.code == 0 and result.out.endswith("Apply complete: 0 created, 1 updated, 0 archived, 0 failed.\n")


def test_an_added_archive_of_an_unmanaged_metric(shop: Shop) -> None:
    def add_archive(data: dict[str, Any]) -> None:
        data["projects"][0]["changes"].append({
            "action": "archive", "key": "made-in-ui", "metricType": "custom conversion binary", "adopt": False,
            "remoteVersion": 1, "fields": [{"field": "archived", "before": False, "after": True}],
            "before": {"tags": [TAG]}, "after": None, "body": None, "warnings": [],
            "patch": [{"op": "test", "path": "/archived", "value": False},
                      {"op": "replace", "path": "/archived", "value": True}]})
    _tamper(shop, add_archive)
    _refused(shop, "error: plan is stale: the plan holds an archive of metric made-in-ui that the definitions and "
                   "LaunchDarkly do not call for now; run plan again\n")
    assert shop.store.get("shop", "made-in-ui")["archived"] is False


@pytest.mark.parametrize("extra", [
    {"op": "replace", "path": "/eventKey", "value": "something-else"},
    {"op": "replace", "path": "/tags", "value": ["checkout", "revenue"]},
], ids=["eventKey", "ownership-tag"])
def test_extra_operations_hidden_in_a_reviewed_update(shop: Shop, extra: dict[str, Any]) -> None:
    _tamper(shop, lambda data: _update(data)["patch"].append(extra))
    _refused(shop, "error: plan is stale: the plan's patch for metric order-value is not what the definitions and "
                   "LaunchDarkly call for; run plan again\n")


def test_a_patch_without_its_test_guard(shop: Shop) -> None:
    _tamper(shop, lambda data: _update(data).update(patch=[op for op in _update(data)["patch"] if op["op"] != "test"]))
    _refused(shop, "error: plan is stale: the plan's patch for metric order-value is not what the definitions and "
                   "LaunchDarkly call for; run plan again\n")


def test_an_unknown_action(shop: Shop) -> None:
    _tamper(shop, lambda data: _update(data).update(action="destroy"))
    result = shop.run("apply", "--plan", "plan.json")
    assert result.code == 1
    assert result.err.startswith(f"error: {shop.root / 'plan.json'} is not a valid plan file: at "
                                 "projects[0].changes[0].action: 'destroy' is not one of")


def test_a_metric_update_turned_into_a_delete(shop: Shop) -> None:
    # Only metric groups are deleted; a metric is archived, and only as planned.
    _tamper(shop, lambda data: _update(data).update(action="delete", patch=[]))
    result = shop.run("apply", "--plan", "plan.json")
    assert result.code == 1
    assert "is not a valid plan file" in result.err and "'metric-group' was expected" in result.err


def test_a_create_body_for_another_key(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "repo")
    assert shop.run("plan", "--out", "plan.json").code == 0

    def rename(data: dict[str, Any]) -> None:
        data["projects"][0]["changes"][0]["body"]["key"] = "someone-elses"
    _tamper(shop, rename)
    _refused(shop, "error: plan is stale: the plan's create body for metric add-to-cart-count is not what the "
                   "definitions call for; run plan again\n")


def test_a_changed_project_key_without_paths(shop: Shop) -> None:
    def other_project(data: dict[str, Any]) -> None:
        data["projects"][0]["project"] = "mobile"
    _tamper(shop, other_project)
    _refused(shop, "error: the plan covers the projects mobile, the definitions shop (run plan again)\n")


def test_a_plan_needs_the_definitions_it_was_made_from(shop: Shop) -> None:
    (shop.root / "metrics-sync.yaml").unlink()
    for file in (shop.root / "metrics").iterdir():
        file.unlink()
    _refused(shop, "metrics: folder holds no *.yaml or *.yml files\nerror: apply --plan checks the saved plan "
                   "against the definitions it was made from, and they cannot be read (1 problem(s) above) (pass "
                   "the PATHs the plan was made from (or set `paths` in metrics-sync.yaml))\n")


def test_non_standard_json(shop: Shop) -> None:
    path = shop.root / "plan.json"
    path.write_text(path.read_text().replace('"remoteVersion": 1', '"remoteVersion": NaN', 1))
    result = shop.run("apply", "--plan", "plan.json")
    assert result.code == 1
    assert result.err == f"error: {path} is not a plan file (it holds NaN, which is not JSON)\n"


# --- apply's own guards, whatever plan it is given --------------------------------------------------------

def _change(action: str, patch: list[dict[str, Any]], before_tags: list[str] | None = None,
            body: dict[str, Any] | None = None, key: str = "order-value") -> Change:
    return Change(action, key, "custom numeric", {"tags": before_tags or []}, {}, [FieldChange("name", "a", "b")],
                  patch, body=body, remote_version=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("change, reason", [
    (_change("archive", [{"op": "test", "path": "/archived", "value": False},
                         {"op": "replace", "path": "/archived", "value": True}]),
     "it archives a metric without the ownership tag"),
    (_change("archive", [{"op": "replace", "path": "/archived", "value": True}], [TAG]),
     "its archive patch does more than archive"),
    (_change("update", [{"op": "test", "path": "/_version", "value": 1},
                        {"op": "replace", "path": "/dataSource", "value": {}}]),
     "it changes '/_version', which metrics-sync does not manage for a metric"),
    (_change("update", [{"op": "replace", "path": "/name", "value": "b"}]),
     "its replace of /name is not guarded by a test of the value planned against"),
    (_change("update", [{"op": "move", "from": "/name", "path": "/description"}]),
     "it holds a 'move' operation"),
    (_change("create", [], body={"key": "other"}), "its create body is for another key"),
    (_change("create", [], body={"key": "order-value", "winsorExcludeImputed": True}),
     "its create body sets fields metrics-sync does not manage (winsorExcludeImputed)"),
])
def test_apply_never_sends_an_unsafe_change(change: Change, reason: str) -> None:
    assert unsafe(change, TAG) == reason
    from metrics_sync.emulator import EmulatorApp, Store

    store = Store(["shop"])
    app = EmulatorApp(store, token=TOKEN)
    plan = Plan([ProjectPlan("shop", "sha256:" + "0" * 64, [change], 0, 0, [], [], [])], False, TAG, "", "")
    result = apply_plan(plan, make_client(app))
    assert result.results[0].outcome == "failed" and result.results[0].message == f"not sent: {reason}"
    assert app.stats.total == 0


def _group_change(action: str, patch: list[dict[str, Any]], before_tags: list[str] | None = None,
                  body: dict[str, Any] | None = None) -> Change:
    return Change(action, "checkout-funnel", "funnel metric group", {"tags": before_tags or []}, {},  # type: ignore[arg-type]
                  [FieldChange("name", "a", "b")], patch, body=body, remote_version=1, resource="metric-group")


@pytest.mark.parametrize("change, reason", [
    (_group_change("delete", []), "it deletes a metric group without the ownership tag"),
    (_group_change("delete", [{"op": "test", "path": "/name", "value": "a"}], [TAG]),
     "its delete carries a patch or a body"),
    (_group_change("archive", [{"op": "replace", "path": "/archived", "value": True}], [TAG]),
     "a metric group cannot be archived"),
    (_group_change("update", [{"op": "test", "path": "/kind", "value": "funnel"},
                              {"op": "replace", "path": "/kind", "value": "standard"}]),
     "it changes the metric group's kind, which LaunchDarkly cannot change"),
    (_group_change("update", [{"op": "replace", "path": "/metrics", "value": []}]),
     "its replace of /metrics is not guarded by a test of the value planned against"),
    (_group_change("create", [], body={"key": "checkout-funnel", "eventKey": "x"}),
     "its create body sets fields metrics-sync does not manage (eventKey)"),
    (_change("delete", [], [TAG]), "a metric cannot be deleted"),
])
def test_apply_never_sends_an_unsafe_group_change(change: Change, reason: str) -> None:
    assert unsafe(change, TAG) == reason


def test_a_group_delete_smuggled_into_a_plan_is_refused(shop: Shop) -> None:
    shop.run("apply", "--auto-approve")
    shop.run("plan", "--out", "plan.json")
    data = json.loads((shop.root / "plan.json").read_text())
    data["projects"][0]["changes"].append({
        "action": "delete", "resource": "metric-group", "key": "checkout-funnel", "metricType": "funnel metric group",
        "adopt": False, "remoteVersion": 1, "fields": [], "before": {"tags": [TAG]}, "after": None, "patch": [],
        "body": None, "warnings": []})
    (shop.root / "plan.json").write_text(json.dumps(data))
    result = shop.run("apply", "--plan", "plan.json")
    assert result.code == 1
    assert result.err == ("error: plan is stale: the plan holds a delete of metric group checkout-funnel that the "
                          "definitions and LaunchDarkly do not call for now; run plan again\n")
    assert len(shop.store.group_records("shop")) == 2
