"""Plans that know what a change touches: the experiments and guarded rollouts that use each metric or metric
group a plan would update, archive or delete, and whether they are running. Pure: the plan command reads,
this module decides.

What LaunchDarkly says, and how it is read (docs/launchdarkly-contract.md, A25-A27):
  * a single metric read with `expand=experiments,metricGroups,guardedRollouts` (a group read with
    `expand=experiments`) lists the experiments that use it (`DependentExperimentRep`: key, name, environment,
    `archivedDate`), the groups it is in, and its guarded rollouts (no declared shape);
  * `activeExperimentCount` / `activeGuardedRolloutCount` say how many are active. When that count is 0 none
    runs, when it equals the listed ones all do; otherwise each experiment's current iteration is read
    (`status`: not_started, running, stopped), at most MAX_EXPERIMENT_READS per plan;
  * an experiment that uses a group uses the group's metrics: a metric's users include its groups' users.
Only the changed items are read, so a plan with nothing to change still makes list calls only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from metrics_sync.core.model import Change, FieldChange, Plan, ProjectPlan, Use
from metrics_sync.core.resources import RESOURCES

METRIC_EXPANSIONS = ("experiments", "experimentCount", "guardedRollouts", "guardedRolloutCount", "metricGroups")
GROUP_EXPANSIONS = ("experiments", "experimentCount")
MAX_EXPERIMENT_READS = 50  # experiment status reads per plan; beyond, "running or not: unknown"
MAX_GROUP_READS = 50  # groups read because a changed metric is in them
SEMANTIC_NOTE = "results before and after the change will not be comparable"

ItemId = tuple[str, str, str]  # (project, "metric" | "metric-group", key)


@dataclass
class Reads:
    """What plan read about the changed items (filled by the plan command)."""

    reps: dict[ItemId, Mapping[str, Any]] = field(default_factory=dict)  # single reads with expansions
    unread: dict[ItemId, str] = field(default_factory=dict)  # why an item's users could not be read
    statuses: dict[tuple[str, str, str], str | None] = field(default_factory=dict)  # (project, env, key) -> status


def touched(plan: Plan) -> list[ItemId]:
    """The items whose users a plan names: every update, archive and delete."""
    return [(p.project, c.resource, c.key) for p in plan.projects for c in p.changes
            if c.action in ("update", "archive", "delete")]


def groups_of(rep: Mapping[str, Any]) -> list[str]:
    """The metric groups a metric read with `expand=metricGroups` is in."""
    return [str(g["key"]) for g in rep.get("metricGroups") or [] if isinstance(g, Mapping)
            and isinstance(g.get("key"), str)]


def live_experiments(rep: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in rep.get("experiments") or [] if isinstance(e, Mapping) and isinstance(e.get("key"), str)
            and not e.get("archivedDate")]


def statuses_needed(rep: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (environment, experiment) pairs whose status must be read: only when the active count does not
    already say which experiments run."""
    experiments = live_experiments(rep)
    active = _count(rep.get("activeExperimentCount"))
    if not experiments or active == 0 or active == len(experiments):
        return []
    return [(str(e.get("environmentKey") or ""), str(e["key"])) for e in experiments if e.get("environmentKey")]


def running_status(experiment: Mapping[str, Any]) -> str | None:
    """An experiment's current iteration status, from LaunchDarkly's `Experiment` representation."""
    if experiment.get("archivedDate"):
        return "archived"
    iteration = experiment.get("currentIteration")
    status = iteration.get("status") if isinstance(iteration, Mapping) else None
    return status if isinstance(status, str) else None


