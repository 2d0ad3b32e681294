"""What uses a metric or metric group, read once: from a single read with `Resource.usage_expansions` (or a list
representation's counters), the experiments and guarded rollouts (`Use` values), their counts, and from them
whether retiring the item is blocked. Pure: plan reads (state.py), this module says what the read means.

What LaunchDarkly says (docs/launchdarkly-contract.md, A25-A27):
  * a single read with expansions lists the experiments that use the item (`DependentExperimentRep`: key, name,
    environment, `archivedDate`), a metric's guarded rollouts (no declared shape) and the groups it is in;
  * `activeExperimentCount` / `activeGuardedRolloutCount` say how many are active. When that count is 0 none
    runs, when it equals the listed ones all do; otherwise each experiment's current iteration says
    (`status`: not_started, running, stopped), read by the caller (`statuses_needed`).
Retiring: a metric's archive is blocked by running users, or users LaunchDarkly does not say are stopped (an
archived metric keeps its results); a group's delete by any user, and by not knowing (a delete cannot be undone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metrics_sync.core.fields import Resource
from metrics_sync.core.model import Use

Statuses = Mapping[tuple[str, str, str], str | None]  # (project, environment, experiment) -> status


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def live_experiments(rep: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in rep.get("experiments") or [] if isinstance(e, Mapping) and isinstance(e.get("key"), str)
            and not e.get("archivedDate")]


def _rollouts(rep: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [g for g in rep.get("guardedRollouts") or [] if isinstance(g, Mapping)]


@dataclass(frozen=True)
class Usage:
    """What uses an item, as far as LaunchDarkly said."""

    experiments: int  # experiments that use it (the largest count LaunchDarkly gave, or the listed ones)
    running_experiments: int | None  # `activeExperimentCount`; None: not said
    rollouts: int  # guarded rollouts that use it
    running_rollouts: int | None  # `activeGuardedRolloutCount`; None: not said
    said: bool  # LaunchDarkly said whether experiments use it at all (a count, or the expansion)

    def blocks(self, resource: Resource) -> str:
        """Why the item cannot be retired (`Resource.retire`), or "" when it can."""
        if resource.retire == "delete":
            if self.experiments or self.rollouts:
                return _users(self.experiments, self.rollouts)
            return "" if self.said else "LaunchDarkly did not say whether experiments use it"
        running, rollouts = self.running_experiments, self.running_rollouts
        if running or rollouts:
            return _users(running or 0, rollouts or 0, "running ")
        unknown_experiments = self.experiments if running is None else 0
        unknown_rollouts = self.rollouts if rollouts is None else 0
        if unknown_experiments or unknown_rollouts:
            unsaid = " (LaunchDarkly did not say whether they are running)"
            return _users(unknown_experiments, unknown_rollouts) + unsaid
        return ""

    def stopped_note(self) -> str:
        """For an item that may be archived: the stopped experiments whose results it keeps."""
        if not self.experiments:
            return ""
        return f"{_users(self.experiments, 0)}, none of them running; their results stay in LaunchDarkly"

    def counted(self) -> str:
        """`used by 2 experiments and 1 guarded rollout` (active ones), or "" when nothing is said to use it."""
        rollouts = self.running_rollouts or 0
        return _users(self.experiments, rollouts) if self.experiments or rollouts else ""


def usage_of(rep: Mapping[str, Any]) -> Usage:
    """The one reading of what uses an item: from a single read with expansions, or a list representation."""
    counted = _count(rep.get("experimentCount"))
    running = _count(rep.get("activeExperimentCount"))
    running_rollouts = _count(rep.get("activeGuardedRolloutCount"))
    return Usage(experiments=max(counted or 0, running or 0, len(live_experiments(rep))),
                 running_experiments=running,
                 rollouts=max(running_rollouts or 0, len(_rollouts(rep))),
                 running_rollouts=running_rollouts,
                 said=counted is not None or "experiments" in rep)


def _users(experiments: int, rollouts: int, adjective: str = "") -> str:
    parts = []
    if experiments:
        parts.append(f"{experiments} {adjective}experiment{'s' if experiments != 1 else ''}")
    if rollouts:
        parts.append(f"{rollouts} {adjective}guarded rollout{'s' if rollouts != 1 else ''}")
    return "used by " + " and ".join(parts)


def uses_of(project: str, rep: Mapping[str, Any], statuses: Statuses, via: str | None = None) -> list[Use]:
    """The experiments and guarded rollouts a single read with expansions names, running or not as far as the
    active counts (or, where they leave it open, the experiments' `statuses`) say."""
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
    rollouts = _rollouts(rep)
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


def groups_of(rep: Mapping[str, Any]) -> list[str]:
    """The metric groups a metric read with `expand=metricGroups` is in."""
    return [str(g["key"]) for g in rep.get("metricGroups") or [] if isinstance(g, Mapping)
            and isinstance(g.get("key"), str)]
