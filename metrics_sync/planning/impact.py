"""Plans that know what a change touches: the experiments, guarded rollouts, holdouts and release policies that
use each metric or metric group a plan would update, archive or delete (or cannot retire: blocked), and whether
they are running (in force); and the running ones that use a metric whose event no code sends. Pure: state.py
reads (`read_uses`), usage.py says what a read means, this module puts it on the plan.

Only the changed items are read, so a plan with nothing to change still makes list calls only. An experiment
that uses a group uses the group's metrics: a metric's users include its groups' users.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from metrics_sync.coderefs.report import SEND_HINT
from metrics_sync.core.findings import Finding, code
from metrics_sync.core.model import Change, FieldChange, Plan, ProjectPlan, UnsentEvent, Use
from metrics_sync.core.resources import RESOURCES
from metrics_sync.planning.state import ItemId, Reads
from metrics_sync.planning.usage import groups_of, uses_of

NOT_COMPARABLE = "results before and after the change will not be comparable"


def touched(plan: Plan, *, updates: bool = True) -> list[ItemId]:
    """The items whose users a plan names: every update (unless `updates` is False), archive and delete, and every
    item blocked from being archived or deleted (read already, with the project: naming its users costs no request
    of its own)."""
    actions = ("update", "archive", "delete") if updates else ("archive", "delete")
    changed: list[ItemId] = [(p.project, c.resource, c.key) for p in plan.projects for c in p.changes
                             if c.action in actions]
    return changed + [(p.project, b.resource, b.key) for p in plan.projects for b in p.blocked]


def annotate(plan: Plan, reads: Reads, *, protect: bool, update_uses: bool = True) -> Plan:
    """The plan with every update, archive and delete naming what uses it, an alert for each change of a field
    that changes results (fields.py `changes_results`) of something a running experiment or guarded rollout
    uses, and, with `protect`, such changes refused. `update_uses` False: the updates' users were not read
    (make.py `uses_needed`); a note says so where an update changes results."""
    projects = [_annotate_project(p, reads, protect) for p in plan.projects]
    return replace(plan, projects=projects if update_uses else [_unread_note(p) for p in projects])


def _unread_note(p: ProjectPlan) -> ProjectPlan:
    """One note per project for the updates that change results, whose users apply did not read."""
    keys = [c.key for c in p.changes if c.action == "update" and results_fields(c)]
    if not keys:
        return p
    shown = ", ".join(f"`{k}`" for k in keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    note = Finding("uses-not-read", "note", f"what uses {shown} (changes that alter results) was not read one by one, "
                   "so running experiments are not named here", hint="plan names them; apply reads them when it asks "
                   "for confirmation or with --protect-running", subject=f"project `{p.project}`")
    return replace(p, findings=[*p.findings, note])


def _annotate_project(p: ProjectPlan, reads: Reads, protect: bool) -> ProjectPlan:
    changes = []
    refused: list[Finding] = []
    for change in p.changes:
        item = (p.project, change.resource, change.key)
        if change.action not in ("update", "archive", "delete"):
            changes.append(change)
            continue
        uses = tuple(uses_in(item, reads))
        results = results_fields(change)
        alerts = _alerts(change, results, uses, reads.unread.get(item)) if results and change.action == "update" \
            else []
        alerts += _units_removed(change, uses)
        findings = change.findings
        holders = reads.holders.get(p.project)
        if results and change.action == "update" and holders is not None and holders.unread is not None:
            findings = (*findings, Finding("holders-unread", "warning", f"whether holdouts or release policies use "
                                           f"{change.noun} `{change.key}` could not be read ({holders.unread})"))
        if alerts:  # the alert says it more precisely than the count-based warning
            findings = tuple(f for f in findings if f.kind != "changes-results")
        if alerts and protect:
            refused.extend(Finding("protected-running", "refusal", f"{alert.message}; refused because "
                                   "protectRunningExperiments is on (stop the experiment first, or give the changed "
                                   "definition a new key)", source=change.source or p.project) for alert in alerts)
        changes.append(replace(change, used_by=uses, findings=(*alerts, *findings)))
    refusals = [f for f in p.findings if f.severity == "refusal"]
    others = [f for f in p.findings if f.severity != "refusal"]
    blocked = [replace(b, used_by=tuple(uses_in((p.project, b.resource, b.key), reads))) for b in p.blocked]
    return replace(p, changes=changes, blocked=blocked, findings=refusals + refused + others)


def with_unsent(plan: Plan, unsent: Mapping[str, Sequence[UnsentEvent]], reads: Reads) -> Plan:
    """The plan with the metrics whose event no code sends (project -> metrics), each naming the running
    experiments and guarded rollouts that use it, as far as `reads` says (they get no data from now on), and a
    finding of kind `event-not-sent` for each: an alert when something running uses the metric."""
    projects = []
    for p in plan.projects:
        events = [replace(u, used_by=tuple(use for use in uses_in((p.project, "metric", u.key), reads)
                                           if use.running is not False)) for u in unsent.get(p.project, ())]
        projects.append(replace(p, unsent=events, findings=[*p.findings, *(_unsent_finding(p.project, u)
                                                                           for u in events)]))
    return replace(plan, projects=projects)


def _unsent_finding(project: str, unsent: UnsentEvent) -> Finding:
    message = f"no code sends its event {code(unsent.event)}, so it will have no data"
    if unsent.used_by:
        message += f"; it is used by {', '.join(use.describe() for use in unsent.used_by)}"
    return Finding("event-not-sent", "alert" if unsent.used_by else "warning", message,
                   f"metric `{unsent.key}` in project `{project}`", SEND_HINT, unsent.source)


def results_fields(change: Change) -> list[str]:
    """The fields of a change whose new value changes the results of the experiments that use the item."""
    return [f.field for f in change.fields if _changes_results(change.resource, f)]


def _changes_results(resource: str, field: FieldChange) -> bool:
    if field.field not in RESOURCES[resource].results_fields:
        return False
    if resource == "metric-group" and field.field == "metrics":
        # Renaming a funnel step changes labels only; which metrics, in which order, changes results.
        return _keys(field.before) != _keys(field.after)
    return True


def _keys(metrics: Any) -> list[Any]:
    return [m.get("key") for m in metrics or [] if isinstance(m, Mapping)]


def uses_in(item: ItemId, reads: Reads) -> Iterable[Use]:
    """What uses an item, from what was read about it (its own experiments, and its groups'), and the project's
    holdouts and release policies. A holdout is carried by a base experiment of the same key (A41): when the
    experiments expansion lists it too, it is named once, as the holdout."""
    project, resource, key = item
    rep = reads.reps.get(item)
    holders = reads.holders.get(project)
    held = holders.of(resource, key, groups_of(rep) if rep is not None and resource == "metric" else ()) \
        if holders else []
    found = {(u.kind, u.environment, u.key): u for u in held}
    holdouts = {(u.environment, u.key) for u in held if u.kind == "holdout"}
    experiments = uses_of(project, rep, reads.statuses) if rep is not None else []
    if rep is not None and resource == "metric":
        for group in groups_of(rep):
            group_rep = reads.reps.get((project, "metric-group", group))
            experiments += uses_of(project, group_rep, reads.statuses, via=group) if group_rep else []
    for use in experiments:
        if not (use.kind == "experiment" and (use.environment, use.key) in holdouts):
            found.setdefault((use.kind, use.environment, use.key), use)
    return sorted(found.values(), key=lambda u: (u.running is False, u.kind, u.environment, u.key))


def _units_removed(change: Change, uses: tuple[Use, ...]) -> list[Finding]:
    """An update that takes out of a metric's analysis units the one a running holdout analyses it by
    (`analysisUnit`): the holdout's analysis of it can no longer be made as it started."""
    after = (change.after or {}).get("analysisUnits")
    if change.action != "update" or not any(f.field == "analysisUnits" for f in change.fields) or after is None:
        return []
    gone = [u for u in uses if u.analysis_unit and u.analysis_unit not in after and u.running is not False]
    return [Finding("changes-running-results", "alert", f"changing `analysisUnits` of {change.noun} `{change.key}` "
                    f"removes `{u.analysis_unit}`, by which {u.describe()} analyses it; {NOT_COMPARABLE}")
            for u in gone]


def _alerts(change: Change, results: list[str], uses: tuple[Use, ...], unread: str | None) -> list[Finding]:
    names = " and ".join(f"`{f}`" for f in results)
    what = f"{change.noun} `{change.key}`"
    if unread is not None:
        return [Finding("changes-results-unknown", "alert", f"changing {names} of {what} may change the results of "
                        f"running experiments: which experiments use it could not be read ({unread})")]
    running = [u for u in uses if u.running is not False]
    if not running:
        return []
    listed = ", ".join(u.describe() for u in running)
    return [Finding("changes-running-results", "alert",
                    f"changing {names} of {what} changes the results of {listed}{when(change.noun, running)}; "
                    f"{NOT_COMPARABLE}")]


def when(noun: str, running: Sequence[Use]) -> str:
    """When a change reaches what runs now (A47, A48): an update may make a new version of the item while a running
    experiment iteration (or guarded release) keeps measuring the version it started with; no source says which
    holds for experiments, so the alert names both. A release policy runs nothing itself: its next guarded
    releases measure the item as it is then, under every reading."""
    kinds = {u.kind for u in running} - {"release policy"}
    if not kinds:
        return ""
    iterations = bool(kinds & {"experiment", "holdout"})
    releases = "guarded rollout" in kinds
    what = " or ".join(n for n, present in (("iteration", iterations), ("guarded release", releases)) if present)
    return f": at once if LaunchDarkly measures a running {what} with the latest {noun} version, else from the next one"
