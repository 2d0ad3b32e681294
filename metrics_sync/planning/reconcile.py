"""The definitions + what plan read of LaunchDarkly -> a Plan: one loop for every resource. Pure: no I/O, no clock.

Rules (the README's "How plan decides"), the same for every resource (core/resources.py):
  * a key missing remotely is created, with the ownership tag;
  * a key present remotely is compared in canonical form (`diffing.compare`, the decision the listing's in-sync
    fast path takes too); differences become an update whose JSON Patch first `test`s every changed field
    against the value seen now, so an edit made in the UI before apply makes the update fail instead of being
    overwritten; an item without the ownership tag is adopted (update + tag) unless the file says `adopt: false`;
    an archived one is restored;
  * a kind change is refused: LaunchDarkly cannot change a resource's kind or key;
  * a managed item that left the definitions is retired with --prune (`Resource.retire`: metrics archived,
    groups deleted), unless what uses it (its experiments and guarded rollouts, the project's holdouts and
    release policies) blocks that (usage.py), and listed without --prune;
  * items without the tag and not in the definitions are counted and never touched.
Hooks, where LaunchDarkly differs: a metric's analysis units must be available in the project and a new key
beside one that left looks like a rename; a group needs a maintainer on create, and the metrics it names must
exist. Apply creates metrics before the groups that use them and deletes groups before archiving metrics.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from metrics_sync.core.confusables import CHECKED_FIELDS, lookalike
from metrics_sync.core.confusables import message as confusable_message
from metrics_sync.core.fields import Resource
from metrics_sync.core.findings import Finding
from metrics_sync.core.model import Blocked, Change, Definitions, DesiredGroup, FieldChange, Plan, ProjectPlan
from metrics_sync.core.resources import METRIC
from metrics_sync.planning.desired import HASH_LABELS, ORDER, Desired, Forms, Item, hash_entry
from metrics_sync.planning.diffing import Comparison, compare, guarded_patch
from metrics_sync.planning.state import IN_SYNC, ProjectState, selected
from metrics_sync.planning.usage import Usage, groups_of, usage_of

UNMANAGED_SHOWN = 5  # unmanaged metrics named in a plan; the rest are counted


@dataclass(frozen=True)
class Options:
    ownership_tag: str
    prune: bool = False
    targets: tuple[str, ...] = ()  # --target: glob patterns of `key` or `project/key`; empty: everything
    base_url_host: str = ""
    tool_version: str = ""


@dataclass
class Outcome:
    """One resource's part of a project's plan."""

    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    unmanaged: list[str] = field(default_factory=list)
    would_retire: list[str] = field(default_factory=list)  # retired only with --prune
    blocked: list[Blocked] = field(default_factory=list)
    refused: list[Finding] = field(default_factory=list)

    def keys(self, action: str) -> set[str]:
        return {c.key for c in self.changes if c.action == action}


@dataclass
class Context:
    """What a hook may read: the project's definitions and state, and the plan of the resources before."""

    project: str
    desired: Desired
    state: ProjectState
    done: dict[str, Outcome] = field(default_factory=dict)
    _remote: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)

    def remote(self, kind: str) -> dict[str, Mapping[str, Any]]:
        """Every listed item of a resource (whatever --target selects), by key."""
        if kind not in self._remote:
            self._remote[kind] = {str(r["key"]): r for r in self.state.items(kind)}
        return self._remote[kind]


class Hooks:
    """Where a resource differs from the generic loop; these defaults do nothing."""

    def refusals(self, ctx: Context, item: Item, after: Mapping[str, Any]) -> list[Finding]:
        """Why the definition cannot be planned at all (the item is then left out of the plan)."""
        return []

    def creating(self, ctx: Context, item: Item, after: dict[str, Any]) -> dict[str, Any] | Finding:
        """The form to create (or why it cannot be created)."""
        return after

    def finish(self, ctx: Context, forms: Forms, out: Outcome, remote: Mapping[str, Mapping[str, Any]]) -> None:
        """A last look at the resource's plan (e.g. to note renames)."""


