"""The emulator serves metric groups, experiments and guarded rollouts as LaunchDarkly's sources describe them.
Every answer is checked against the spec's response schema (MetricGroupRep, MetricGroupCollectionRep, the error
reps) and every body sent against MetricGroupPost, through `Beta.call`."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest

from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.emulator.readings import Readings
from metrics_sync.emulator.store import TOKEN_MEMBER_ID
from tests.conftest import TOKEN
from tests.ldspec import validate_request, validate_response

METRICS = [
    {"key": "viewed", "name": "Viewed", "kind": "pageview", "urls": [{"kind": "substring", "substring": "/p"}]},
    {"key": "added", "name": "Added", "kind": "custom", "eventKey": "added", "isNumeric": False},
    {"key": "ordered", "name": "Ordered", "kind": "custom", "eventKey": "ordered", "isNumeric": False},
]
FUNNEL = {"key": "funnel", "name": "Funnel", "kind": "funnel", "maintainerId": TOKEN_MEMBER_ID, "tags": ["shop"],
          "metrics": [{"key": "viewed", "nameInGroup": "Viewed"}, {"key": "added", "nameInGroup": "Added"}]}
STANDARD = {"key": "guards", "name": "Guardrails", "kind": "standard", "maintainerId": TOKEN_MEMBER_ID, "tags": [],
            "metrics": [{"key": "added", "nameInGroup": ""}, {"key": "ordered", "nameInGroup": ""}]}
GROUPS = "/api/v2/projects/shop/metric-groups"


class Beta:
    """HTTP calls to the emulator's metric group endpoints, with `LD-API-Version: beta` unless told not to."""

    def __init__(self, app: EmulatorApp) -> None:
        self.http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://emulator")

    def call(self, method: str, path: str, body: Any = None, *, beta: bool = True,
             params: dict[str, Any] | None = None, breaks_the_spec: bool = False) -> httpx.Response:
        headers = {"Authorization": TOKEN, **({"LD-API-Version": "beta"} if beta else {})}
        if method == "POST" and path == GROUPS and not breaks_the_spec:
            validate_request(method, path, body)  # what the tests send is a valid MetricGroupPost
        content = None if body is None else json.dumps(body)
        response = self.http.request(method, path, content=content, headers=headers, params=params)
        payload = response.json() if response.content else None
        if "metric-groups" in path:
            validate_response(method, path, response.status_code, payload)
        if response.status_code >= 400:
            assert set(payload) == {"code", "message", "id"}
        return response


def shop(readings: Readings | None = None) -> tuple[Store, Beta]:
    store = Store(["shop"], rng=random.Random(1), readings=readings)
    for metric in METRICS:
        store.create("shop", metric)
    return store, Beta(EmulatorApp(store, token=TOKEN))


@pytest.fixture
def beta() -> Beta:
    return shop()[1]


def test_the_endpoints_need_the_beta_header(beta: Beta) -> None:
    refused = beta.call("GET", GROUPS, beta=False)
    assert refused.status_code == 403 and "LD-API-Version: beta" in refused.json()["message"]
    assert beta.call("POST", GROUPS, FUNNEL, beta=False).status_code == 403
    assert beta.call("GET", GROUPS).status_code == 200


def test_create_answers_201_with_the_representation(beta: Beta) -> None:
    created = beta.call("POST", GROUPS, FUNNEL)
    assert created.status_code == 201
    rep = created.json()
    assert (rep["key"], rep["kind"], rep["_version"], rep["tags"]) == ("funnel", "funnel", 1, ["shop"])
    assert rep["maintainer"]["key"] == TOKEN_MEMBER_ID and rep["maintainer"]["kind"] == "member"
    assert [(m["key"], m["name"], m["nameInGroup"]) for m in rep["metrics"]] == [("viewed", "Viewed", "Viewed"),
                                                                                 ("added", "Added", "Added")]
    standard = beta.call("POST", GROUPS, STANDARD).json()
    assert all("nameInGroup" not in m for m in standard["metrics"])  # "Required if and only if ... a funnel"


