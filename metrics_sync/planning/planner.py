"""Desired metrics + LaunchDarkly's metrics -> a Plan. Pure: no I/O, no clock, no printing.

Rules (the README's "How plan decides"):
  * a YAML key missing remotely is created, with the ownership tag;
  * a YAML key present remotely is compared in canonical form (fields.py); differences become an
    update whose JSON Patch first `test`s every changed field against the value seen now, so an edit
    made in the UI before apply makes the update fail instead of being overwritten;
  * a remote metric without the ownership tag that the YAML defines is adopted (update + tag);
  * a remote metric with the ownership tag that left the YAML is listed as "would archive", and
    archived with prune, unless experiments or guarded rollouts still use it (blocked);
  * remote metrics without the tag and not in the YAML are counted and never touched;
  * a kind change is refused: LaunchDarkly cannot change a metric's kind or key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any

from metrics_sync.core.model import Blocked, Change, DesiredGroup, DesiredMetric, FieldChange, Plan, ProjectPlan
from metrics_sync.core.resources import METRIC, metric_type
from metrics_sync.planning.diffing import diff, differences, guarded_patch, missing_required
from metrics_sync.planning.group_plan import GroupInputs, desired_canonical_group, plan_groups

# Changing these redefines what the metric measures (binary <-> count <-> numeric).
SEMANTIC_FIELDS = METRIC.semantic_fields


@dataclass(frozen=True)
class PlanOptions:
    ownership_tag: str
    prune: bool = False
    base_url_host: str = ""
    tool_version: str = ""
    targets: tuple[str, ...] = ()  # --target: glob patterns of `key` or `project/key`; empty: every metric


UNMANAGED_SHOWN = 5  # unmanaged metrics named in a plan; the rest are counted


def selected(targets: Sequence[str], project: str, key: str) -> bool:
    """Whether `--target` patterns (globs of `key` or `project/key`) select a metric; no patterns select all."""
    return not targets or any(fnmatchcase(key, t) or fnmatchcase(f"{project}/{key}", t) for t in targets)


def plan(desired: Mapping[str, Sequence[DesiredMetric]], remote: Mapping[str, Sequence[Mapping[str, Any]]],
         options: PlanOptions, *, details: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
         experiment_units: Mapping[str, Collection[str] | None] | None = None,
         notes: Mapping[str, Sequence[str]] | None = None, groups: Mapping[str, GroupInputs] | None = None,
         canonical: Mapping[str, Mapping[str, dict[str, Any]]] | None = None) -> Plan:
    """Plan every project the definitions name. `remote` maps project -> API list representations;
    `details` project -> key -> single reads with expansions of the metrics that may be archived
    (`prune_candidates`); `experiment_units` project -> the context kinds available for experiments (None:
    not read); `notes` project -> warnings from reading LaunchDarkly; `groups` project -> the metric groups
    of the definitions and of LaunchDarkly; `canonical` project -> key -> the desired canonical forms, when
    the caller computed them already (`wanted`). A remote item marked IN_SYNC was found equal while listed."""
    targets = options.targets
    projects = []
    for p in sorted(desired):
        group_inputs = (groups or {}).get(p, GroupInputs())
        chosen = None if not targets else {
            key for key in [*(g.key for g in group_inputs.desired), *(str(r["key"]) for r in group_inputs.remote or [])]
            if selected(targets, p, key)}
        projects.append(plan_project(
            p, [m for m in desired[p] if selected(targets, p, m.key)],
            [r for r in remote.get(p, []) if selected(targets, p, str(r["key"]))], options,
            details=(details or {}).get(p), experiment_units=(experiment_units or {}).get(p),
            notes=(notes or {}).get(p, ()), groups=group_inputs, selected_groups=chosen,
            all_desired=desired[p], all_remote=remote.get(p, []), canonical=(canonical or {}).get(p)))
    return Plan(projects=projects, prune=options.prune, ownership_tag=options.ownership_tag,
                base_url_host=options.base_url_host, tool_version=options.tool_version, targets=targets)


def prune_candidates(desired: Sequence[DesiredMetric], remote: Sequence[Mapping[str, Any]],
                     ownership_tag: str) -> list[str]:
    """Managed, unarchived metrics that left the definitions: the only ones plan reads one by one, to know
    for certain whether running experiments or guarded rollouts use them."""
    defined = {m.key for m in desired}
    return sorted(str(r["key"]) for r in remote if str(r["key"]) not in defined
                  and ownership_tag in (r.get("tags") or []) and not r.get("archived"))


def plan_project(project: str, desired: Sequence[DesiredMetric], remote: Sequence[Mapping[str, Any]],
                 options: PlanOptions, *, details: Mapping[str, Mapping[str, Any]] | None = None,
                 experiment_units: Collection[str] | None = None, notes: Sequence[str] = (),
                 groups: GroupInputs | None = None, selected_groups: Collection[str] | None = None,
                 all_desired: Sequence[DesiredMetric] | None = None,
                 all_remote: Sequence[Mapping[str, Any]] | None = None,
                 canonical: Mapping[str, dict[str, Any]] | None = None) -> ProjectPlan:
    """One project's plan. `all_desired`/`all_remote`: every metric (when --target limits `desired` and
    `remote`), for checking the metrics that groups name; `canonical`: the desired canonical forms."""
    tag = options.ownership_tag
    remote_by_key = {str(r["key"]): r for r in remote}
    wanted = {m.key: canonical[m.key] for m in desired} if canonical is not None else _wanted(desired, tag)
    metrics = {m.key: m for m in desired}
    changes: list[Change] = []
    refused: list[str] = []
    unchanged = 0

    if experiment_units is not None:
        refused.extend(_unavailable_units(project, desired, wanted, experiment_units))
    for key in sorted(wanted):
        after = wanted[key]
        rep = remote_by_key.get(key)
        if rep is None:
            if after["archived"]:
                unchanged += 1  # declared archived and absent: there is nothing to keep archived
                continue
            shown = [FieldChange(f, None, v) for f, v in after.items() if f != "archived" and v != ""]
            changes.append(Change("create", key, metric_type(after), None, after, shown, [],
                                  body=METRIC.post_body(key, after), warnings=_create_warnings(metrics[key]),
                                  source=str(metrics[key].source)))
            continue
        if rep.get(IN_SYNC):
            unchanged += 1  # compared while it was listed (in_sync): equal
            continue
        before = METRIC.canonical(rep)
        after = _owned(after, before, metrics[key].adopt, tag)
        if before["kind"] != after["kind"]:
            refused.append(f"{metrics[key].source}: metric `{key}` in project `{project}`: kind cannot change from "
                           f"{before['kind']} to {after['kind']} (LaunchDarkly cannot change a metric's kind or "
                           f"key); give the new definition a new key, and archive the old metric with --prune")
            continue
        fields, patch = diff(after, rep)
        if not fields:
            unchanged += 1
            continue
        changes.append(Change(
            "update", key, metric_type(after), before, after, fields, patch,
            remote_version=_version(rep), adopt=tag in after["tags"] and tag not in before["tags"],
            restore=bool(before["archived"]) and not after["archived"], warnings=_warnings(key, fields, rep),
            source=str(metrics[key].source), type_before=_type_change(before, after),
        ))

    would_archive: list[str] = []
    blocked: list[Blocked] = []
    unmanaged: list[str] = []
    for key in sorted(set(remote_by_key) - set(wanted)):
        rep = remote_by_key[key]
        before = METRIC.canonical(rep)
        if tag not in before["tags"]:
            unmanaged.append(key)
            continue
        if before["archived"]:
            continue  # left the YAML and already archived: nothing to do
        usage = usage_of((details or {}).get(key) or rep)
        if usage.blocks:
            blocked.append(Blocked(key, usage.reason))
            continue
        if not options.prune:
            would_archive.append(key)
            continue
        after = {**before, "archived": True}
        fields = [FieldChange("archived", False, True)]
        changes.append(Change("archive", key, metric_type(before), before, after, fields,
                              guarded_patch(rep, fields), remote_version=_version(rep),
                              warnings=(usage.note,) if usage.note else ()))

    left = [k for k in sorted(set(remote_by_key) - set(wanted)) if k not in unmanaged]
    changes = _note_renames(changes, left, remote_by_key)
    groups = groups or GroupInputs()
    every_desired = all_desired if all_desired is not None else desired
    # Canonical forms are the costly part of planning: computed once per metric (again only for the metrics
    # --target leaves out).
    wanted_all = wanted if len(every_desired) == len(desired) else {**_wanted(
        [m for m in every_desired if m.key not in wanted], tag), **wanted}
    grouped = plan_groups(
        project, groups, ownership_tag=tag, prune=options.prune,
        defined_metrics=wanted_all,
        remote_metrics={str(r["key"]): r for r in (all_remote if all_remote is not None else remote)},
        archiving={c.key for c in changes if c.action == "archive"},
        creating={c.key for c in changes if c.action == "create"}, selected=selected_groups)
    return ProjectPlan(
        project=project,
        # Of all the definitions (not only what --target selects): apply --plan checks them all.
        definitions_hash=_hash(every_desired, wanted_all, groups.desired, tag),
        changes=changes + grouped.changes,
        unchanged=unchanged,
        unmanaged=len(unmanaged),
        would_archive=would_archive,
        blocked=blocked + grouped.blocked,
        refused=refused + grouped.refused,
        warnings=list(notes),
        unmanaged_sample=unmanaged[:UNMANAGED_SHOWN],
        unchanged_groups=grouped.unchanged,
        unmanaged_groups=grouped.unmanaged,
        would_delete=grouped.would_delete,
    )


# Marks a listed metric found equal to its definition while it was read (in_sync): all plan keeps of it.
IN_SYNC = "_inSync"


def _owned(after: dict[str, Any], before: Mapping[str, Any], adopt: bool, tag: str) -> dict[str, Any]:
    """`adopt: false`: compare and update the metric, but leave it without the ownership tag."""
    if tag not in before["tags"] and not adopt:
        return {**after, "tags": [t for t in after["tags"] if t != tag]}
    return after


def in_sync(after: dict[str, Any], adopt: bool, rep: Mapping[str, Any], tag: str) -> bool:
    """Whether the representation `rep` already is the desired canonical form `after` (the planner's own rules:
    plan_project makes no change for it). Plan asks this of each metric as it is listed, and keeps only a
    marker for the equal ones."""
    before = METRIC.canonical(rep)
    after = _owned(after, before, adopt, tag)
    return before["kind"] == after["kind"] and not differences(after, before) and \
        not missing_required(after, rep, before)


def _type_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """The type the metric had, when the update changes it (e.g. binary → count)."""
    old = metric_type(before)
    return old if old != metric_type(after) else None


def _note_renames(changes: list[Change], left: Sequence[str], remote: Mapping[str, Mapping[str, Any]]) -> list[Change]:
    """A new key beside a managed key that left the definitions, with the same kind and event (or name), looks
    like a rename: say that LaunchDarkly cannot rename a metric's key, and what the plan does instead."""
    if not left:
        return changes
    out = []
    for change in changes:
        if change.action == "create" and change.after is not None:
            for old_key in left:
                old = METRIC.canonical(remote[old_key])
                same_kind = old.get("kind") == change.after.get("kind")
                same_what = (old.get("eventKey") and old.get("eventKey") == change.after.get("eventKey")) or \
                    old.get("name") == change.after.get("name")
                if same_kind and same_what:
                    note = (f"`{change.key}` looks like a new name for `{old_key}`: LaunchDarkly cannot rename a "
                            f"metric's key, so this plan creates `{change.key}` and leaves `{old_key}` as it is "
                            f"(archived only with --prune); experiments that use `{old_key}` keep using it")
                    change = replace(change, warnings=(*change.warnings, note))
                    break
        out.append(change)
    return out


