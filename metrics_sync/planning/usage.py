"""What uses a metric or metric group, read once: from a single read with `Resource.usage_expansions` (or a list
representation's counters), the experiments and guarded rollouts (`Use` values), their counts, and from them
whether retiring the item is blocked; from a project's holdouts and release policies (`Holders`), the same.
Pure: plan reads (state.py), this module says what the read means.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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


# --- holdouts and release policies (docs/launchdarkly-contract.md, A40-A44) ----------------------------------

ItemKey = tuple[str, str]  # (resource kind, key)


@dataclass(frozen=True)
class Holders:
    """A project's holdouts and release policies, as the uses of the metrics and groups they name."""

    uses: Mapping[ItemKey, tuple[Use, ...]] = field(default_factory=dict)
    unread: str | None = None  # what could not be read (then what uses an item is not known for certain)

    def of(self, kind: str, key: str, groups: Sequence[str] = ()) -> list[Use]:
        """What uses an item: its own holdouts and policies, and for a metric those of the `groups` it is in."""
        found: dict[tuple[str, str, str], Use] = {}
        for use in self.uses.get((kind, key), ()):
            found.setdefault((use.kind, use.environment, use.key), use)
        for group in groups:
            for use in self.uses.get(("metric-group", group), ()):
                found.setdefault((use.kind, use.environment, use.key), replace(use, via=group))
        return list(found.values())

    def blocks(self, kind: str, key: str, retire: str, groups: Sequence[str] = ()) -> str:
        """Why holdouts or release policies keep an item from being retired, or "". A group is not deleted while
        any names it; a metric is not archived while a release policy names it (new guarded releases would
        measure an archived metric, and LaunchDarkly may refuse it: A43) or a holdout that is not known to be
        stopped uses it. Not knowing blocks both."""
        if self.unread is not None:
            return f"whether holdouts or release policies use it could not be read ({self.unread})"
        uses = self.of(kind, key, groups)
        if retire == "archive":
            uses = [u for u in uses if u.kind == "release policy" or u.running is not False]
        return "used by " + ", ".join(u.describe() for u in uses) if uses else ""


def _iteration_status(base: Mapping[str, Any], detail: Mapping[str, Any]) -> bool | None:
    """Whether a holdout runs: its base experiment's current iteration status (not_started, running, stopped, as
    for experiments); a draft alone has not started; else `isDirty` ("the holdout experiment is running")."""
    for name in ("currentIteration", "draftIteration"):
        iteration = base.get(name)
        if isinstance(iteration, Mapping) and iteration.get("status") in ("running", "not_started", "stopped"):
            return bool(iteration["status"] == "running")
    return True if detail.get("isDirty") is True else None


def _holdout_metrics(base: Mapping[str, Any]) -> list[tuple[ItemKey, str | None, str | None]]:
    """((kind, key), the group it is used through, its analysis unit) for each metric and group the base
    experiment's iterations name: a group's own metrics are named through it."""
    out: list[tuple[ItemKey, str | None, str | None]] = []
    for name in ("currentIteration", "draftIteration"):
        iteration = base.get(name)
        if not isinstance(iteration, Mapping):
            continue
        entries = [*(iteration.get("metrics") or []),
                   *(iteration[p] for p in ("primaryMetric", "primarySingleMetric", "primaryFunnel")
                     if isinstance(iteration.get(p), Mapping))]
        for entry in entries:
            unit = entry.get("analysisUnit") if isinstance(entry.get("analysisUnit"), str) else None
            members = entry.get("metrics") or []
            if entry.get("isGroup") or members:
                out.append((("metric-group", str(entry["key"])), None, unit))
                out.extend((("metric", str(m["key"])), str(entry["key"]), unit) for m in members)
            else:
                out.append((("metric", str(entry["key"])), None, unit))
    return out


def holders_from(holdouts: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]],
                 policies: Sequence[Mapping[str, Any]], unread: str | None = None) -> Holders:
    """The uses the holdouts ((environment, list item, detail) each) and release policies name. An archived
    holdout uses nothing (as an archived experiment); a policy is in force when its release method is a guarded
    release (its metrics are then those of every new guarded release in its scope)."""
    uses: dict[ItemKey, dict[tuple[str, str], Use]] = {}

    def add(item: ItemKey, use: Use) -> None:
        uses.setdefault(item, {}).setdefault((use.environment, use.key), use)

    for environment, listed, detail in holdouts:
        base = detail.get("baseExperiment")
        if not isinstance(base, Mapping) or base.get("archivedDate"):
            continue
        running = _iteration_status(base, detail)
        name = str(listed.get("name") or base.get("name") or "")
        for item, via, unit in _holdout_metrics(base):
            add(item, Use("holdout", str(listed["key"]), name, environment, running, via, unit))
    for policy in policies:
        config = policy.get("guardedReleaseConfig") or {}
        scope = policy.get("scope") or {}
        method = policy.get("releaseMethod")
        running = None if method is None else method == "guarded-release"
        where = ", ".join(scope.get("environmentKeys") or [])
        use = Use("release policy", str(policy["key"]), str(policy.get("name") or ""), where, running)
        for key in config.get("metricKeys") or []:
            add(("metric", key), use)
        for key in config.get("metricGroupKeys") or []:
            add(("metric-group", key), use)
    return Holders({item: tuple(found.values()) for item, found in uses.items()}, unread)
