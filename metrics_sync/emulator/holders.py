"""Environments, holdouts and release policies in the emulator: what else uses a metric, as LaunchDarkly's
generated client (`launchdarkly-api` 25.0.1) describes it. Seeded only (the emulator runs no flags).

Sources (docs/launchdarkly-contract.md, A40-A45):
  * `Environments` `{_links, totalCount, items: [Environment]}`, paged by `limit` (default 20) and `offset`;
  * `HoldoutsCollectionRep` `{items: [SimpleHoldoutRep], _links, total_count}` (sic: snake case), paged the
    same way; `SimpleHoldoutRep` `{_id, key, name, status, createdAt, updatedAt, experiments}`;
  * `HoldoutDetailRep` `{_id, status, description, holdoutAmount, isDirty, createdAt, updatedAt, baseExperiment:
    Experiment, relatedExperiments}`: the holdout is carried by its base experiment (`holdoutId`), whose
    iteration lists the metrics (`DependentMetricOrMetricGroupRep`: key, isGroup, metrics of a group,
    analysisUnit);
  * `ReleasePoliciesResponse` `{items: [ReleasePolicy], totalCount}` (beta, not paged); `ReleasePolicy` `{_id,
    key, name, rank, scope: {environmentKeys, flagTagKeys}, releaseMethod, guardedReleaseConfig: {metricKeys,
    metricGroupKeys, ...}}`.
The holdout's own `status` values are not documented: the emulator answers its base experiment's iteration
status (not_started, running, stopped). Pure functions over plain dicts; the store holds the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metrics_sync.emulator.groups import EXPERIMENT_STATUSES

DEFAULT_ENVIRONMENTS = ("production", "test")  # a new LaunchDarkly project's environments
RELEASE_METHODS = ("guarded-release", "immediate-release", "progressive-release")


def seed_holdout(raw: Mapping[str, Any], new_id: str, now: int) -> dict[str, Any]:
    """A holdout a seed gives: key, name, environmentKey, status, metrics, metricGroups, optional primaryMetricKey,
    analysisUnits ({metric key: context kind}), archived."""
    status = raw.get("status", "running")
    if status not in EXPERIMENT_STATUSES:
        raise ValueError(f"holdout {raw.get('key')!r}: status must be one of {', '.join(EXPERIMENT_STATUSES)}")
    record = {"_id": new_id, "key": str(raw["key"]), "name": str(raw.get("name") or raw["key"]),
              "environmentKey": str(raw.get("environmentKey", "production")), "status": status,
              "metrics": [str(k) for k in raw.get("metrics", [])],
              "metricGroups": [str(k) for k in raw.get("metricGroups", [])],
              "primaryMetricKey": raw.get("primaryMetricKey"), "analysisUnits": dict(raw.get("analysisUnits", {})),
              "holdoutAmount": str(raw.get("holdoutAmount", "5")), "createdAt": now}
    if raw.get("archived"):
        record["archivedDate"] = now
    return record


def seed_policy(raw: Mapping[str, Any], new_id: str, rank: int) -> dict[str, Any]:
    """A release policy a seed gives: key, name, releaseMethod, scope, guardedReleaseConfig (or, shorter,
    environmentKeys, metrics, metricGroups)."""
    method = raw.get("releaseMethod", "guarded-release")
    if method not in RELEASE_METHODS:
        raise ValueError(f"release policy {raw.get('key')!r}: releaseMethod must be one of "
                         f"{', '.join(RELEASE_METHODS)}")
    config = dict(raw.get("guardedReleaseConfig") or {})
    config.setdefault("metricKeys", [str(k) for k in raw.get("metrics", [])])
    config.setdefault("metricGroupKeys", [str(k) for k in raw.get("metricGroups", [])])
    config.setdefault("rollbackOnRegression", True)
    scope = dict(raw.get("scope") or {"environmentKeys": list(raw.get("environmentKeys", ["production"]))})
    return {"_id": new_id, "key": str(raw["key"]), "name": str(raw.get("name") or raw["key"]),
            "rank": int(raw.get("rank", rank)), "releaseMethod": method, "scope": scope,
            "guardedReleaseConfig": config}


def names(record: Mapping[str, Any], resource: str) -> list[str]:
    """The metric ("metric") or metric group ("metric-group") keys a holdout or release policy names."""
    if "guardedReleaseConfig" in record:
        config = record["guardedReleaseConfig"]
        return list(config.get("metricKeys" if resource == "metric" else "metricGroupKeys") or [])
    return list(record["metrics"] if resource == "metric" else record["metricGroups"])


def environment_rep(project: str, key: str) -> dict[str, Any]:
    """Environment, with the fields a reader of the list needs."""
    return {"_id": f"env-{key}", "key": key, "name": key.capitalize(), "color": "417505", "defaultTtl": 0,
            "secureMode": False, "defaultTrackEvents": False, "requireComments": False, "confirmChanges": False,
            "tags": [], "critical": key == "production",
            "_links": {"self": {"href": f"/api/v2/projects/{project}/environments/{key}", "type": "application/json"}}}


def simple_holdout(project: str, holdout: Mapping[str, Any]) -> dict[str, Any]:
    """SimpleHoldoutRep: a list item (no metrics: those are in the detail's base experiment)."""
    return {"_id": holdout["_id"], "key": holdout["key"], "name": holdout["name"], "status": holdout["status"],
            "createdAt": holdout["createdAt"], "updatedAt": holdout["createdAt"],
            "experiments": [{"key": holdout["key"], "name": holdout["name"], "environment": holdout["environmentKey"]}]}


def holdout_detail(project: str, holdout: Mapping[str, Any], groups: Mapping[str, Mapping[str, Any]],
                   metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """HoldoutDetailRep: the holdout, its base experiment and that experiment's metrics."""
    env, status = holdout["environmentKey"], holdout["status"]
    units = holdout.get("analysisUnits") or {}

    def metric(key: str) -> dict[str, Any]:
        found = metrics.get(key) or {}
        entry = {"key": key, "_versionId": str(found.get("_versionId", "")), "name": str(found.get("name", key)),
                 "kind": str(found.get("kind", "custom")), "isGroup": False,
                 "_links": {"self": {"href": f"/api/v2/metrics/{project}/{key}", "type": "application/json"}}}
        if key in units:
            entry["analysisUnit"] = units[key]
        return entry

    def group(key: str) -> dict[str, Any]:
        found = groups.get(key) or {}
        members = [{"key": m["key"], "name": str((metrics.get(m["key"]) or {}).get("name", m["key"])),
                    "kind": str((metrics.get(m["key"]) or {}).get("kind", "custom")),
                    "_links": {"self": {"href": f"/api/v2/metrics/{project}/{m['key']}", "type": "application/json"}}}
                   for m in found.get("metrics", [])]
        return {"key": key, "_versionId": "", "name": str(found.get("name", key)),
                "kind": str(found.get("kind", "standard")), "isGroup": True, "metrics": members,
                "_links": {"self": {"href": f"/api/v2/projects/{project}/metric-groups/{key}",
                                    "type": "application/json"}}}

    entries = [metric(k) for k in holdout["metrics"]] + [group(k) for k in holdout["metricGroups"]]
    iteration: dict[str, Any] = {"_id": holdout["_id"] + "-iteration", "hypothesis": "", "status": status,
                                 "createdAt": holdout["createdAt"], "metrics": entries}
    primary = holdout.get("primaryMetricKey")
    chosen = [e for e in entries if e["key"] == primary]
    if chosen:
        iteration["primaryMetric"] = chosen[0]
    base: dict[str, Any] = {"_id": holdout["_id"], "key": holdout["key"], "name": holdout["name"],
                            "_maintainerId": "569fdeadbeef1644facecafe", "_creationDate": holdout["createdAt"],
                            "environmentKey": env, "holdoutId": holdout["_id"], "currentIteration": iteration,
                            "_links": {"self": {"href": f"/api/v2/projects/{project}/environments/{env}/experiments/"
                                                        f"{holdout['key']}", "type": "application/json"}}}
    if holdout.get("archivedDate"):
        base["archivedDate"] = holdout["archivedDate"]
    return {"_id": holdout["_id"], "status": status, "description": "", "holdoutAmount": holdout["holdoutAmount"],
            "isDirty": status == "running", "createdAt": holdout["createdAt"], "updatedAt": holdout["createdAt"],
            "baseExperiment": base, "relatedExperiments": []}


def policy_rep(policy: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in policy.items()}
