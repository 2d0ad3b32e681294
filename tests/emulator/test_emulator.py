"""The emulator speaks LaunchDarkly's metric API. Every answer here is also checked against the
response schema of LaunchDarkly's OpenAPI extract (contract test), through `Raw.call`.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_sync.emulator import EmulatorApp, Faults, Store
from metrics_sync.emulator.store import TOKEN_MEMBER_ID
from tests.conftest import TOKEN, FakeClock
from tests.ldspec import validate_response

CUSTOM = {"key": "order-placed", "name": "Order placed", "kind": "custom", "eventKey": "order-placed",
          "isNumeric": False}
NUMERIC = {"key": "order-value", "name": "Order value", "kind": "custom", "eventKey": "order-placed",
           "isNumeric": True, "unit": "USD", "successCriteria": "HigherThanBaseline", "unitAggregationType": "sum"}
PAGEVIEW = {"key": "home-viewed", "name": "Home viewed", "kind": "pageview",
            "urls": [{"kind": "exact", "url": "https://shop.example.com/"}]}
CLICK = {"key": "buy-clicked", "name": "Buy clicked", "kind": "click", "selector": "#buy",
         "urls": [{"kind": "substring", "substring": "/product"}]}
PERCENTILE = {"key": "latency-p95", "name": "Latency", "kind": "custom", "eventKey": "rendered", "isNumeric": True,
              "unit": "ms", "successCriteria": "LowerThanBaseline", "analysisType": "percentile",
              "percentileValue": 95}


class Raw:
    """Plain HTTP calls to the emulator, each answer validated against LaunchDarkly's spec."""

    def __init__(self, app: EmulatorApp) -> None:
        self.http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://emulator")

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = TOKEN,
             params: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": token} if token is not None else {}
        content = None if body is None else json.dumps(body)
        response = self.http.request(method, path, content=content, headers=headers, params=params)
        if response.status_code < 500:
            payload = response.json() if response.content else None
            validate_response(method, path, response.status_code, payload)
            if response.status_code >= 400:
                assert set(payload) == {"code", "message", "id"}
        return response


@pytest.fixture
def raw(emulator: EmulatorApp) -> Raw:
    return Raw(emulator)