def reconcile(ctx: Context, forms: Forms, hooks: Hooks, options: Options) -> Outcome:
    """One resource of one project: desired items against remote items, by key."""
    resource, project, tag = forms.resource, ctx.project, options.ownership_tag
    out = Outcome()
    listed = ctx.remote(resource.kind)  # (no copy without --target: 100,000 items in a big project)
    remote = {key: r for key, r in listed.items() if selected(options.targets, project, key)} \
        if options.targets else listed
    unread: dict[str, list[str]] = {}  # write-only field -> existing items whose definitions set it
    for key in sorted(k for k in forms.items if selected(options.targets, project, k)):
        rep = remote.get(key)
        # Of an item found in sync while listed, reconcile reads only part of the form (desired.IN_SYNC_READS).
        item = forms.items[key]
        after: Mapping[str, Any] = forms.in_sync_reads(key) if rep and rep.get(IN_SYNC) else forms[key]
        refusals = hooks.refusals(ctx, item, after)
        if refusals:
            out.refused.extend(refusals)
        elif rep is None:
            _create(ctx, hooks, resource, item, forms[key], out)
        elif rep.get(IN_SYNC):
            out.unchanged += 1  # compared while it was listed (state.keeper): equal
        else:
            _compared(project, resource, item, rep, compare(resource, after, rep, adopt=item.adopt, tag=tag), out)
        if rep is not None:
            for name in resource.write_only:
                if after.get(name) is not None:
                    unread.setdefault(name, []).append(key)
    out.refused.extend(_unread(resource, unread))
    details = ctx.state.details(resource.kind)
    for key in _not_defined(remote, forms):
        rep = remote[key]
        before = resource.canonical(rep)
        if tag not in before["tags"]:
            out.unmanaged.append(key)
        elif before.get("archived"):
            continue  # left the definitions and already archived: nothing to do
        elif reason := _blocks(ctx, resource, key, usage := usage_of(details.get(key) or rep), details.get(key)):
            out.blocked.append(Blocked(key, reason, resource.kind))
        elif not options.prune:
            out.would_retire.append(key)
        else:
            out.changes.append(_retire(resource, key, before, rep, usage))
    hooks.finish(ctx, forms, out, remote)
    return out


def _not_defined(remote: Mapping[str, Mapping[str, Any]], forms: Forms) -> list[str]:
    """The listed keys the definitions do not have, sorted (no set of every key of a big project)."""
    return sorted(key for key in remote if key not in forms.items)


def _blocks(ctx: Context, resource: Resource, key: str, usage: Usage, detail: Mapping[str, Any] | None) -> str:
    """Why an item cannot be retired: what its own read says uses it, and the project's holdouts and release
    policies (those that name it, or for a metric a group it is in)."""
    holders = ctx.state.holders
    held = holders.blocks(resource.kind, key, resource.retire, groups_of(detail or {})) if holders else ""
    return "; ".join(reason for reason in (usage.blocks(resource), held) if reason)


def _create(ctx: Context, hooks: Hooks, resource: Resource, item: Item, after: dict[str, Any], out: Outcome) -> None:
    if after.get("archived"):
        out.unchanged += 1  # declared archived and absent: there is nothing to keep archived
        return
    prepared = hooks.creating(ctx, item, after)
    if isinstance(prepared, Finding):
        out.refused.append(prepared)
        return
    filled = ("the access token's member",)
    shown = [FieldChange(f, None, v, filled if f == "maintainerId" and not item.fields.get("maintainerId") else ())
             for f, v in prepared.items() if f != "archived" and v != ""]
    out.changes.append(Change("create", item.key, resource.describe(prepared), None, prepared, shown, [],
                              body=resource.post_body(item.key, prepared), source=str(item.source),
                              resource=resource.kind, findings=_not_sent(resource, item) + _lookalikes(item, shown)))


def _compared(project: str, resource: Resource, item: Item, rep: Mapping[str, Any], found: Comparison,
              out: Outcome) -> None:
    before, after, fields = found.before, found.after, found.fields
    if found.kind_changed:
        out.refused.append(Finding(
            "kind-change", "refusal", f"kind cannot change from {before['kind']} to {after['kind']} (LaunchDarkly "
            f"cannot change a {resource.name}'s kind or key)", f"{resource.name} `{item.key}` in project `{project}`",
            f"give the new definition a new key, and {resource.retire} the old {resource.name} with --prune",
            str(item.field_sources.get("kind", item.source))))  # the line that says the kind
        return
    if not fields:
        out.unchanged += 1
        return
    old_type, new_type = resource.describe(before), resource.describe(after)
    out.changes.append(Change(
        "update", item.key, new_type, before, after, fields, guarded_patch(rep, fields, resource),
        remote_version=_version(rep), adopt=found.adopts, restore=bool(before.get("archived")) and not
        after.get("archived"), source=str(item.source), type_before=old_type if old_type != new_type else None,
        resource=resource.kind,
        findings=_semantic(resource, item.key, fields, usage_of(rep)) + _lookalikes(item, fields)))


