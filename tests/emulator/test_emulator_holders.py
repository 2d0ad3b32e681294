"""The emulator's environments, holdouts and release policies (emulator/holders.py), and its readings of what
the sources leave open about them: whether a metric lists a holdout's base experiment, what a release policy
refuses, and whether a delete needs an archive first (docs/launchdarkly-contract.md, A40-A45)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from metrics_sync.emulator import EmulatorApp, Store
from metrics_sync.emulator.readings import Readings

AUTH = {"Authorization": "t"}
BETA = {**AUTH, "LD-API-Version": "beta"}
ARCHIVE = [{"op": "replace", "path": "/archived", "value": True}]


def _client(readings: Readings | None = None, **seed: Any) -> tuple[httpx.Client, Store]:
    store = Store(["shop"], readings=readings)
    store.seed({"projects": {"shop": [
        {"key": key, "kind": "custom", "eventKey": key, "isNumeric": False} for key in ("a", "b", "c")]},
        "metricGroups": {"shop": [{"key": "g", "name": "G", "kind": "standard", "tags": [],
                                   "maintainerId": "569fdeadbeef1644facecafe",
                                   "metrics": [{"key": "a"}, {"key": "b"}]}]}, **seed})
    return httpx.Client(transport=httpx.WSGITransport(app=EmulatorApp(store, token="t")),
                        base_url="http://127.0.0.1"), store


HOLDOUTS = {"environments": {"shop": ["production", "staging"]},
            "holdouts": {"shop": [{"key": f"h{i}", "environmentKey": "production", "metrics": ["c"],
                                   "metricGroups": ["g"], "primaryMetricKey": "c", "analysisUnits": {"c": "user"}}
                                  for i in range(3)]}}
POLICY = {"releasePolicies": {"shop": [{"key": "p", "metrics": ["c"], "metricGroups": ["g"]}]}}


def test_environments_and_holdouts_page_by_limit_and_offset() -> None:
    client, _ = _client(**HOLDOUTS)
    environments = client.get("/api/v2/projects/shop/environments", headers=AUTH).json()
    assert [e["key"] for e in environments["items"]] == ["production", "staging"]
    assert environments["totalCount"] == 2
    page = client.get("/api/v2/projects/shop/environments/production/holdouts", params={"limit": 2, "offset": 1},
                      headers=AUTH).json()
    assert ([h["key"] for h in page["items"]], page["total_count"]) == (["h1", "h2"], 3)
    assert "metrics" not in page["items"][0]  # SimpleHoldoutRep names no metrics
    assert client.get("/api/v2/projects/shop/environments/staging/holdouts", headers=AUTH).json()["items"] == []
    assert client.get("/api/v2/projects/shop/environments/nowhere/holdouts", headers=AUTH).status_code == 404


def test_a_holdout_detail_names_its_metrics_through_its_base_experiment() -> None:
    client, _ = _client(**HOLDOUTS)
    detail = client.get("/api/v2/projects/shop/environments/production/holdouts/h0", headers=AUTH).json()
    base = detail["baseExperiment"]
    assert base["holdoutId"] == detail["_id"] and detail["isDirty"] is True
    metrics = base["currentIteration"]["metrics"]
    assert [(m["key"], m["isGroup"]) for m in metrics] == [("c", False), ("g", True)]
    assert metrics[0]["analysisUnit"] == "user" and base["currentIteration"]["primaryMetric"]["key"] == "c"
    assert [m["key"] for m in metrics[1]["metrics"]] == ["a", "b"]
    assert client.get("/api/v2/projects/shop/environments/staging/holdouts/h0", headers=AUTH).status_code == 404


def test_release_policies_are_beta() -> None:
    client, _ = _client(**POLICY)
    assert client.get("/api/v2/projects/shop/release-policies", headers=AUTH).status_code == 403
    policies = client.get("/api/v2/projects/shop/release-policies", headers=BETA).json()
    assert policies["totalCount"] == 1
    assert policies["items"][0]["guardedReleaseConfig"]["metricKeys"] == ["c"]
    assert client.get("/api/v2/projects/shop/release-policies/p", headers=BETA).json()["key"] == "p"
    assert client.get("/api/v2/projects/shop/release-policies/q", headers=BETA).status_code == 404


@pytest.mark.parametrize("listed", ["omitted", "listed"])
def test_a_holdouts_base_experiment_in_the_experiments_expansion_is_a_reading(listed: str) -> None:
    client, _ = _client(Readings(holdout_in_experiments=listed), **HOLDOUTS)
    rep = client.get("/api/v2/metrics/shop/c", params={"expand": "experiments,experimentCount"}, headers=AUTH).json()
    keys = sorted(e["key"] for e in rep.get("experiments", []))
    assert keys == (["h0", "h1", "h2"] if listed == "listed" else [])
    assert rep["activeExperimentCount"] == (3 if listed == "listed" else 0)


@pytest.mark.parametrize("reading", ["delete", "archive_and_delete", "nothing"])
def test_what_a_release_policy_refuses_is_a_reading(reading: str) -> None:
    client, _ = _client(Readings(policy_blocks_retire=reading), **POLICY)
    archived = client.patch("/api/v2/metrics/shop/c", json=ARCHIVE, headers=AUTH)
    assert archived.status_code == (409 if reading == "archive_and_delete" else 200)
    if archived.status_code == 200:
        assert client.delete("/api/v2/metrics/shop/c", headers=AUTH).status_code == (
            204 if reading == "nothing" else 409)
    assert client.delete("/api/v2/projects/shop/metric-groups/g", headers=BETA).status_code == (
        204 if reading == "nothing" else 409)


@pytest.mark.parametrize("reading", ["required", "not_required"])
def test_archive_before_delete_is_a_reading(reading: str) -> None:
    client, store = _client(Readings(archive_before_delete=reading))
    deleted = client.delete("/api/v2/metrics/shop/c", headers=AUTH)
    assert deleted.status_code == (409 if reading == "required" else 204)
    if reading == "required":
        assert client.patch("/api/v2/metrics/shop/c", json=ARCHIVE, headers=AUTH).status_code == 200
        assert client.delete("/api/v2/metrics/shop/c", headers=AUTH).status_code == 204
    assert "c" not in store.projects["shop"]


def test_holders_survive_a_restart(tmp_path: Any) -> None:
    state = tmp_path / "state.json"
    store = Store(["shop"], state_file=state)
    store.seed({**HOLDOUTS, **POLICY})
    again = Store(["shop"], state_file=state)
    assert sorted(again.holdouts["shop"]) == ["h0", "h1", "h2"]
    assert again.release_policies("shop")[0]["key"] == "p"
    assert again.environment_keys("shop") == ["production", "staging"]