def create(raw: Raw, body: dict[str, Any], project: str = "shop") -> dict[str, Any]:
    response = raw.call("POST", f"/api/v2/metrics/{project}", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


# --- create ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [CUSTOM, NUMERIC, PAGEVIEW, CLICK, PERCENTILE], ids=lambda b: b["key"])
def test_create_returns_201_with_the_full_representation(raw: Raw, body: dict[str, Any]) -> None:
    rep = create(raw, body)
    for field, value in body.items():
        assert rep[field] == value, field
    assert rep["_version"] == 1 and len(rep["_id"]) == 24
    assert rep["_links"]["self"]["href"] == f"/api/v2/metrics/shop/{body['key']}"
    assert rep["dataSource"]["key"] == "launchdarkly-hosted"
    assert rep["maintainerId"] == TOKEN_MEMBER_ID and rep["_maintainer"]["_id"] == TOKEN_MEMBER_ID
    assert rep.get("successCriteria") == body.get("successCriteria", "HigherThanBaseline" if body["kind"] == "custom"
                                                 else None)
    assert rep["analysisType"] == body.get("analysisType", "mean")
    assert rep["eventDefault"] == {"disabled": body.get("analysisType") == "percentile", "value": 0}
    assert rep["randomizationUnits"] == rep["analysisUnits"] == ["user"]
    assert rep["tags"] == [] and rep["archived"] is False


def test_create_ignores_unknown_fields_silently(raw: Raw) -> None:
    rep = create(raw, {**CUSTOM, "colour": "blue", "_version": 9})
    assert "colour" not in rep and rep["_version"] == 1


def test_create_accepts_the_deprecated_randomization_units(raw: Raw, store: Store) -> None:
    store.seed({"experimentationSettings": {"shop": ["user", "organization"]}})
    rep = create(raw, {**CUSTOM, "randomizationUnits": ["organization"]})
    assert rep["analysisUnits"] == rep["randomizationUnits"] == ["organization"]


def test_duplicate_key_is_a_conflict(raw: Raw) -> None:
    create(raw, CUSTOM)
    response = raw.call("POST", "/api/v2/metrics/shop", CUSTOM)
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


@pytest.mark.parametrize(("body", "message"), [
    ({**CUSTOM, "eventKey": None}, "eventKey: required for custom metrics"),
    ({k: v for k, v in CUSTOM.items() if k != "isNumeric"}, "isNumeric: required for custom metrics"),
    ({**NUMERIC, "unit": None}, "unit: required for numeric custom metrics"),
    ({**NUMERIC, "successCriteria": None}, "successCriteria: required for numeric custom metrics"),
    ({**CLICK, "selector": None}, "selector: required for click metrics"),
    ({**CLICK, "urls": []}, "urls: required for click metrics"),
    ({**PAGEVIEW, "urls": None}, "urls: required for pageview metrics"),
    ({**PAGEVIEW, "urls": [{"kind": "regex"}]}, "urls[0].pattern: required for regex URLs"),
    ({**PERCENTILE, "percentileValue": None}, "percentileValue: required when analysisType is percentile"),
    ({**PERCENTILE, "percentileValue": 101}, "percentileValue: must be between 0 and 100"),
    ({**PERCENTILE, "eventDefault": {"disabled": False}},
     "eventDefault: units without events are not supported for percentile metrics"),
    ({**CUSTOM, "eventDefault": {"disabled": False, "value": 5}},
     "eventDefault.value: must be 0. No other values are currently supported"),
    ({**CUSTOM, "key": "bad key"},
     "key: must contain only letters, numbers, '.', '-', or '_' and must start with an alphanumeric"),
    ({**CUSTOM, "kind": "custon"}, "kind: must be one of pageview, click, custom, trace"),
    ({"key": "t", "kind": "trace", "isNumeric": False}, "traceQuery: required for trace metrics"),
    ({**CUSTOM, "unitAggregationType": "count_distinct"}, "unitAggregationField: required for count_distinct"),
    ({**CUSTOM, "isNumeric": "no"}, "isNumeric: invalid type"),
    ({**CUSTOM, "unitAggregationType": "median"}, "unitAggregationType: must be one of average, sum, count_distinct"),
    ({**CUSTOM, "tags": ["has space"]}, "tags: invalid value 'has space'"),
])
def test_create_enforces_launchdarkly_rules(raw: Raw, body: dict[str, Any], message: str) -> None:
    body = {k: v for k, v in body.items() if v is not None}
    response = raw.call("POST", "/api/v2/metrics/shop", body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert response.json()["message"] == message


def test_malformed_bodies_are_400(raw: Raw) -> None:
    assert raw.call("POST", "/api/v2/metrics/shop", [1, 2]).status_code == 400
    response = raw.http.post("/api/v2/metrics/shop", content=b"{not json", headers={"Authorization": TOKEN})
    assert response.status_code == 400 and response.json()["message"] == "Invalid request body: not valid JSON"


def test_unknown_project_is_404(raw: Raw) -> None:
    response = raw.call("GET", "/api/v2/metrics/nope")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert raw.call("POST", "/api/v2/metrics/nope", CUSTOM).status_code == 404


# --- list -----------------------------------------------------------------------------------------

def _fill(raw: Raw, n: int) -> None:
    for i in range(n):
        create(raw, {**CUSTOM, "key": f"m{i:03d}", "name": f"Metric {n - i:03d}",
                     "tags": ["even"] if i % 2 == 0 else ["odd", "kpi"]})


def test_list_pages_with_limit_offset_and_total_count(raw: Raw) -> None:
    _fill(raw, 45)
    first = raw.call("GET", "/api/v2/metrics/shop").json()
    assert len(first["items"]) == 20 and first["totalCount"] == 45  # default limit 20
    assert first["_links"]["next"]["href"] == "/api/v2/metrics/shop?limit=20&offset=20"
    assert "prev" not in first["_links"]
    last = raw.call("GET", "/api/v2/metrics/shop", params={"limit": 20, "offset": 40}).json()
    assert [m["key"] for m in last["items"]] == [f"m{i:03d}" for i in range(40, 45)]
    assert "next" not in last["_links"] and last["_links"]["prev"]["href"].endswith("offset=20")
    assert len(raw.call("GET", "/api/v2/metrics/shop", params={"limit": 50}).json()["items"]) == 45


@pytest.mark.parametrize("params", [{"limit": "x"}, {"filter": "colour equals blue"}, {"filter": "tags contains ["}])
def test_list_rejects_malformed_parameters_with_400(raw: Raw, params: dict[str, Any]) -> None:
    response = raw.call("GET", "/api/v2/metrics/shop", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_list_invents_no_400s_for_values_the_spec_leaves_open(raw: Raw) -> None:
    _fill(raw, 55)
    assert len(raw.call("GET", "/api/v2/metrics/shop", params={"limit": 500}).json()["items"]) == 50
    assert len(raw.call("GET", "/api/v2/metrics/shop", params={"limit": 0}).json()["items"]) == 1
    assert raw.call("GET", "/api/v2/metrics/shop", params={"offset": -1}).json()["items"][0]["key"] == "m000"
    unsorted = raw.call("GET", "/api/v2/metrics/shop", params={"sort": "key"}).json()["items"]
    assert [m["key"] for m in unsorted][:3] == ["m000", "m001", "m002"]


@pytest.mark.parametrize("expression, keys", [
    ("dataSourceKeys anyOf [\"launchdarkly-hosted\"]", 3), ("dataSourceKeys notEquals [\"launchdarkly-hosted\"]", 0),
    ("maintainerTeamKey equals 'growth'", 0), ("view equals 'checkout'", 3), ("query equals [\"m001\", \"m002\"]", 2),
])
def test_list_takes_every_filter_field_the_spec_lists(raw: Raw, expression: str, keys: int) -> None:
    _fill(raw, 3)
    response = raw.call("GET", "/api/v2/metrics/shop", params={"filter": expression})
    assert response.status_code == 200 and len(response.json()["items"]) == keys


def test_list_filters_by_version_ids(raw: Raw) -> None:
    _fill(raw, 3)
    version = raw.call("GET", "/api/v2/metrics/shop/m001").json()["_versionId"]
    found = raw.call("GET", "/api/v2/metrics/shop", params={"filter": f"versionIds anyOf [\"{version}\"]"}).json()
    assert [m["key"] for m in found["items"]] == ["m001"]


def test_list_sorts_and_filters(raw: Raw) -> None:
    _fill(raw, 6)
    by_name = raw.call("GET", "/api/v2/metrics/shop", params={"sort": "name"}).json()["items"]
    assert [m["name"] for m in by_name] == sorted(m["name"] for m in by_name)
    newest = raw.call("GET", "/api/v2/metrics/shop", params={"sort": "-createdAt"}).json()["items"]
    assert newest[0]["_creationDate"] >= newest[-1]["_creationDate"]
    tagged = raw.call("GET", "/api/v2/metrics/shop", params={"filter": 'tags contains ["odd","kpi"]'}).json()
    assert tagged["totalCount"] == 3 and all("kpi" in m["tags"] for m in tagged["items"])
    query = raw.call("GET", "/api/v2/metrics/shop", params={"filter": "query equals 'm00'"}).json()
    assert query["totalCount"] == 6


def test_list_items_are_listing_reps_and_expand_experiment_count(raw: Raw, store: Store) -> None:
    store.seed({"projects": {"shop": [{**CUSTOM, "experimentCount": 2, "activeGuardedRolloutCount": 1}]}})
    plain = raw.call("GET", "/api/v2/metrics/shop").json()["items"][0]
    assert "experimentCount" not in plain and "isActive" not in plain
    assert plain["activeGuardedRolloutCount"] == 1
    expanded = raw.call("GET", "/api/v2/metrics/shop", params={"expand": "experimentCount"}).json()["items"][0]
    assert expanded["experimentCount"] == 2
    used = raw.call("GET", "/api/v2/metrics/shop", params={"filter": "hasConnections equals true"}).json()
    assert used["totalCount"] == 1


# --- get / patch / delete -------------------------------------------------------------------------

def test_get_with_expand(raw: Raw, store: Store) -> None:
    experiment = {"key": "exp-1", "name": "Checkout test", "environmentId": "e1", "environmentKey": "production",
                  "creationDate": 1700000000000, "_links": {}}
    store.seed({"projects": {"shop": [{**CUSTOM, "experimentCount": 1, "experiments": [experiment]}]}})
    plain = raw.call("GET", "/api/v2/metrics/shop/order-placed").json()
    assert "experiments" not in plain and plain["isActive"] is True
    rich = raw.call("GET", "/api/v2/metrics/shop/order-placed", params={"expand": "experiments,experimentCount"})
    assert rich.json()["experiments"] == [experiment] and rich.json()["experimentCount"] == 1
    assert raw.call("GET", "/api/v2/metrics/shop/nope").status_code == 404


def test_patch_applies_rfc6902_and_bumps_the_version(raw: Raw) -> None:
    create(raw, {**CUSTOM, "tags": ["a"]})
    response = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [
        {"op": "test", "path": "/name", "value": "Order placed"},
        {"op": "replace", "path": "/name", "value": "Orders"},
        {"op": "add", "path": "/tags/-", "value": "b"},
        {"op": "add", "path": "/description", "value": "All orders"},
    ])
    assert response.status_code == 200
    rep = response.json()
    assert (rep["name"], rep["tags"], rep["description"], rep["_version"]) == ("Orders", ["a", "b"], "All orders", 2)
    removed = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [{"op": "remove", "path": "/description"}])
    assert "description" not in removed.json() and removed.json()["_version"] == 3


def test_a_failed_test_rejects_the_whole_patch(raw: Raw) -> None:
    create(raw, CUSTOM)
    response = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [
        {"op": "replace", "path": "/name", "value": "Changed"},
        {"op": "test", "path": "/name", "value": "Something else"},
    ])
    assert response.status_code == 409
    assert response.json()["code"] == "optimistic_locking_error"
    after = raw.call("GET", "/api/v2/metrics/shop/order-placed").json()
    assert after["name"] == "Order placed" and after["_version"] == 1


