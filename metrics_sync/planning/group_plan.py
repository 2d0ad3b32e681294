"""Desired metric groups + LaunchDarkly's metric groups -> the group part of a project's plan. Pure.

Rules (the README's "Metric groups"), the same as for metrics where they can be:
  * a YAML key missing remotely is created with the ownership tag and a maintainer (LaunchDarkly requires one:
    the definitions' `maintainerId`, else the access token's member, as LaunchDarkly's Terraform provider does);
  * a YAML key present remotely is compared in canonical form (fields.METRIC_GROUP) and updated with a
    guarded JSON Patch; an unowned group is adopted, unless the file says `adopt: false`;
  * a kind change is refused (LaunchDarkly cannot change a group's key or kind);
  * every metric a group names must be in the definitions or in LaunchDarkly (and not archived, and not
    archived by this plan); a funnel's steps must average units (LaunchDarkly's docs);
  * a managed group that left the YAML is deleted with --prune, unless an experiment or guarded rollout
    uses it (blocked); groups without the tag and not in the YAML are counted and never touched.
Apply creates metrics before the groups that use them and deletes groups before archiving metrics (apply.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metrics_sync.core.model import Blocked, Change, DesiredGroup, FieldChange
from metrics_sync.core.resources import METRIC_GROUP, group_type
from metrics_sync.planning.diffing import diff


@dataclass(frozen=True)
class GroupInputs:
    """What plan read for a project's metric groups."""

    desired: Sequence[DesiredGroup] = ()
    remote: Sequence[Mapping[str, Any]] | None = None  # list representations; None: not read
    details: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # key -> single read with expansions
    default_maintainer: str | None = None  # the access token's member, when a create needs one
    maintainer_problem: str | None = None  # why there is none (e.g. a service token)


@dataclass
class GroupPlan:
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    unmanaged: int = 0
    would_delete: list[str] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def desired_canonical_group(group: DesiredGroup, ownership_tag: str) -> dict[str, Any]:
    fields = dict(group.fields)
    fields["tags"] = [*(fields.get("tags") or []), ownership_tag]
    return METRIC_GROUP.canonical(fields)


def plan_groups(project: str, inputs: GroupInputs, *, ownership_tag: str, prune: bool,
                defined_metrics: Mapping[str, Mapping[str, Any]], remote_metrics: Mapping[str, Mapping[str, Any]],
                archiving: Collection[str], creating: Collection[str] = (),
                selected: Collection[str] | None = None) -> GroupPlan:
    """`defined_metrics`: the project's metrics in the definitions (key -> canonical form); `remote_metrics`:
    LaunchDarkly's (key -> list representation); `archiving` and `creating`: metrics this plan archives and
    creates; `selected`: the group keys --target selects (None: all)."""
    out = GroupPlan()
    tag = ownership_tag
    remote = {str(r["key"]): r for r in inputs.remote or []}
    desired = [g for g in inputs.desired if selected is None or g.key in selected]
    for group in sorted(desired, key=lambda g: g.key):
        after = desired_canonical_group(group, tag)
        problems = _metric_problems(project, group, after, defined_metrics, remote_metrics, archiving, creating)
        if problems:
            out.refused.extend(problems)
            continue
        rep = remote.get(group.key)
        if rep is None:
            _create(project, group, after, inputs, out)
            continue
        before = METRIC_GROUP.canonical(rep)
        if tag not in before["tags"] and not group.adopt:
            after = {**after, "tags": [t for t in after["tags"] if t != tag]}
        if before["kind"] != after["kind"]:
            out.refused.append(f"{group.field_sources.get('kind', group.source)}: metric group `{group.key}` in "
                               f"project `{project}`: kind cannot change from {before['kind']} to {after['kind']} "
                               f"(LaunchDarkly cannot change a metric group's kind or key); give the new group a "
                               f"new key, and delete the old one with --prune")
            continue
        fields, patch = diff(after, rep, METRIC_GROUP)
        if not fields:
            out.unchanged += 1
            continue
        adopt = tag in after["tags"] and tag not in before["tags"]
        out.changes.append(Change("update", group.key, group_type(after), before, after, fields, patch,
                                  remote_version=_version(rep), adopt=adopt, source=str(group.source),
                                  resource="metric-group"))

    defined = {g.key for g in inputs.desired}
    for key in sorted(set(remote) - defined):
        if selected is not None and key not in selected:
            continue
        rep = remote[key]
        before = METRIC_GROUP.canonical(rep)
        if tag not in before["tags"]:
            out.unmanaged += 1
            continue
        reason = _in_use(inputs.details.get(key) or rep)
        if reason:
            out.blocked.append(Blocked(key, reason, "metric-group"))
        elif prune:
            out.changes.append(Change("delete", key, group_type(before), before, None, [], [],
                                      remote_version=_version(rep), resource="metric-group"))
        else:
            out.would_delete.append(key)
    return out


