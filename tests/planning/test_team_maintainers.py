"""A metric group a team maintains (`MaintainerRep` `{key, kind: team, _team}`; docs/launchdarkly-contract.md A49).
LaunchDarkly's API names a group's maintainer by member ID only (`MetricGroupPost.maintainerId`), so the team is
set outside the API: the emulator takes it from a seed. Reading it back is no change and no crash under every
reading; export round-trips it; a definition naming a member replaces it; a definition cannot name a team."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.emulator.readings import Readings, every_reading
from tests.conftest import TOKEN, Shop, run_cli

OTHER_MEMBER = "6b1fdeadbeef1644facecafe"
ENV = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"}


def _id(readings: Readings) -> str:
    changed = [f"{k}={v}" for k, v in vars(readings).items() if v != getattr(Readings(), k)]
    return ",".join(changed) or "defaults"


def _team_maintains(shop: Shop, key: str, team: str = "checkout-team") -> None:
    """What a maintainer change made in LaunchDarkly's UI leaves: the group maintained by a team."""
    record = shop.store.groups["shop"][key]
    record.pop("maintainerId")
    record["maintainerTeamKey"] = team


def _group(transport: httpx.BaseTransport, key: str) -> dict[str, Any]:
    with httpx.Client(transport=transport, base_url="http://emulator") as http:
        answer = http.get(f"/api/v2/projects/shop/metric-groups/{key}",
                          headers={"Authorization": TOKEN, "LD-API-Version": "beta"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture(params=every_reading(), ids=_id)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Shop:
    shop = Shop(tmp_path / "repo", request.param)
    assert shop.run("apply", "--auto-approve").code == 0
    _team_maintains(shop, "checkout-funnel")
    return shop


def test_a_team_maintainer_reads_back_as_no_change(shop: Shop) -> None:
    assert _group(shop.transport, "checkout-funnel")["maintainer"] == {
        "key": "checkout-team", "kind": "team", "_team": {
            "key": "checkout-team", "name": "checkout-team", "customRoleKeys": [],
            "_links": {"self": {"href": "/api/v2/teams/checkout-team", "type": "application/json"}}}}
    plan = shop.run("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert plan.out.endswith("No changes. 8 metrics and 2 metric groups match the definitions.\n")
    as_json = shop.run("plan", "--format", "json")
    assert as_json.code == 0 and json.loads(as_json.out)


def test_a_definition_naming_a_member_replaces_the_team(shop: Shop) -> None:
    shop.edit_yaml("checkout.yaml", "    kind: funnel\n", f"    kind: funnel\n    maintainerId: {OTHER_MEMBER}\n")
    plan = shop.run("plan")
    assert f'maintainerId: "checkout-team" → "{OTHER_MEMBER}"' in plan.out, plan.out
    applied = shop.run("apply", "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert _group(shop.transport, "checkout-funnel")["maintainer"]["kind"] == "member"
    record = shop.store.groups["shop"]["checkout-funnel"]
    assert record["maintainerId"] == OTHER_MEMBER and "maintainerTeamKey" not in record
    assert shop.run("plan", "--detailed-exitcode").code == 0


def test_a_definition_cannot_name_a_team(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "repo")
    shop.edit_yaml("checkout.yaml", "    kind: funnel\n", "    kind: funnel\n    maintainerId: checkout-team\n")
    result = shop.run("validate")
    assert result.code == 1
    assert "maintainerId must be a LaunchDarkly member ID: 24 hexadecimal characters" in result.out + result.err
    assert "a team cannot be named here" in result.out + result.err


def test_export_round_trips_a_group_a_team_maintains(tmp_path: Path) -> None:
    store = Store(["shop"])
    store.seed({"projects": {"shop": [
        {"key": "signup", "kind": "custom", "eventKey": "signup", "isNumeric": False},
        {"key": "newsletter", "kind": "custom", "eventKey": "newsletter", "isNumeric": False}]},
        "metricGroups": {"shop": [{"key": "growth", "name": "Growth", "kind": "standard", "tags": ["growth"],
                                   "maintainerTeamKey": "growth-team", "maintainerTeamName": "Growth team",
                                   "metrics": [{"key": "signup"}, {"key": "newsletter"}]}]}})
    transport = httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN))
    assert _group(transport, "growth")["maintainer"]["_team"]["name"] == "Growth team"
    root = tmp_path / "repo"
    root.mkdir()
    exported = run_cli("export", "--project", "shop", env=ENV, cwd=root, transport=transport)
    assert exported.code == 0, exported.out + exported.err
    written = "".join(p.read_text() for p in (root / "metrics").glob("*.yaml"))
    assert "key: growth" in written and "maintainer" not in written and "growth-team" not in written
    assert run_cli("validate", "metrics", "--project", "shop", env=ENV, cwd=root, transport=transport).code == 0
    plan = run_cli("plan", "metrics", "--detailed-exitcode", env=ENV, cwd=root, transport=transport)
    assert plan.code == 0, plan.out + plan.err
    assert store.groups["shop"]["growth"]["maintainerTeamKey"] == "growth-team"


def test_the_emulator_sets_a_team_only_from_a_seed_and_filters_by_it() -> None:
    store = Store(["shop"])
    metrics = [{"key": k, "kind": "custom", "eventKey": k, "isNumeric": False} for k in ("a", "b")]
    group = {"key": "g", "name": "G", "kind": "standard", "tags": [], "metrics": [{"key": "a"}, {"key": "b"}]}
    store.seed({"projects": {"shop": metrics}, "metricGroups": {"shop": [{**group, "maintainerTeamKey": "t"}]}})
    transport = httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN))
    beta = {"Authorization": TOKEN, "LD-API-Version": "beta"}
    with httpx.Client(transport=transport, base_url="http://emulator") as http:
        refused = http.post("/api/v2/projects/shop/metric-groups", headers=beta,
                            json={**group, "key": "h", "maintainerTeamKey": "t"})
        assert (refused.status_code, refused.json()["message"]) == (400, "maintainer ID is required")
        for team, keys in (("t", ["g"]), ("other", [])):
            listed = http.get("/api/v2/projects/shop/metric-groups", headers=beta,
                              params={"filter": f"maintainerTeamKey equals {team}"}).json()
            assert [g["key"] for g in listed["items"]] == keys