def test_test_on_version_is_allowed(raw: Raw) -> None:
    create(raw, CUSTOM)
    ok = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [
        {"op": "test", "path": "/_version", "value": 1}, {"op": "replace", "path": "/name", "value": "X"}])
    assert ok.status_code == 200
    stale = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [
        {"op": "test", "path": "/_version", "value": 1}, {"op": "replace", "path": "/name", "value": "Y"}])
    assert stale.status_code == 409


@pytest.mark.parametrize(("ops", "message"), [
    ([{"op": "replace", "path": "/_version", "value": 7}], "_version: read-only field"),
    ([{"op": "replace", "path": "/key", "value": "other"}], "key: cannot be changed"),
    ([{"op": "replace", "path": "/kind", "value": "pageview"}], "kind: cannot be changed"),
    ([{"op": "remove", "path": "/eventKey"}], "eventKey: required for custom metrics"),
    ([{"op": "replace", "path": "/nothing/deeper", "value": 1}], "path /nothing/deeper does not exist"),
    ([{"op": "replace", "path": "/maintainerId", "value": "alice"}], "maintainerId: must be a member ID"),
    ([{"op": "jump", "path": "/name"}], "unknown patch operation 'jump'"),
    ({"op": "replace"}, "a JSON Patch must be an array of operations"),
])
def test_invalid_patches_are_400_and_change_nothing(raw: Raw, ops: Any, message: str) -> None:
    create(raw, CUSTOM)
    response = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", ops)
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert raw.call("GET", "/api/v2/metrics/shop/order-placed").json()["_version"] == 1