@pytest.mark.parametrize("change, message", [
    ({"maintainerId": ""}, "maintainer ID is required"),
    ({"kind": "guardrail"}, "kind: must be one of funnel, standard"),
    ({"metrics": [{"key": "viewed", "nameInGroup": "Viewed"}]}, "a metric group needs at least two metrics"),
    ({"metrics": [{"key": "viewed", "nameInGroup": "V"}, {"key": "added"}]},
     "metrics[1].nameInGroup: required for funnel metric groups"),
    ({"metrics": [{"key": "viewed", "nameInGroup": "V"}, {"key": "nope", "nameInGroup": "N"}]},
     "metrics[1].key: unknown metric 'nope'"),
    ({"metrics": [{"key": "viewed", "nameInGroup": "V"}, {"key": "viewed", "nameInGroup": "W"}]},
     "metrics[1].key: metric 'viewed' is in the group twice"),
    ({"tags": ["not ok"]}, "tags: invalid value 'not ok'"),
    ({"key": "../x"}, "key: must contain only letters"),
])
def test_create_enforces_the_rules(beta: Beta, change: dict[str, Any], message: str) -> None:
    response = beta.call("POST", GROUPS, {**FUNNEL, **change}, breaks_the_spec=True)
    assert response.status_code == 400 and message in response.json()["message"]
    assert beta.call("GET", GROUPS).json()["totalCount"] == 0


def test_a_standard_group_refuses_step_names() -> None:
    _, beta = shop()
    body = {**STANDARD, "metrics": [{"key": "added", "nameInGroup": "A"}, {"key": "ordered", "nameInGroup": ""}]}
    response = beta.call("POST", GROUPS, body)
    assert response.status_code == 400 and "only funnel metric groups name their metrics" in response.json()["message"]


def test_duplicate_key_is_a_conflict(beta: Beta) -> None:
    beta.call("POST", GROUPS, FUNNEL)
    assert beta.call("POST", GROUPS, FUNNEL).status_code == 409


def test_patch_bumps_the_version_and_keeps_key_and_kind(beta: Beta) -> None:
    rep = beta.call("POST", GROUPS, FUNNEL).json()
    ops = [{"op": "test", "path": "/metrics", "value": rep["metrics"]},
           {"op": "replace", "path": "/metrics", "value": [{"key": "viewed", "nameInGroup": "Saw"},
                                                          {"key": "added", "nameInGroup": "Added"},
                                                          {"key": "ordered", "nameInGroup": "Bought"}]},
           {"op": "replace", "path": "/name", "value": "Shop funnel"}]
    patched = beta.call("PATCH", f"{GROUPS}/funnel", ops)
    assert patched.status_code == 200, patched.text
    assert patched.json()["_version"] == 2 and patched.json()["name"] == "Shop funnel"
    assert [m["nameInGroup"] for m in patched.json()["metrics"]] == ["Saw", "Added", "Bought"]
    same = beta.call("PATCH", f"{GROUPS}/funnel", [{"op": "replace", "path": "/name", "value": "Shop funnel"}])
    assert same.json()["_version"] == 2  # nothing changed: no new version
    for op in ({"op": "replace", "path": "/kind", "value": "standard"}, {"op": "replace", "path": "/key", "value": "x"},
               {"op": "replace", "path": "/_version", "value": 9}):
        assert beta.call("PATCH", f"{GROUPS}/funnel", [op]).status_code == 400
    stale = beta.call("PATCH", f"{GROUPS}/funnel", [{"op": "test", "path": "/name", "value": "Funnel"},
                                                   {"op": "replace", "path": "/name", "value": "Other"}])
    assert stale.status_code == 409


def test_patch_tests_compare_with_the_stored_group_under_that_reading() -> None:
    _, beta = shop(Readings(group_patch_test="stored"))
    rep = beta.call("POST", GROUPS, FUNNEL).json()
    as_read = beta.call("PATCH", f"{GROUPS}/funnel", [{"op": "test", "path": "/metrics", "value": rep["metrics"]}])
    assert as_read.status_code == 409  # the representation's metrics carry names and links the stored ones lack
    stored = [{"key": "viewed", "nameInGroup": "Viewed"}, {"key": "added", "nameInGroup": "Added"}]
    assert beta.call("PATCH", f"{GROUPS}/funnel", [{"op": "test", "path": "/metrics", "value": stored}]).status_code \
        == 200


def test_list_pages_filters_and_sorts(beta: Beta) -> None:
    beta.call("POST", GROUPS, FUNNEL)
    beta.call("POST", GROUPS, STANDARD)
    page = beta.call("GET", GROUPS, params={"limit": 1, "offset": 1}).json()
    assert page["totalCount"] == 2 and [g["key"] for g in page["items"]] == ["guards"]
    funnels = beta.call("GET", GROUPS, params={"filter": "kind equals funnel"}).json()
    assert [g["key"] for g in funnels["items"]] == ["funnel"]
    by_name = beta.call("GET", GROUPS, params={"sort": "-name"}).json()
    assert [g["key"] for g in by_name["items"]] == ["guards", "funnel"]
    assert beta.call("GET", GROUPS, params={"filter": "tags contains [\"x\"]"}).status_code == 400


