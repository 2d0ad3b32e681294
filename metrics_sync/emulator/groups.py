"""Metric groups, experiments and guarded rollouts in the emulator: LaunchDarkly's rules and representations.

Sources (docs/launchdarkly-contract.md, A24-A27):
  * `MetricGroupPost` (spec): `name`, `kind` (funnel | standard), `maintainerId`, `tags`, `metrics` required,
    `key` required by the newer generated client; `MetricInMetricGroupInput` = {key, nameInGroup};
    `MetricInGroupRep.nameInGroup`: "Required if and only if the metric group is a funnel";
  * the Terraform provider: at least two metrics; the API answers 400 "maintainer ID is required" to an empty
    maintainer; a standard group's metrics are sent with an empty `nameInGroup`; the order of the metrics is
    kept for both kinds; `key` and `kind` cannot change; a delete of an absent group is a 404;
  * `MetricGroupRep`, `MetricInGroupRep`, `DependentExperimentRep`, `DependentMetricGroupRep` (spec) for what
    is answered; the experiments API (`Experiment.currentIteration.status`: not_started, running, stopped).
Pure functions over plain dicts; the store holds the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metrics_sync.emulator.rules import KEY_PATTERN, MEMBER_ID_PATTERN, TAG_PATTERN, RuleError

GROUP_KINDS = ("funnel", "standard")
# What a POST or PATCH may set; anything else in a body is ignored, as for metrics.
GROUP_EDITABLE = ("name", "description", "kind", "tags", "maintainerId", "metrics")
EXPERIMENT_STATUSES = ("not_started", "running", "stopped")


def check_group(group: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise RuleError with LaunchDarkly-style text when `group` is not a valid metric group of a project
    whose metrics are `metrics` (key -> record)."""
    key = group.get("key")
    if not isinstance(key, str) or not key:
        raise RuleError("key: required")
    if not KEY_PATTERN.fullmatch(key):
        raise RuleError("key: must contain only letters, numbers, '.', '-', or '_' and must start with an alphanumeric")
    name = group.get("name")
    if not isinstance(name, str) or not name:
        raise RuleError("name: required")
    if group.get("kind") not in GROUP_KINDS:
        raise RuleError(f"kind: must be one of {', '.join(GROUP_KINDS)}")
    if group.get("description") is not None and not isinstance(group["description"], str):
        raise RuleError("description: invalid type")
    maintainer = group.get("maintainerId")
    team = group.get("maintainerTeamKey")
    if maintainer is None and isinstance(team, str) and KEY_PATTERN.fullmatch(team):
        pass  # a team maintains it: only a seed sets one (MetricGroupPost names a member, `maintainerId`)
    elif not isinstance(maintainer, str) or not maintainer:
        raise RuleError("maintainer ID is required")
    elif not MEMBER_ID_PATTERN.fullmatch(maintainer):
        raise RuleError("maintainerId: must be a member ID")
    tags = group.get("tags")
    if not isinstance(tags, list):
        raise RuleError("tags: required")
    for tag in tags:
        if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
            raise RuleError(f"tags: invalid value {tag!r}")
    entries = group.get("metrics")
    if not isinstance(entries, list):
        raise RuleError("metrics: required")
    if len(entries) < 2:
        raise RuleError("metrics: a metric group needs at least two metrics")
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise RuleError(f"metrics[{index}].key: required")
        metric_key = entry["key"]
        if metric_key in seen:
            raise RuleError(f"metrics[{index}].key: metric {metric_key!r} is in the group twice")
        seen.add(metric_key)
        if metric_key not in metrics:
            raise RuleError(f"metrics[{index}].key: unknown metric {metric_key!r}")
        name_in_group = entry.get("nameInGroup")
        if name_in_group is not None and not isinstance(name_in_group, str):
            raise RuleError(f"metrics[{index}].nameInGroup: invalid type")
        if group["kind"] == "funnel" and not name_in_group:
            raise RuleError(f"metrics[{index}].nameInGroup: required for funnel metric groups")
        if group["kind"] == "standard" and name_in_group:
            raise RuleError(f"metrics[{index}].nameInGroup: only funnel metric groups name their metrics")


def stored_metrics(entries: Any) -> list[dict[str, Any]]:
    """What the emulator keeps of a group's metrics: key and nameInGroup, in order."""
    return [{"key": e.get("key"), "nameInGroup": e.get("nameInGroup") or ""} for e in entries or []
            if isinstance(e, dict)]


