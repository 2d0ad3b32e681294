"""Before a saved plan is applied: refuse it unless it still describes LaunchDarkly and the definitions.

A saved plan is refused when it holds changes LaunchDarkly cannot make, was made against another
LaunchDarkly instance, was made from definitions that changed since, or when any metric it changes has
moved on in LaunchDarkly since the plan (another `_version`, created or deleted meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from metrics_sync.errors import PlanError
from metrics_sync.model import Plan

ListMetrics = Callable[[str], Sequence[Mapping[str, Any]]]


def verify_saved_plan(saved: Plan, *, host: str, definitions_hashes: Mapping[str, str] | None,
                      list_metrics: ListMetrics) -> None:
    """Raise PlanError when `saved` must not be applied. `definitions_hashes` (project -> hash of the
    definitions now) is None when no definitions were given; `list_metrics` reads a project's metrics."""
    if saved.refused:
        raise PlanError("the saved plan contains changes LaunchDarkly cannot make; fix the definitions and plan again")
    if saved.base_url_host != host:
        raise PlanError(f"the plan was made against {saved.base_url_host}, not {host}", "run plan again")
    if definitions_hashes is not None:
        for project_plan in saved.projects:
            if definitions_hashes.get(project_plan.project) != project_plan.definitions_hash:
                raise PlanError(f"the definitions of project {project_plan.project} changed since the plan",
                                "run plan again")
    remote = {p.project: list_metrics(p.project) for p in saved.projects if p.changes}
    stale = check_stale(saved, remote)
    if stale:
        more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
        raise PlanError(f"plan is stale: {stale[0]}{more}; run plan again")


def check_stale(plan: Plan, remote: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Why a saved plan no longer matches LaunchDarkly (empty when it still does)."""
    problems = []
    for project_plan in plan.projects:
        current = {str(r["key"]): r for r in remote.get(project_plan.project, [])}
        for change in project_plan.changes:
            rep = current.get(change.key)
            if change.action == "create":
                if rep is not None:
                    problems.append(f"metric {change.key} was created in LaunchDarkly since the plan")
            elif rep is None:
                problems.append(f"metric {change.key} was deleted from LaunchDarkly since the plan")
            elif rep.get("_version") != change.remote_version:
                problems.append(f"metric {change.key} changed since the plan "
                                f"(version {change.remote_version} → {rep.get('_version')})")
    return problems