def test_replacing_kind_with_the_same_value_is_allowed(raw: Raw) -> None:
    # LaunchDarkly's Terraform provider sends `replace /kind` with every update.
    create(raw, CUSTOM)
    response = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [
        {"op": "replace", "path": "/kind", "value": "custom"}, {"op": "replace", "path": "/name", "value": "N"}])
    assert response.status_code == 200


def test_patch_ignores_fields_it_does_not_know(raw: Raw) -> None:
    create(raw, CUSTOM)
    rep = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [
        {"op": "add", "path": "/colour", "value": "blue"}]).json()
    assert "colour" not in rep and rep["_version"] == 1


def test_patch_of_the_deprecated_units_name_updates_analysis_units(raw: Raw, store: Store) -> None:
    store.seed({"experimentationSettings": {"shop": ["user", "organization"]}})
    create(raw, CUSTOM)
    rep = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [
        {"op": "replace", "path": "/randomizationUnits", "value": ["organization"]}]).json()
    assert rep["analysisUnits"] == rep["randomizationUnits"] == ["organization"]


def test_archive_by_patch(raw: Raw, store: Store) -> None:
    create(raw, CUSTOM)
    rep = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [
        {"op": "replace", "path": "/archived", "value": True}]).json()
    assert rep["archived"] is True and isinstance(rep["archivedAt"], int)