def maintainer_rep(record: Mapping[str, Any], member: Mapping[str, Any]) -> dict[str, Any]:
    """MaintainerRep: `{key, kind: member, _member}` (MemberSummary `member`), or for a team `{key, kind: team,
    _team}` (MemberTeamSummaryRep: key, name, customRoleKeys, _links)."""
    team = record.get("maintainerTeamKey")
    if team:
        return {"key": team, "kind": "team", "_team": {
            "key": team, "name": record.get("maintainerTeamName") or team, "customRoleKeys": [],
            "_links": {"self": {"href": f"/api/v2/teams/{team}", "type": "application/json"}}}}
    return {"key": record["maintainerId"], "kind": "member", "_member": dict(member)}


def group_links(project: str, key: str) -> dict[str, Any]:
    return {"parent": {"href": f"/api/v2/projects/{project}", "type": "application/json"},
            "self": {"href": f"/api/v2/projects/{project}/metric-groups/{key}", "type": "application/json"}}


def dependent_group(project: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """DependentMetricGroupRep: how a metric names a group it is in."""
    return {"key": record["key"], "name": record["name"], "kind": record["kind"],
            "_links": group_links(project, record["key"])}


def dependent_experiment(project: str, experiment: Mapping[str, Any]) -> dict[str, Any]:
    """DependentExperimentRep: how a metric or group names an experiment that uses it."""
    env = experiment["environmentKey"]
    rep = {"key": experiment["key"], "name": experiment["name"], "environmentId": experiment["environmentId"],
           "environmentKey": env, "creationDate": experiment["_creationDate"],
           "_links": {"parent": {"href": f"/api/v2/projects/{project}/environments/{env}", "type": "application/json"},
                      "self": {"href": f"/api/v2/projects/{project}/environments/{env}/experiments/"
                                       f"{experiment['key']}", "type": "application/json"}}}
    if experiment.get("archivedDate"):
        rep["archivedDate"] = experiment["archivedDate"]
    return rep


def metric_in_group(project: str, entry: Mapping[str, Any], metric: Mapping[str, Any] | None,
                    kind: str) -> dict[str, Any]:
    """MetricInGroupRep: a group's metric, with what the group's reader needs to know of it."""
    key = entry["key"]
    rep: dict[str, Any] = {"key": key, "_links": {"self": {"href": f"/api/v2/metrics/{project}/{key}",
                                                          "type": "application/json"}}}
    if metric is not None:
        rep.update({"name": metric.get("name", key), "kind": metric.get("kind"), "_versionId": metric.get("_versionId"),
                    "isNumeric": metric.get("isNumeric", False),
                    "unitAggregationType": metric.get("unitAggregationType"),
                    "analysisType": metric.get("analysisType")})
        if metric.get("eventKey"):
            rep["eventKey"] = metric["eventKey"]
        if metric.get("analysisUnits"):
            rep["analysisUnits"] = metric["analysisUnits"]
            rep["randomizationUnits"] = metric["analysisUnits"]
    else:  # a metric deleted since: LaunchDarkly's answer for it is unknown; keep the required fields
        rep.update({"name": key, "kind": "custom"})
    if kind == "funnel":
        rep["nameInGroup"] = entry.get("nameInGroup", "")
    return rep


def _iteration_metric(key: str, version_id: str | None) -> dict[str, Any]:
    """DependentMetricOrMetricGroupRep: a metric of an iteration, with the `_versionId` it measures (A48)."""
    return {"key": key, "isGroup": False, **({"_versionId": version_id} if version_id else {})}


def experiment_representation(project: str, experiment: Mapping[str, Any]) -> dict[str, Any]:
    """The experiments API's `Experiment`, with the fields metrics-sync and a reader of the emulator use."""
    env = experiment["environmentKey"]
    status = experiment["status"]
    versions = experiment.get("metricVersions") or {}
    iteration: dict[str, Any] = {"_id": experiment["_id"] + "-iteration",
                                 "hypothesis": experiment.get("hypothesis", ""), "status": status,
                                 "createdAt": experiment["_creationDate"],
                                 "metrics": [_iteration_metric(k, versions.get(k))
                                             for k in experiment.get("metrics", [])]
                                 + [{"key": k, "isGroup": True} for k in experiment.get("metricGroups", [])]}
    if status in ("running", "stopped"):
        iteration["startedAt"] = experiment["_creationDate"]
    if status == "stopped":
        iteration["endedAt"] = experiment["_creationDate"]
    rep = {"_id": experiment["_id"], "key": experiment["key"], "name": experiment["name"],
           "_maintainerId": experiment.get("maintainerId", ""), "_creationDate": experiment["_creationDate"],
           "environmentKey": env, "currentIteration": iteration,
           "_links": {"parent": {"href": f"/api/v2/projects/{project}/environments/{env}", "type": "application/json"},
                      "self": {"href": f"/api/v2/projects/{project}/environments/{env}/experiments/"
                                       f"{experiment['key']}", "type": "application/json"}}}
    if experiment.get("archivedDate"):
        rep["archivedDate"] = experiment["archivedDate"]
    return rep