def uses_of(project: str, rep: Mapping[str, Any], statuses: Mapping[tuple[str, str, str], str | None],
            via: str | None = None) -> list[Use]:
    """The experiments and guarded rollouts a single read with expansions names."""
    experiments = live_experiments(rep)
    active = _count(rep.get("activeExperimentCount"))
    uses = []
    for e in experiments:
        env = str(e.get("environmentKey") or "")
        if active == 0:
            running: bool | None = False
        elif active is not None and active == len(experiments):
            running = True
        else:
            status = statuses.get((project, env, str(e["key"])))
            running = None if status is None else status == "running"
        uses.append(Use("experiment", str(e["key"]), str(e.get("name") or ""), env, running, via))
    rollouts = [g for g in rep.get("guardedRollouts") or [] if isinstance(g, Mapping)]
    active_rollouts = _count(rep.get("activeGuardedRolloutCount"))
    for g in rollouts:
        rollout_running = (False if active_rollouts == 0 else True if active_rollouts == len(rollouts) else None)
        name = g.get("flagKey") or g.get("key") or g.get("_id") or "(unnamed)"
        uses.append(Use("guarded rollout", str(name), str(g.get("flagName") or g.get("name") or ""),
                        str(g.get("environmentKey") or ""), rollout_running, via))
    if not rollouts and active_rollouts:
        uses.append(Use("guarded rollout", f"{active_rollouts} active (LaunchDarkly did not name them)", "", "",
                        True, via))
    return uses


def annotate(plan: Plan, reads: Reads, *, protect: bool) -> Plan:
    """The plan with every update, archive and delete naming what uses it, an alert for each change of a field
    that changes results (fields.py `changes_results`) of something a running experiment or guarded rollout
    uses, and, with `protect`, such changes refused."""
    return replace(plan, projects=[_annotate_project(p, reads, protect) for p in plan.projects])


def _annotate_project(p: ProjectPlan, reads: Reads, protect: bool) -> ProjectPlan:
    changes = []
    refused = list(p.refused)
    for change in p.changes:
        item = (p.project, change.resource, change.key)
        if change.action not in ("update", "archive", "delete"):
            changes.append(change)
            continue
        uses = tuple(uses_in(item, reads))
        results = [f.field for f in change.fields if _changes_results(change.resource, f)]
        alerts: list[str] = []
        if results and change.action == "update":
            alerts = _alerts(change, results, uses, reads.unread.get(item))
        warnings = change.warnings
        if alerts:  # the alert says it more precisely than the count-based note
            warnings = tuple(w for w in warnings if SEMANTIC_NOTE not in w)
        if alerts and protect:
            refused.extend(f"{change.source or p.project}: {alert}; refused because protectRunningExperiments is on "
                           f"(stop the experiment first, or give the changed definition a new key)" for alert in alerts)
        changes.append(replace(change, used_by=uses, alerts=tuple(alerts), warnings=warnings))
    return replace(p, changes=changes, refused=refused)


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
    """What uses an item, from what was read about it (its own experiments, and its groups')."""
    project, resource, _ = item
    rep = reads.reps.get(item)
    if rep is None:
        return []
    found = {(u.kind, u.environment, u.key): u for u in uses_of(project, rep, reads.statuses)}
    if resource == "metric":
        for group in groups_of(rep):
            group_rep = reads.reps.get((project, "metric-group", group))
            for use in uses_of(project, group_rep, reads.statuses, via=group) if group_rep else []:
                found.setdefault((use.kind, use.environment, use.key), use)
    return sorted(found.values(), key=lambda u: (u.running is False, u.kind, u.environment, u.key))


def _alerts(change: Change, results: list[str], uses: tuple[Use, ...], unread: str | None) -> list[str]:
    names = " and ".join(f"`{f}`" for f in results)
    what = f"{change.noun} `{change.key}`"
    if unread is not None:
        return [f"changing {names} of {what} may change the results of running experiments: which experiments use "
                f"it could not be read ({unread})"]
    running = [u for u in uses if u.running is not False]
    if not running:
        return []
    listed = ", ".join(u.describe() for u in running)
    return [f"changing {names} of {what} changes the results of {listed}; {SEMANTIC_NOTE}"]


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