def _retire(resource: Resource, key: str, before: dict[str, Any], rep: Mapping[str, Any], usage: Usage) -> Change:
    kind = resource.describe(before)
    if resource.retire == "delete":
        return Change("delete", key, kind, before, None, [], [], remote_version=_version(rep), resource=resource.kind)
    fields = [FieldChange("archived", False, True)]
    note = usage.stopped_note()
    return Change("archive", key, kind, before, {**before, "archived": True}, fields,
                  guarded_patch(rep, fields, resource), remote_version=_version(rep), resource=resource.kind,
                  findings=(Finding("archive-keeps-results", "note", note),) if note else ())


def _semantic(resource: Resource, key: str, fields: list[FieldChange], usage: Usage) -> tuple[Finding, ...]:
    """Changing what an item measures while experiments use it: their results before and after differ (impact.py
    replaces this count-based warning with an alert naming the running ones, when it can read them)."""
    semantic = [f.field for f in fields if f.field in resource.semantic_fields]
    users = usage.counted()
    if not semantic or not users:
        return ()
    changed = " and ".join(f"`{f}`" for f in semantic)
    return (Finding("changes-results", "warning", f"changing {changed} of `{key}` changes what it measures while "
                    f"it is {users}; results before and after the change will not be comparable"),)


def _lookalikes(item: Item, fields: list[FieldChange]) -> tuple[Finding, ...]:
    """A key, event key or name this change sets that may read as other text (core/confusables.py): in a plan
    `оrder-placed` with a Cyrillic `о` looks like the `order-placed` the code sends."""
    found: list[Finding] = []
    checked = dict(CHECKED_FIELDS)
    for change in fields:
        value = change.after
        if change.field not in checked or not isinstance(value, str) or value.isascii():
            continue
        suspicious = lookalike(value, identifier=checked[change.field])
        if suspicious is not None:
            found.append(Finding("confusable-key", "warning", confusable_message(change.field, value, suspicious),
                                 hint=suspicious.hint(), source=str(item.field_sources.get(change.field, item.source))))
    return tuple(found)


def _not_sent(resource: Resource, item: Item) -> tuple[Finding, ...]:
    unmanaged = item.fields.get("unmanagedFields")
    if not unmanaged:
        return ()
    names = ", ".join(f"`{name}`" for name in sorted(unmanaged))
    return (Finding("unmanaged-fields-not-sent", "warning", f"`{item.key}` lists unmanagedFields ({names}); they "
                    f"are not sent, so the new {resource.name} will not have them"),)