def test_delete_needs_the_metric_archived_and_unused(raw: Raw, store: Store) -> None:
    create(raw, CUSTOM)
    refused = raw.call("DELETE", "/api/v2/metrics/shop/order-placed")
    assert refused.status_code == 409 and "must be archived" in refused.json()["message"]
    raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [{"op": "replace", "path": "/archived", "value": True}])
    response = raw.call("DELETE", "/api/v2/metrics/shop/order-placed")
    assert response.status_code == 204 and response.content == b""
    assert raw.call("DELETE", "/api/v2/metrics/shop/order-placed").status_code == 404
    store.seed({"projects": {"shop": [{**CUSTOM, "key": "used", "archived": True, "experimentCount": 1}]}})
    assert raw.call("DELETE", "/api/v2/metrics/shop/used").status_code == 409


def test_unknown_routes_and_methods(raw: Raw) -> None:
    assert raw.http.get("/api/v2/flags/shop", headers={"Authorization": TOKEN}).status_code == 404
    response = raw.http.put("/api/v2/metrics/shop/x", headers={"Authorization": TOKEN})
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


# --- auth, rate limits, faults ---------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "wrong", f"Bearer {TOKEN}"])
def test_requests_without_the_right_token_are_401(raw: Raw, token: str | None) -> None:
    response = raw.call("GET", "/api/v2/metrics/shop", token=token)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_reader_token_can_read_but_not_write(store: Store) -> None:
    raw = Raw(EmulatorApp(store, token=TOKEN, reader_token="reader"))
    assert raw.call("GET", "/api/v2/metrics/shop", token="reader").status_code == 200
    response = raw.call("POST", "/api/v2/metrics/shop", CUSTOM, token="reader")
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_rate_limit_per_route_with_headers_and_reset(store: Store) -> None:
    clock = FakeClock()
    raw = Raw(EmulatorApp(store, token=TOKEN, faults=Faults(rate_limit=3), clock=clock))
    remaining = []
    for _ in range(3):
        response = raw.call("GET", "/api/v2/metrics/shop")
        remaining.append(response.headers["X-Ratelimit-Route-Remaining"])
    assert remaining == ["2", "1", "0"]
    limited = raw.call("GET", "/api/v2/metrics/shop")
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert limited.headers["X-Ratelimit-Reset"] == str(int((clock.now + 10) * 1000))
    assert raw.call("POST", "/api/v2/metrics/shop", CUSTOM).status_code == 201  # another route
    clock.now += 10
    assert raw.call("GET", "/api/v2/metrics/shop").headers["X-Ratelimit-Route-Remaining"] == "2"


def test_fail_rate_injects_5xx_and_writes_may_still_happen(store: Store) -> None:
    raw = Raw(EmulatorApp(store, token=TOKEN, faults=Faults(fail_rate=1.0), rng=random.Random(5)))
    statuses = {raw.call("GET", "/api/v2/metrics/shop").status_code for _ in range(20)}
    assert statuses <= {500, 502, 503} and len(statuses) > 1
    for i in range(20):
        raw.call("POST", "/api/v2/metrics/shop", {**CUSTOM, "key": f"k{i}"})
    created = len(store.snapshot_metrics("shop"))
    assert 0 < created < 20  # some failures came after the write: the ambiguous case clients must handle


def test_latency_knob_delays_every_answer(store: Store) -> None:
    slept: list[float] = []
    raw = Raw(EmulatorApp(store, token=TOKEN, faults=Faults(latency_ms=20), sleep=slept.append))
    raw.call("GET", "/api/v2/metrics/shop")
    raw.call("GET", "/api/v2/metrics/nope")
    assert slept == [0.02, 0.02]


def test_stats_count_every_api_request(raw: Raw, emulator: EmulatorApp) -> None:
    raw.call("GET", "/api/v2/metrics/shop")
    raw.call("GET", "/api/v2/metrics/shop", token=None)
    raw.call("POST", "/api/v2/metrics/shop", CUSTOM)
    stats = raw.http.get("/_emulator/stats", headers={"Authorization": TOKEN}).json()
    assert stats["requests"] == 3
    assert stats["byRoute"] == {"GET /api/v2/metrics/{projectKey}": 2, "POST /api/v2/metrics/{projectKey}": 1}
    assert stats["byStatus"] == {"200": 1, "201": 1, "401": 1}
    assert stats["byRouteAndStatus"]["POST /api/v2/metrics/{projectKey} 201"] == 1