def _unavailable_units(project: str, desired: Sequence[DesiredMetric], wanted: Mapping[str, Mapping[str, Any]],
                       available: Collection[str]) -> list[str]:
    """Analysis units must be context kinds available for experiments in the project (LaunchDarkly answers
    400 otherwise): refused here, with the place in the YAML, before anything is written."""
    refused = []
    shown = ", ".join(sorted(available)) or "none"
    for metric in desired:
        missing = [u for u in wanted[metric.key].get("analysisUnits", []) if u not in available]
        if missing:
            where = metric.field_sources.get("analysisUnits", metric.source)
            names = ", ".join(f"`{u}`" for u in missing)
            refused.append(f"{where}: metric `{metric.key}`: analysis unit {names} is not a context kind available "
                           f"for experiments in project `{project}` (available: {shown}); make it available in "
                           f"the project's experimentation settings, or use one of those")
    return refused


def desired_canonical(metric: DesiredMetric, ownership_tag: str) -> dict[str, Any]:
    """The YAML metric in canonical form, carrying the ownership tag."""
    fields = dict(metric.fields)
    fields["tags"] = [*(fields.get("tags") or []), ownership_tag]
    return METRIC.canonical(fields)


def _wanted(desired: Sequence[DesiredMetric], ownership_tag: str) -> dict[str, dict[str, Any]]:
    return {m.key: desired_canonical(m, ownership_tag) for m in desired}