def _unread(resource: Resource, unread: Mapping[str, list[str]]) -> list[Finding]:
    """Fields LaunchDarkly takes in a create but never returns (`Field.read_back`): plan cannot tell whether an
    existing item has the value the definitions give, so it says so once, instead of showing a change forever."""
    notes = []
    for name, keys in unread.items():
        shown = ", ".join(f"`{k}`" for k in keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        notes.append(Finding(
            "write-only-field", "note", f"`{name}` of {shown} is not compared: LaunchDarkly does not return it, "
            f"so metrics-sync sends it only when a {resource.name} is created",
            hint=f"to change `{name}` of an existing {resource.name}, edit it in LaunchDarkly"))
    return notes


def _version(rep: Mapping[str, Any]) -> int | None:
    version = rep.get("_version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None


# --- the metric's hooks -------------------------------------------------------------------------------------

class MetricHooks(Hooks):
    def refusals(self, ctx: Context, item: Item, after: Mapping[str, Any]) -> list[Finding]:
        """Analysis units must be context kinds available for experiments in the project (LaunchDarkly answers
        400 otherwise): refused here, with the place in the YAML, before anything is written."""
        available = ctx.state.units
        missing = [u for u in after.get("analysisUnits", []) if available is not None and u not in available]
        if not missing:
            return []
        names = ", ".join(f"`{u}`" for u in missing)
        shown = ", ".join(sorted(available or ())) or "none"
        return [Finding("unavailable-unit", "refusal", f"analysis unit {names} is not a context kind available for "
                        f"experiments in project `{ctx.project}` (available: {shown})", f"metric `{item.key}`",
                        "make it available in the project's experimentation settings, or use one of those",
                        str(item.field_sources.get("analysisUnits", item.source)))]

    def finish(self, ctx: Context, forms: Forms, out: Outcome, remote: Mapping[str, Mapping[str, Any]]) -> None:
        """A new key beside a managed key that left the definitions, with the same kind and event (or name), looks
        like a rename: say that LaunchDarkly cannot rename a metric's key, and what the plan does instead."""
        unmanaged = set(out.unmanaged)
        left = [k for k in _not_defined(remote, forms) if k not in unmanaged]
        for index, change in enumerate(out.changes):
            if change.action != "create" or change.after is None or not left:
                continue
            for old_key in left:
                old = METRIC.canonical(remote[old_key])
                same_what = (old.get("eventKey") and old.get("eventKey") == change.after.get("eventKey")) or \
                    old.get("name") == change.after.get("name")
                if old.get("kind") == change.after.get("kind") and same_what:
                    note = Finding("rename", "note", f"`{change.key}` looks like a new name for `{old_key}`: "
                                   f"LaunchDarkly cannot rename a metric's key, so this plan creates `{change.key}` "
                                   f"and leaves `{old_key}` as it is (archived only with --prune); experiments that "
                                   f"use `{old_key}` keep using it")
                    out.changes[index] = replace(change, findings=(*change.findings, note))
                    break


# --- the metric group's hooks -------------------------------------------------------------------------------

class GroupHooks(Hooks):
    def refusals(self, ctx: Context, item: Item, after: Mapping[str, Any]) -> list[Finding]:
        """Every metric the group names must be plannable: located at the metric's line in the group."""
        sources = item.metric_sources if isinstance(item, DesiredGroup) else ()
        problems = []
        for index, entry in enumerate(after.get("metrics") or []):
            found = _metric_problem(ctx, entry["key"], after.get("kind") == "funnel")
            if found is not None:
                kind, message, hint = found
                where = sources[index] if index < len(sources) else item.source
                problems.append(Finding(kind, "refusal", f"metric `{entry['key']}` {message}",
                                        f"metric group `{item.key}`", hint, str(where)))
        return problems

    def creating(self, ctx: Context, item: Item, after: dict[str, Any]) -> dict[str, Any] | Finding:
        """LaunchDarkly requires a maintainer: the definitions' `maintainerId`, else the access token's member (as
        LaunchDarkly's Terraform provider does)."""
        maintainer = after.get("maintainerId") or ctx.state.maintainer
        if maintainer:
            return {**after, "maintainerId": maintainer}
        why = ctx.state.maintainer_problem or "the access token belongs to no member (a service token?)"
        return Finding("maintainer-missing", "refusal", f"LaunchDarkly requires a maintainer, and {why}",
                       f"metric group `{item.key}` in project `{ctx.project}`", "set `maintainerId` to a member's ID",
                       str(item.source))


def _metric_problem(ctx: Context, key: str, funnel: bool) -> tuple[str, str, str] | None:
    """(kind, message, hint) when a metric a group names is neither defined nor in LaunchDarkly, is archived or
    being archived, or, in a funnel, does not average units (LaunchDarkly's docs)."""
    metric, rep, planned = ctx.desired["metric"].get(key), ctx.remote("metric").get(key), ctx.done["metric"]
    if metric is None and rep is None:
        return ("group-metric-missing", f"is neither in the definitions nor in LaunchDarkly project `{ctx.project}`",
                "define it, or correct the key")
    if metric is None and rep is not None and rep.get("archived"):
        return ("group-metric-archived", "is archived in LaunchDarkly",
                "define it to restore it, or remove it from the group")
    if metric is not None and metric.get("archived"):
        return ("group-metric-archived", "is declared `archived: true` in the definitions",
                "remove it from the group")
    if rep is None and key not in planned.keys("create"):
        return ("group-metric-not-created", "is not in LaunchDarkly yet, and this plan does not create it (--target "
                "leaves it out)", "add it to the targets")
    if key in planned.keys("archive"):
        return ("group-metric-archiving", "is archived by this plan (it left the definitions)",
                "keep it defined, or remove it from the group")
    aggregation = (metric or rep or {}).get("unitAggregationType") or "average"
    if metric is None and funnel and aggregation != "average":
        return ("funnel-step-aggregation", f"aggregates units by `{aggregation}` in LaunchDarkly; funnel steps must "
                "use `average` (LaunchDarkly's docs)", "change the metric, or use a standard group")
    return None


HOOKS: dict[str, Hooks] = {"metric": MetricHooks(), "metric-group": GroupHooks()}


# --- projects and plans -------------------------------------------------------------------------------------

def plan_project(desired: Desired, state: ProjectState, options: Options) -> ProjectPlan:
    ctx = Context(desired.project, desired, state)
    for resource in ORDER:  # metrics first: a group's checks read the metrics' plan
        ctx.done[resource.kind] = reconcile(ctx, desired[resource.kind], HOOKS[resource.kind], options)
    metrics, groups = ctx.done["metric"], ctx.done["metric-group"]
    return ProjectPlan(
        project=desired.project,
        # Of all the definitions (not only what --target selects): apply --plan checks them all.
        definitions_hash=definitions_hash(desired),
        changes=metrics.changes + groups.changes,
        unchanged=metrics.unchanged,
        unmanaged=len(metrics.unmanaged),
        would_archive=metrics.would_retire,
        blocked=metrics.blocked + groups.blocked,
        findings=metrics.refused + groups.refused + list(state.notes),
        unmanaged_sample=metrics.unmanaged[:UNMANAGED_SHOWN],
        unchanged_groups=groups.unchanged,
        unmanaged_groups=len(groups.unmanaged),
        would_delete=groups.would_retire,
    )


def plan(definitions: Definitions, states: Mapping[str, ProjectState], options: Options, *,
         desired: Mapping[str, Desired] | None = None) -> Plan:
    """Plan every project the definitions name, from what was read of each (`states`; a project not read has
    nothing in LaunchDarkly). `desired`: the projects' canonical forms, when the caller has them already."""
    projects = [plan_project((desired or {}).get(p) or Desired(definitions, p, options.ownership_tag),
                             states.get(p) or ProjectState(p, {}), options) for p in sorted(definitions.metrics)]
    return Plan(projects=projects, prune=options.prune, ownership_tag=options.ownership_tag,
                base_url_host=options.base_url_host, tool_version=options.tool_version, targets=options.targets,
                files=tuple(definitions.files))  # apply --plan says which files differ


# --- the definitions' hash (saved plans record it: its value must not change for the same definitions) -------

HASH_CHUNK = 1000  # items per update of the whole-text hash
ITEMS_HASH = "sha256-items:"  # the hash plans record: of each item's digest, in key order
TEXT_HASH = "sha256:"  # what plans recorded before: of the whole JSON text (still checked: saved plans carry it)


def definitions_hash(desired: Desired) -> str:
    """A stable hash of a project's definitions (canonical, so formatting changes do not matter): the SHA-256 of
    the SHA-256 digests of each item's JSON (`desired.item_digest`: its key and canonical form), in key order.
    Digests, not the whole text: an item the listing finds in sync gives its digest then, and its form is not
    kept (desired.py); the whole text would need every form to the end."""
    digest = hashlib.sha256()
    for _, kind, key in _entries(desired):
        digest.update(desired[kind].digest(key))
    return ITEMS_HASH + digest.hexdigest()


def text_hash(desired: Desired) -> str:
    """The hash plans recorded before `definitions_hash`: the SHA-256 of the JSON list of (key, item) sorted by
    key, fed a chunk of items at a time (the whole text of 100,000 metrics would be tens of MB at once). Kept so
    that a plan saved then still applies."""
    digest = hashlib.sha256(b"[")
    entries = list(_entries(desired))
    for start in range(0, len(entries), HASH_CHUNK):  # `[a,b]` is `[` + `a` + `,` + `b` + `]`: same bytes
        if start:
            digest.update(b",")
        digest.update(b",".join(hash_entry(kind, desired[kind].items[key], desired[kind].compute(key))
                                for _, kind, key in entries[start:start + HASH_CHUNK]))
    digest.update(b"]")
    return TEXT_HASH + digest.hexdigest()


def _entries(desired: Desired) -> Iterator[tuple[str, str, str]]:
    """(hashed name, kind, key) of every item, in the order of the name (groups have their own key space). Each
    kind's keys are sorted, then merged: no list of 100,000 tuples at the end of a big plan."""
    def named(kind: str) -> Iterator[tuple[str, str, str]]:
        label = HASH_LABELS[kind][0]
        return ((label + key, kind, key) for key in sorted(desired[kind].items))

    return heapq.merge(*(named(resource.kind) for resource in ORDER), key=lambda entry: entry[0])


def definitions_hashes(definitions: Definitions, ownership_tag: str,
                       recorded: Mapping[str, str] | None = None) -> dict[str, str]:
    """Per project, the hash a plan records for its definitions (to refuse a plan the YAML moved away from).
    `recorded`: the hashes a saved plan carries, by project; one made the way plans were hashed before
    (`TEXT_HASH`) is compared with the definitions hashed that way."""
    recorded = recorded or {}
    return {p: (text_hash if recorded.get(p, "").startswith(TEXT_HASH) else definitions_hash)(
        Desired(definitions, p, ownership_tag)) for p in definitions.metrics}