def test_metrics_name_the_groups_they_are_in() -> None:
    store, beta = shop()
    beta.call("POST", GROUPS, FUNNEL)
    beta.call("POST", GROUPS, STANDARD)
    raw = httpx.Client(transport=httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN)), base_url="http://e")
    added = raw.get("/api/v2/metrics/shop/added", params={"expand": "metricGroups,metricGroupCount"},
                    headers={"Authorization": TOKEN}).json()
    assert added["metricGroupCount"] == 2 and {g["key"] for g in added["metricGroups"]} == {"funnel", "guards"}
    validate_response("GET", "/api/v2/metrics/shop/added", 200, added)
    # A metric in a group may be archived (the provider's PR #534), but not deleted while a group holds it.
    store.patch("shop", "added", [{"op": "replace", "path": "/archived", "value": True}])
    assert raw.delete("/api/v2/metrics/shop/added", headers={"Authorization": TOKEN}).status_code == 409


def test_delete_refuses_a_group_in_use_and_404s_an_absent_one() -> None:
    store, beta = shop()
    beta.call("POST", GROUPS, FUNNEL)
    beta.call("POST", GROUPS, STANDARD)
    store.seed({"experiments": {"shop": [{"key": "exp", "name": "Exp", "environmentKey": "production",
                                          "status": "stopped", "metricGroups": ["funnel"]}]}})
    assert beta.call("DELETE", f"{GROUPS}/funnel").status_code == 409
    assert beta.call("DELETE", f"{GROUPS}/guards").status_code == 204
    assert beta.call("DELETE", f"{GROUPS}/guards").status_code == 404


def test_seeded_experiments_and_rollouts_drive_counts_and_expansions() -> None:
    store, beta = shop()
    beta.call("POST", GROUPS, FUNNEL)
    store.seed({"experiments": {"shop": [
        {"key": "running-one", "name": "Running", "environmentKey": "production", "status": "running",
         "metrics": ["ordered"], "metricGroups": ["funnel"]},
        {"key": "stopped-one", "name": "Stopped", "environmentKey": "staging", "status": "stopped",
         "metrics": ["ordered"]},
        {"key": "old", "name": "Old", "environmentKey": "production", "status": "stopped", "metrics": ["ordered"],
         "archived": True}]},
        "guardedRollouts": {"shop": [{"flagKey": "new-cart", "environmentKey": "production", "metrics": ["ordered"]}]}})
    raw = httpx.Client(transport=httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN)), base_url="http://e")
    ordered = raw.get("/api/v2/metrics/shop/ordered", headers={"Authorization": TOKEN},
                      params={"expand": "experiments,experimentCount,guardedRollouts"}).json()
    validate_response("GET", "/api/v2/metrics/shop/ordered", 200, ordered)
    assert (ordered["experimentCount"], ordered["activeExperimentCount"], ordered["activeGuardedRolloutCount"]) == \
        (2, 1, 1)
    assert sorted(e["key"] for e in ordered["experiments"]) == ["old", "running-one", "stopped-one"]
    assert next(e for e in ordered["experiments"] if e["key"] == "old")["archivedDate"]
    assert ordered["guardedRollouts"] == [{"flagKey": "new-cart", "environmentKey": "production"}]
    group = beta.call("GET", f"{GROUPS}/funnel", params={"expand": "experiments,experimentCount"}).json()
    assert (group["experimentCount"], group["activeExperimentCount"]) == (1, 1)
    assert [e["key"] for e in group["experiments"]] == ["running-one"]
    experiment = raw.get("/api/v2/projects/shop/environments/production/experiments/running-one",
                         headers={"Authorization": TOKEN}).json()
    assert experiment["currentIteration"]["status"] == "running"
    assert raw.get("/api/v2/projects/shop/environments/staging/experiments/running-one",
                   headers={"Authorization": TOKEN}).status_code == 404


def test_groups_survive_a_restart(tmp_path: Any) -> None:
    state = tmp_path / "state.json"
    store = Store(["shop"], state_file=state)
    for metric in METRICS:
        store.create("shop", metric)
    store.create_group("shop", FUNNEL)
    store.seed({"experiments": {"shop": [{"key": "e", "name": "E", "environmentKey": "production",
                                          "status": "running", "metricGroups": ["funnel"]}]}})
    again = Store(["shop"], state_file=state)
    assert again.get_group("shop", "funnel")["metrics"] == FUNNEL["metrics"]
    assert again.connected("shop", again.get_group("shop", "funnel"), "metric-group")["activeExperimentCount"] == 1