# --- state and seed ---------------------------------------------------------------------------------

def test_state_file_persists_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    raw = Raw(EmulatorApp(Store(["shop"], state_file=state), token=TOKEN))
    create(raw, CUSTOM)
    raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [{"op": "replace", "path": "/name", "value": "N"}])
    # The changes are in the journal until the next snapshot; a restart replays them (and then compacts).
    assert sorted(os.listdir(tmp_path)) == [".state.json.journal", "state.json"]  # no temporary files left behind
    reopened = Store(["other"], state_file=state)
    assert reopened.get("shop", "order-placed")["name"] == "N"
    assert set(reopened.projects) == {"shop", "other"}
    assert sorted(os.listdir(tmp_path)) == ["state.json"]


def test_a_failed_snapshot_leaves_the_old_snapshot_and_the_journal(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state.json"
    store = Store(["shop"], state_file=state)
    store.create("shop", CUSTOM)
    before = state.read_bytes()

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.compact()
    assert state.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [".state.json.journal", "state.json"]
    monkeypatch.undo()
    assert Store([], state_file=state).get("shop", "order-placed")["kind"] == "custom"  # from the journal


def test_a_torn_journal_line_is_ignored_and_compactions_keep_everything(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from metrics_sync.emulator import store as store_module

    monkeypatch.setattr(store_module, "COMPACT_EVERY", 3)
    state = tmp_path / "state.json"
    store = Store(["shop"], state_file=state)
    for index in range(7):  # two compactions and one line in the journal
        store.create("shop", {**CUSTOM, "key": f"m{index}"})
    store.patch("shop", "m6", [{"op": "replace", "path": "/name", "value": "Renamed"}])
    journal = tmp_path / ".state.json.journal"
    with journal.open("ab") as fh:
        fh.write(b'{"op": "put", "kind": "metric", "project": "shop", "record": {"key": "m9"')  # killed mid-write
    reopened = Store([], state_file=state)
    assert [m["key"] for m in reopened.snapshot_metrics("shop")] == [f"m{i}" for i in range(7)]
    assert reopened.get("shop", "m6")["name"] == "Renamed" and not journal.exists()


def test_seed_keeps_connection_counts_and_versions(store: Store) -> None:
    added = store.seed({"projects": {"shop": [{**CUSTOM, "_version": 4, "activeExperimentCount": 2}],
                                     "web": [PAGEVIEW]}})
    assert added == 2
    record = store.get("shop", "order-placed")
    assert record["_version"] == 4 and record["activeExperimentCount"] == 2
    assert store.seed({"projects": {"shop": [CUSTOM]}}) == 0  # existing keys are kept


# --- what LaunchDarkly's sources say (docs/launchdarkly-contract.md) ------------------------------------

def test_replace_of_an_absent_member_adds_it(raw: Raw) -> None:
    create(raw, CUSTOM)
    rep = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [
        {"op": "replace", "path": "/description", "value": "added"}]).json()
    assert rep["description"] == "added"


def test_patch_accepts_the_comment_wrapper_and_records_the_comment(raw: Raw, emulator: EmulatorApp) -> None:
    create(raw, CUSTOM)
    rep = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", {
        "comment": "why", "patch": [{"op": "replace", "path": "/name", "value": "N"}]}).json()
    assert rep["name"] == "N" and emulator.audit == [{"project": "shop", "key": "order-placed", "comment": "why"}]


@pytest.mark.parametrize("status", [409, 400])
def test_failed_test_status_follows_the_reading(status: int) -> None:
    from metrics_sync.emulator.readings import Readings

    raw = Raw(EmulatorApp(Store(["shop"], readings=Readings(failed_test_status=status)), token=TOKEN))
    create(raw, CUSTOM)
    refused = raw.call("PATCH", "/api/v2/metrics/shop/order-placed", [
        {"op": "test", "path": "/name", "value": "stale"}, {"op": "replace", "path": "/name", "value": "N"}])
    assert refused.status_code == status


