"""Before a saved plan is applied: it must be exactly the plan the definitions and LaunchDarkly call for now.

A plan file travels (a CI artifact, a download) and may have been edited on the way. So `apply --plan`
plans afresh from the definitions and the current state of LaunchDarkly, and applies only when the saved
changes equal the fresh ones: the same projects, actions, keys, POST bodies and JSON Patch operations,
planned against the same `_version`s. What it refuses, it says why, in the terms a reviewer knows: another
LaunchDarkly, other definitions, a metric that moved on since the plan, or a change nobody planned.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from metrics_sync.core.errors import PlanError
from metrics_sync.core.model import Change, Plan

SAME_PATHS_HINT = "pass apply the same PATHs as plan (or set `paths` in metrics-sync.yaml and give neither any)"


def check_origin(saved: Plan, *, host: str, ownership_tag: str, definitions_hashes: Mapping[str, str],
                 files: Sequence[str] = ()) -> None:
    """Before anything is read from LaunchDarkly: the plan was made against this LaunchDarkly, with this
    ownership tag, from these definitions. `files` are the definition files apply read: when the definitions
    differ and so do the files, the error names the files (plan and apply given different PATHs), not a
    change to the definitions."""
    if saved.refused:
        raise PlanError("the saved plan contains refused changes; fix the definitions and plan again")
    if saved.base_url_host != host:
        raise PlanError(f"the plan was made against {saved.base_url_host}, not {host}", "run plan again")
    if saved.ownership_tag != ownership_tag:
        raise PlanError(f"the plan was made with the ownership tag {saved.ownership_tag}, not {ownership_tag}",
                        "run plan again")
    saved_projects = [p.project for p in saved.projects]
    same_definitions = saved_projects == sorted(definitions_hashes) and all(
        definitions_hashes.get(p.project) == p.definitions_hash for p in saved.projects)
    if same_definitions:
        return
    other_files = other_files_than_planned(saved.files, files)
    if other_files:
        raise PlanError(other_files, SAME_PATHS_HINT)
    if saved_projects != sorted(definitions_hashes):
        raise PlanError(f"the plan covers the projects {', '.join(saved_projects) or 'none'}, the definitions "
                        f"{', '.join(sorted(definitions_hashes)) or 'none'}", "run plan again")
    for project_plan in saved.projects:
        if definitions_hashes.get(project_plan.project) != project_plan.definitions_hash:
            raise PlanError(f"the definitions of project {project_plan.project} changed since the plan",
                            "run plan again")


SHOWN_FILES = 3


def other_files_than_planned(planned: Sequence[str], given: Sequence[str]) -> str | None:
    """Why the set of definition files differs from the plan's, or None when it does not (or the plan file is
    older than the list of files it records)."""
    if not planned:
        return None
    before = {os.path.normpath(name) for name in planned}
    now = {os.path.normpath(name) for name in given}
    if before == now:
        return None

    def listed(names: set[str]) -> str:
        ordered = sorted(names)
        more = f" and {len(ordered) - SHOWN_FILES} more" if len(ordered) > SHOWN_FILES else ""
        return ", ".join(ordered[:SHOWN_FILES]) + more

    parts = []
    if before - now:
        parts.append(f"not given: {listed(before - now)}")
    if now - before:
        parts.append(f"not in the plan: {listed(now - before)}")
    noun = "file" if len(before) == 1 else "files"
    return f"the plan covered {len(before)} definition {noun}, you gave {len(now)} ({'; '.join(parts)})"


def verify_saved_plan(saved: Plan, fresh: Plan) -> None:
    """Raise PlanError unless `saved` (read from a file, `check_origin` passed) equals `fresh` (planned now)."""
    problems = differences(saved, fresh)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PlanError(f"plan is stale: {problems[0]}{more}; run plan again")


def differences(saved: Plan, fresh: Plan) -> list[str]:
    """Why the saved changes are not the changes planned now (empty when they are the same)."""
    problems = []
    for saved_project, fresh_project in zip(saved.projects, fresh.projects, strict=True):
        # A metric and a metric group may share a key: each is known by both.
        now = {(c.resource, c.key): c for c in fresh_project.changes}
        seen = set()
        for change in saved_project.changes:
            seen.add((change.resource, change.key))
            current = now.get((change.resource, change.key))
            problem = _compare(change, current)
            if problem:
                problems.append(problem)
        for resource, key in sorted(set(now) - seen):
            change = now[(resource, key)]
            problems.append(f"{change.noun} {key} now needs a change ({change.action}) the plan does not hold")
    return problems


def _compare(saved: Change, fresh: Change | None) -> str | None:
    what = f"{saved.noun} {saved.key}"
    if fresh is None:
        if saved.action == "create":
            return f"{what} was created in LaunchDarkly since the plan"
        return (f"the plan holds a{'n' if saved.action[0] in 'aeiou' else ''} {saved.action} of {what} that the "
                f"definitions and LaunchDarkly do not call for now")
    if saved.action != "create" and fresh.action == "create":
        return f"{what} was deleted from LaunchDarkly since the plan"
    if saved.remote_version != fresh.remote_version:
        return f"{what} changed since the plan (version {saved.remote_version} → {fresh.remote_version})"
    if (saved.action, saved.restore, saved.adopt) != (fresh.action, fresh.restore, fresh.adopt):
        return f"the plan's {saved.action} of {what} is not what the definitions call for ({fresh.action})"
    if saved.body != fresh.body:
        return f"the plan's create body for {what} is not what the definitions call for"
    if saved.patch != fresh.patch:
        return f"the plan's patch for {what} is not what the definitions and LaunchDarkly call for"
    return None