def _definitions_hash(desired: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """A stable hash of a project's desired metrics (canonical, so formatting changes do not matter): the
    SHA-256 of the JSON list of (key, item) sorted by key, fed to the hash item by item (the whole text of
    100,000 metrics would be tens of MB at once)."""
    items = sorted(desired, key=lambda item: item[0])
    digest = hashlib.sha256(b"[")
    for start in range(0, len(items), HASH_CHUNK):  # `[a,b]` is `[` + `a` + `,` + `b` + `]`: same bytes
        if start:
            digest.update(b",")
        chunk = json.dumps(items[start:start + HASH_CHUNK], sort_keys=True, separators=(",", ":"))
        digest.update(chunk[1:-1].encode())
    digest.update(b"]")
    return "sha256:" + digest.hexdigest()


HASH_CHUNK = 1000  # items per call of the JSON encoder: its C loop, without a whole project's text at once


def _hash(desired: Sequence[DesiredMetric], wanted: Mapping[str, Mapping[str, Any]],
          groups: Sequence[DesiredGroup] = (), ownership_tag: str = "") -> str:
    items = [(m.key, {"metric": wanted[m.key], "adopt": m.adopt}) for m in desired]
    # Groups have their own key space: "group:" keeps a group and a metric of the same key apart.
    items += [(f"group:{g.key}", {"group": desired_canonical_group(g, ownership_tag), "adopt": g.adopt})
              for g in groups]
    return _definitions_hash(items)


def definitions_hashes(desired: Mapping[str, Sequence[DesiredMetric]], ownership_tag: str,
                       groups: Mapping[str, Sequence[DesiredGroup]] | None = None) -> dict[str, str]:
    """Per project, the hash a plan records for its definitions (to refuse a plan the YAML moved away from)."""
    return {p: _hash(metrics, _wanted(metrics, ownership_tag), (groups or {}).get(p, ()), ownership_tag)
            for p, metrics in desired.items()}


def _create_warnings(metric: DesiredMetric) -> tuple[str, ...]:
    unmanaged = metric.fields.get("unmanagedFields")
    if not unmanaged:
        return ()
    names = ", ".join(f"`{name}`" for name in sorted(unmanaged))
    return (f"`{metric.key}` lists unmanagedFields ({names}); they are not sent, so the new metric will not "
            f"have them",)


@dataclass(frozen=True)
class Usage:
    """What uses a metric, as far as LaunchDarkly said (`reason` when that blocks archiving it)."""

    blocks: bool
    reason: str = ""
    note: str = ""  # for a metric that may be archived but has history worth mentioning


def usage_of(rep: Mapping[str, Any]) -> Usage:
    """Whether running experiments or guarded rollouts use a metric, from a single read with expansions
    (`experiments`, `guardedRollouts` and the active counters; the list documents only `experimentCount`).
    When LaunchDarkly does not say whether they run, the metric is treated as in use."""
    running = _count(rep.get("activeExperimentCount"))
    rollouts = _count(rep.get("activeGuardedRolloutCount"))
    experiments = [e for e in rep.get("experiments") or [] if isinstance(e, Mapping) and not e.get("archivedDate")]
    total = max(_count(rep.get("experimentCount")) or 0, len(experiments))
    guarded = [g for g in rep.get("guardedRollouts") or [] if isinstance(g, Mapping)]
    if running or rollouts:
        return Usage(True, _usage(running or 0, rollouts or 0, "running "))
    unknown_experiments = running is None and total > 0
    unknown_rollouts = rollouts is None and bool(guarded)
    if unknown_experiments or unknown_rollouts:
        return Usage(True, _usage(total if unknown_experiments else 0, len(guarded) if unknown_rollouts else 0)
                     + " (LaunchDarkly did not say whether they are running)")
    if total:
        return Usage(False, note=f"{_usage(total, 0)}, none of them running; their results stay in LaunchDarkly")
    return Usage(False)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _version(rep: Mapping[str, Any]) -> int | None:
    version = rep.get("_version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def _usage(experiments: int, rollouts: int, adjective: str = "") -> str:
    parts = []
    if experiments:
        parts.append(f"{experiments} {adjective}experiment{'s' if experiments != 1 else ''}")
    if rollouts:
        parts.append(f"{rollouts} {adjective}guarded rollout{'s' if rollouts != 1 else ''}")
    return "used by " + " and ".join(parts)


def _warnings(key: str, fields: Sequence[FieldChange], rep: Mapping[str, Any]) -> tuple[str, ...]:
    experiments = max(_count(rep.get("experimentCount")) or 0, _count(rep.get("activeExperimentCount")) or 0)
    rollouts = _count(rep.get("activeGuardedRolloutCount")) or 0
    semantic = [f.field for f in fields if f.field in SEMANTIC_FIELDS]
    if not semantic or not (experiments or rollouts):
        return ()
    changed = " and ".join(f"`{f}`" for f in semantic)
    return (f"changing {changed} of `{key}` changes what it measures while it is {_usage(experiments, rollouts)}; "
            f"results before and after the change will not be comparable",)