def _create(project: str, group: DesiredGroup, after: dict[str, Any], inputs: GroupInputs, out: GroupPlan) -> None:
    maintainer = after.get("maintainerId") or inputs.default_maintainer
    if not maintainer:
        why = inputs.maintainer_problem or "the access token belongs to no member (a service token?)"
        out.refused.append(f"{group.source}: metric group `{group.key}` in project `{project}`: LaunchDarkly "
                           f"requires a maintainer, and {why}; set `maintainerId` to a member's ID")
        return
    after = {**after, "maintainerId": maintainer}
    shown = [FieldChange(f, None, v, ("the access token's member",) if f == "maintainerId"
                         and not group.fields.get("maintainerId") else ())
             for f, v in after.items() if v != ""]
    out.changes.append(Change("create", group.key, group_type(after), None, after, shown, [],
                              body=METRIC_GROUP.post_body(group.key, after), source=str(group.source),
                              resource="metric-group"))


def _metric_problems(project: str, group: DesiredGroup, after: Mapping[str, Any],
                     defined: Mapping[str, Mapping[str, Any]], remote: Mapping[str, Mapping[str, Any]],
                     archiving: Collection[str], creating: Collection[str]) -> list[str]:
    """Every metric the group names exists (in the definitions or LaunchDarkly), is not archived or being
    archived, and, in a funnel, averages units. Located at the metric's line in the group."""
    problems = []
    for index, entry in enumerate(after.get("metrics") or []):
        key = entry["key"]
        where = group.metric_sources[index] if index < len(group.metric_sources) else group.source
        prefix = f"{where}: metric group `{group.key}`: metric `{key}`"
        metric = defined.get(key)
        rep = remote.get(key)
        if metric is None and rep is None:
            problems.append(f"{prefix} is neither in the definitions nor in LaunchDarkly project `{project}`; "
                            f"define it, or correct the key")
            continue
        if metric is None and rep is not None and rep.get("archived"):
            problems.append(f"{prefix} is archived in LaunchDarkly; define it to restore it, or remove it from "
                            f"the group")
            continue
        if metric is not None and metric.get("archived"):
            problems.append(f"{prefix} is declared `archived: true` in the definitions; remove it from the group")
            continue
        if rep is None and key not in creating:
            problems.append(f"{prefix} is not in LaunchDarkly yet, and this plan does not create it (--target leaves "
                            f"it out); add it to the targets")
            continue
        if key in archiving:
            problems.append(f"{prefix} is archived by this plan (it left the definitions); keep it defined, or "
                            f"remove it from the group")
            continue
        aggregation = (metric or rep or {}).get("unitAggregationType") or "average"
        if metric is None and after.get("kind") == "funnel" and aggregation != "average":
            problems.append(f"{prefix} aggregates units by `{aggregation}` in LaunchDarkly; funnel steps must "
                            f"use `average` (LaunchDarkly's docs); change the metric, or use a standard group")
    return problems


def _in_use(rep: Mapping[str, Any]) -> str:
    """Why a group cannot be deleted (empty when it can): any experiment or guarded rollout that uses it.
    A delete cannot be undone, so a stopped experiment blocks it too, and so does not knowing."""
    experiments = [e for e in rep.get("experiments") or [] if isinstance(e, Mapping) and not e.get("archivedDate")]
    counts = {name: _count(rep.get(name)) for name in ("experimentCount", "activeExperimentCount",
                                                       "activeGuardedRolloutCount")}
    used = max(counts["experimentCount"] or 0, counts["activeExperimentCount"] or 0, len(experiments))
    rollouts = counts["activeGuardedRolloutCount"] or 0
    if used or rollouts:
        parts = [f"{used} experiment{'s' if used != 1 else ''}"] if used else []
        parts += [f"{rollouts} guarded rollout{'s' if rollouts != 1 else ''}"] if rollouts else []
        return "used by " + " and ".join(parts)
    if counts["experimentCount"] is None and "experiments" not in rep:
        return "LaunchDarkly did not say whether experiments use it"
    return ""


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _version(rep: Mapping[str, Any]) -> int | None:
    version = rep.get("_version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None