@pytest.mark.parametrize("kept", [False, True])
def test_maintainer_on_create_follows_the_reading(kept: bool) -> None:
    from metrics_sync.emulator.readings import Readings

    readings = Readings(maintainer_on_create="kept" if kept else "ignored")
    raw = Raw(EmulatorApp(Store(["shop"], readings=readings), token=TOKEN))
    rep = create(raw, {**CUSTOM, "maintainerId": "6b1fdeadbeef1644facecafe"})
    assert rep["maintainerId"] == ("6b1fdeadbeef1644facecafe" if kept else TOKEN_MEMBER_ID)


def test_hidden_archived_metrics_and_omitted_counters_follow_the_readings() -> None:
    from metrics_sync.emulator.readings import Readings

    store = Store(["shop"], readings=Readings(archived_in_list="hidden", list_counters="omitted"))
    raw = Raw(EmulatorApp(store, token=TOKEN))
    create(raw, CUSTOM)
    create(raw, {**CUSTOM, "key": "old"})
    raw.call("PATCH", "/api/v2/metrics/shop/old", [{"op": "replace", "path": "/archived", "value": True}])
    listed = raw.call("GET", "/api/v2/metrics/shop").json()
    assert [m["key"] for m in listed["items"]] == ["order-placed"] and listed["totalCount"] == 1
    assert "activeExperimentCount" not in listed["items"][0]
    single = raw.call("GET", "/api/v2/metrics/shop/old").json()
    assert single["archived"] is True and single["activeExperimentCount"] == 0


def test_analysis_units_must_be_available_for_experiments(raw: Raw, store: Store) -> None:
    refused = raw.call("POST", "/api/v2/metrics/shop", {**CUSTOM, "analysisUnits": ["device"]})
    assert refused.status_code == 400 and "not a context kind available for experiments" in refused.json()["message"]
    settings = raw.http.get("/api/v2/projects/shop/experimentation-settings", headers={"Authorization": TOKEN})
    assert settings.json()["randomizationUnits"] == [{"randomizationUnit": "user", "default": True, "_hidden": False}]
    put = raw.http.put("/api/v2/projects/shop/experimentation-settings", headers={"Authorization": TOKEN},
                       json={"randomizationUnits": [{"randomizationUnit": "user", "default": True},
                                                    {"randomizationUnit": "device"}]})
    assert put.status_code == 200
    assert create(raw, {**CUSTOM, "analysisUnits": ["device"]})["analysisUnits"] == ["device"]


def test_newer_fields_of_the_spec(raw: Raw, store: Store) -> None:
    # valueColumn is in MetricPost but not in MetricRep (launchdarkly-api 25.0.1): kept, never returned (A36).
    rep = create(raw, {**NUMERIC, "valueColumn": "amount"})
    assert "valueColumn" not in rep and store.get("shop", rep["key"])["valueColumn"] == "amount"
    store.seed({"projects": {"shop": [{**CUSTOM, "key": "seen", "category": "Error monitoring",
                                       "lastSeen": 1_790_000_000_000}]}})
    seen = raw.call("GET", "/api/v2/metrics/shop/seen").json()
    assert seen["category"] == "Error monitoring" and seen["lastSeen"] == 1_790_000_000_000


def test_single_read_expands_guarded_rollouts(raw: Raw, store: Store) -> None:
    rollout = {"_id": "r1", "flagKey": "new-checkout", "flagName": "New checkout", "environmentKey": "production",
               "environmentName": "Production", "status": "monitoring", "creationDate": 1, "_links": {}}
    store.seed({"projects": {"shop": [{**CUSTOM, "activeGuardedRolloutCount": 1, "guardedRollouts": [rollout]}]}})
    plain = raw.call("GET", "/api/v2/metrics/shop/order-placed").json()
    assert "guardedRollouts" not in plain
    expanded = raw.call("GET", "/api/v2/metrics/shop/order-placed",
                        params={"expand": "guardedRollouts,guardedRolloutCount"}).json()
    assert expanded["guardedRollouts"] == [rollout] and expanded["guardedRolloutCount"] == 1


def test_members(raw: Raw) -> None:
    me = raw.http.get("/api/v2/members/me", headers={"Authorization": TOKEN}).json()
    assert me["_id"] == TOKEN_MEMBER_ID
    listed = raw.http.get("/api/v2/members", headers={"Authorization": TOKEN}).json()
    assert [m["_id"] for m in listed["items"]] == [TOKEN_MEMBER_ID, "6b1fdeadbeef1644facecafe"]
