"""`metrics-sync plan`: show what apply would change in LaunchDarkly, and optionally save it."""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from metrics_sync import __version__
from metrics_sync.cli.commands import common
from metrics_sync.core.errors import PlanError, UsageError
from metrics_sync.core.runtime import Runtime
from metrics_sync.output.escape import shown

if TYPE_CHECKING:
    from metrics_sync.core.model import Definitions, Plan
    from metrics_sync.definitions.config import Config
    from metrics_sync.launchdarkly.client import Client

HELP = "show what apply would change in LaunchDarkly"
PROJECTS_AT_ONCE = 4
CALLS_API = True


def configure(parser: argparse.ArgumentParser) -> None:
    common.add_paths(parser)
    common.add_project(parser)
    parser.add_argument("--out", metavar="PLANFILE", help="save the plan for `apply --plan`")
    parser.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 2 when there are changes (0 none, 1 error)")
    parser.add_argument("--prune", action="store_true",
                        help="archive managed metrics (delete managed metric groups) that left the definitions")
    common.add_target(parser)
    common.add_protect_running(parser)
    common.add_code(parser)


def make_plan(prune: bool, cfg: Config, client: Client, definitions: Definitions,
              targets: tuple[str, ...] = (), *, protect: bool = False) -> Plan:
    """Read every project the definitions name and plan it.

    Reads: the paged metric list (and the metric group list, when the definitions hold groups or --prune may
    delete some); then, only for what may be archived or deleted, one read each with expansions, since only
    that read says for certain whether running experiments or guarded rollouts use it; only for projects
    whose definitions set analysis units, the project's experimentation settings; only when a new group needs
    a default maintainer, the token's member; and, once the changes are known, what uses each changed item
    (impact.py). An in-sync plan makes list calls only."""
    from metrics_sync.core.gc_tuning import gc_frozen, gc_paused
    from metrics_sync.planning.group_plan import GroupInputs
    from metrics_sync.planning.impact import annotate, touched
    from metrics_sync.planning.planner import PlanOptions, plan

    remote: dict[str, list[dict[str, Any]]] = {}
    canonical: dict[str, dict[str, dict[str, Any]]] = {}
    details: dict[str, dict[str, dict[str, Any]]] = {}
    units: dict[str, list[str] | None] = {}
    notes: dict[str, list[str]] = {}
    groups: dict[str, GroupInputs] = {}
    projects = sorted(definitions.metrics)
    with gc_frozen(), ThreadPoolExecutor(max_workers=max(1, min(PROJECTS_AT_ONCE, len(projects))),
                                         thread_name_prefix="project") as pool:
        # Projects are read at once; the client bounds the requests in flight for all of them together.
        reads = [pool.submit(_read_project, project, prune, cfg, client, definitions, targets) for project in projects]
        for project, read in zip(projects, reads, strict=True):
            (canonical[project], remote[project], details[project], units[project], groups[project],
             notes[project]) = read.result()
    _check_targets(targets, remote, groups, definitions)
    options = PlanOptions(ownership_tag=cfg.ownership_tag, prune=prune, base_url_host=client.host,
                          tool_version=__version__, targets=targets)
    with gc_paused():
        the_plan = plan(definitions.metrics, remote, options, details=details, experiment_units=units, notes=notes,
                        groups=groups, canonical=canonical)
    reads = _read_uses(client, touched(the_plan), details, groups)
    return annotate(the_plan, reads, protect=protect or cfg.protect_running)


def _read_project(project: str, prune: bool, cfg: Config, client: Client, definitions: Definitions,
                  targets: tuple[str, ...]) -> tuple[Any, Any, Any, Any, Any, Any]:
    from metrics_sync.core.errors import ApiError
    from metrics_sync.planning.group_plan import GroupInputs
    from metrics_sync.planning.impact import GROUP_EXPANSIONS, METRIC_EXPANSIONS
    from metrics_sync.planning.planner import prune_candidates, selected

    desired = definitions.metrics[project]
    wanted_groups = definitions.groups.get(project, [])
    notes: list[str] = []
    canonical = _Canonical(desired, cfg.ownership_tag)
    # The project's other reads go while its metrics are listed: at a distance, each is a round trip saved.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="side") as side:
        units_read = side.submit(_experiment_units, client, project, notes) \
            if any("analysisUnits" in m.fields for m in desired) else None
        groups_read = side.submit(_metric_groups, client, project, notes, bool(wanted_groups)) \
            if wanted_groups or prune else None
        try:
            metrics = client.list_metrics(project, keep=_keeper(desired, canonical, cfg.ownership_tag),
                                          expected=len(desired))
        except ApiError as exc:
            if exc.status != 404:
                raise
            where = definitions.project_sources.get(project, "the definitions")
            raise PlanError(f"{where}: there is no project `{project}` in LaunchDarkly at {client.host}",
                            "check the project key (`project:` in the file, --project, or the config); "
                            "keys are case-sensitive") from None
        units = units_read.result() if units_read is not None else None
        remote_groups = groups_read.result() if groups_read is not None else None
    details = {key: client.get_metric(project, key, expand=METRIC_EXPANSIONS)
               for key in prune_candidates(desired, metrics, cfg.ownership_tag) if selected(targets, project, key)}
    defined = {g.key for g in wanted_groups}
    group_details = {str(r["key"]): client.get_group(project, str(r["key"]), expand=GROUP_EXPANSIONS)
                     for r in remote_groups or [] if str(r["key"]) not in defined
                     and cfg.ownership_tag in (r.get("tags") or []) and selected(targets, project, str(r["key"]))}
    member, why = None, None
    existing = {str(r["key"]) for r in remote_groups or []}
    if any(g.key not in existing and not g.fields.get("maintainerId") for g in wanted_groups):
        member, why = client.my_member_id()
    inputs = GroupInputs(wanted_groups, remote_groups, group_details, member, why)
    return canonical.complete(), metrics, details, units, inputs, notes


def _experiment_units(client: Client, project: str, notes: list[str]) -> list[str] | None:
    from metrics_sync.core.errors import ApiError

    try:
        return client.experiment_units(project)
    except ApiError as exc:
        notes.append(f"analysis units were not checked against the project's experimentation "
                     f"settings ({exc.status or 'no answer'}: {exc.api_message})")
        return None


def _metric_groups(client: Client, project: str, notes: list[str], needed: bool) -> list[dict[str, Any]] | None:
    from metrics_sync.core.errors import ApiError
    from metrics_sync.core.resources import METRIC_GROUP

    try:
        return client.list_groups(project, keep=METRIC_GROUP.kept)
    except ApiError as exc:
        if needed or exc.status not in (401, 403, 404):
            raise
        notes.append(f"metric groups were not read ({exc.status or 'no answer'}: {exc.api_message}); "
                     f"--prune leaves them alone")
        return None


class _Canonical:
    """The desired canonical forms of a project's metrics, computed as the listing needs them (in the gaps
    while pages travel) and the rest once it is done."""

    def __init__(self, desired: list[Any], tag: str) -> None:
        self._metrics = {m.key: m for m in desired}
        self._tag = tag
        self._forms: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        form = self._forms.get(key)
        if form is None and key in self._metrics:
            from metrics_sync.planning.planner import desired_canonical

            form = self._forms[key] = desired_canonical(self._metrics[key], self._tag)
        return form

    def complete(self) -> dict[str, dict[str, Any]]:
        for key in self._metrics:
            self.get(key)
        return self._forms


def _keeper(desired: list[Any], canonical: _Canonical, tag: str) -> Any:
    """What plan keeps of each listed metric: a marker for one that is equal to its definition (most of them,
    in a repository in sync), the fields plan reads for the others. So a big project's plan holds the
    canonical form of its definitions and little else."""
    from metrics_sync.core.resources import METRIC
    from metrics_sync.launchdarkly.wire import problem
    from metrics_sync.planning.planner import IN_SYNC, in_sync

    adopt = {m.key: m.adopt for m in desired}

    def keep(rep: Any) -> dict[str, Any]:
        slim = METRIC.kept(rep)
        after = canonical.get(str(slim.get("key")))
        if after is not None and problem(METRIC, slim) is None and in_sync(after, adopt[slim["key"]], slim, tag):
            return {"key": slim["key"], "_version": slim.get("_version"), IN_SYNC: True}
        return slim

    return keep


def _check_targets(targets: tuple[str, ...], remote: dict[str, list[dict[str, Any]]], groups: dict[str, Any],
                   definitions: Definitions) -> None:
    from metrics_sync.planning.planner import selected

    def known(target: str) -> bool:
        keys = [(p, str(r["key"])) for p in remote for r in remote[p]]
        keys += [(p, m.key) for p in definitions.metrics for m in definitions.metrics[p]]
        keys += [(p, g.key) for p in definitions.groups for g in definitions.groups[p]]
        keys += [(p, str(r["key"])) for p, inputs in groups.items() for r in inputs.remote or []]
        return any(selected((target,), p, k) for p, k in keys)

    unmatched = [t for t in targets if not known(t)]
    if unmatched:
        raise UsageError(f"--target {unmatched[0]} matches no metric or metric group in the definitions or in "
                         "LaunchDarkly", "give a key, project/key, or a glob such as 'checkout-*'")


def _read_uses(client: Client, items: list[tuple[str, str, str]], details: dict[str, dict[str, dict[str, Any]]],
               groups: dict[str, Any]) -> Any:
    """What uses each item (those a plan updates, archives or deletes; metrics whose event no code sends): one
    read with expansions per item (reusing the reads of prune candidates), the groups a metric is in, and,
    where the active counts leave it open, the status of each experiment (impact.py)."""
    from metrics_sync.core.errors import ApiError
    from metrics_sync.planning.impact import (
        GROUP_EXPANSIONS,
        MAX_EXPERIMENT_READS,
        MAX_GROUP_READS,
        METRIC_EXPANSIONS,
        Reads,
        groups_of,
        running_status,
        statuses_needed,
    )

    def item(target: tuple[str, str, str]) -> tuple[Any, str | None]:
        project, resource, key = target
        known = (details.get(project, {}) if resource == "metric" else groups[project].details).get(key)
        try:
            return known or (client.get_metric(project, key, expand=METRIC_EXPANSIONS) if resource == "metric"
                             else client.get_group(project, key, expand=GROUP_EXPANSIONS)), None
        except ApiError as exc:
            return None, f"{exc.status or 'no answer'}: {exc.api_message}"

    def group(target: tuple[str, str, str]) -> Any:
        try:
            return client.get_group(target[0], target[2], expand=GROUP_EXPANSIONS)
        except ApiError:
            return None  # its experiments stay unnamed; the metric's own are still read

    def status(at: tuple[str, str, str]) -> str | None:
        try:
            return running_status(client.experiment(*at))
        except ApiError:
            return None

    reads = Reads()
    # Each read is one round trip: they go at once (the client's rate-limit gate paces them), in the plan's
    # order, and are kept in that order so the caps below pick the same items on every run.
    with ThreadPoolExecutor(max_workers=client.read_concurrency, thread_name_prefix="uses") as pool:
        for target, (rep, why) in zip(items, pool.map(item, items), strict=True):
            if rep is not None:
                reads.reps[target] = rep
            else:
                reads.unread[target] = str(why)
        wanted: list[tuple[str, str, str]] = []
        for (project, resource, _), rep in list(reads.reps.items()):
            for key in groups_of(rep) if resource == "metric" else []:
                target = (project, "metric-group", key)
                if target not in reads.reps and target not in wanted and len(wanted) < MAX_GROUP_READS:
                    wanted.append(target)
        for target, rep in zip(wanted, pool.map(group, wanted), strict=True):
            if rep is not None:
                reads.reps[target] = rep
        needed: list[tuple[str, str, str]] = []
        for (project, _, _), rep in list(reads.reps.items()):
            for environment, experiment in statuses_needed(rep):
                at = (project, environment, experiment)
                if at not in needed and len(needed) < MAX_EXPERIMENT_READS:
                    needed.append(at)
        reads.statuses.update(zip(needed, pool.map(status, needed), strict=True))
    return reads


MAX_UNSENT_READS = 50  # metrics whose event no code sends, read to learn whether running experiments use them


def _unsent_uses(client: Client, unsent: list[tuple[str, str, str, str]]) -> dict[tuple[str, str], list[Any]]:
    """The running experiments and guarded rollouts that use each metric whose event no code sends (one
    read with expansions each, at most MAX_UNSENT_READS): those will report no data from now on. A metric
    not in LaunchDarkly yet is used by nothing."""
    from metrics_sync.planning.impact import uses_in

    items = [(project, "metric", key) for project, key, _, _ in unsent[:MAX_UNSENT_READS]]
    reads = _read_uses(client, items, {}, {})
    return {(item[0], item[2]): [u for u in uses_in(item, reads) if u.running is not False] for item in items}


def _unsent_events(args: argparse.Namespace, runtime: Runtime, cfg: Config,
                   definitions: Definitions) -> list[tuple[str, str, str, str]]:
    """With --code (or the config's codeRefs.paths): a warning for each metric whose event no code sends,
    and (project, key, event, where defined) of each for the PR comment. Read before LaunchDarkly is."""
    from metrics_sync.coderefs.report import unsent_problems
    from metrics_sync.core.errors import redact
    from metrics_sync.output.problems import problem_line

    report = common.code_report(args, runtime, cfg, definitions)
    if report is None:
        return []
    for problem in unsent_problems(report, strict=False):
        runtime.err(redact(problem_line(problem), runtime.environ))
    return [(m.metric.project, m.metric.key, m.event, m.where) for m in report.unsent]


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    from dataclasses import replace

    from metrics_sync.output import plan as plan_output
    from metrics_sync.planning import planfile

    cfg = common.config(args, runtime)
    definitions = common.checked_definitions(args, runtime, cfg)
    common.check_prune_scope(args, runtime, cfg)
    unsent = _unsent_events(args, runtime, cfg, definitions)
    with common.client(args, runtime, cfg) as client:
        the_plan = make_plan(args.prune, cfg, client, definitions, targets=tuple(args.target),
                             protect=args.protect_running)
        the_plan = replace(the_plan, files=tuple(definitions.files))  # apply --plan says which files differ
        running = _unsent_uses(client, unsent) if unsent else {}
    for (project, key), uses in running.items():
        for use in uses:
            runtime.err(shown(f"warning: metric `{key}` in `{project}`, whose event no code sends, is used by "
                              f"{use.describe()}: it gets no data from now on"))
    if args.format == "json":
        runtime.out(planfile.to_json(the_plan))
    elif args.format == "markdown":
        runtime.out(plan_output.markdown(the_plan, unsent=[(*u, tuple(use.describe() for use in
                                                                         running.get((u[0], u[1]), [])))
                                                         for u in unsent]))
    else:
        runtime.out(plan_output.text(the_plan, color=runtime.color(args.no_color)))
    if the_plan.refused:
        return 1
    if args.out:
        planfile.write(runtime.path(args.out), the_plan)
        runtime.err(shown(f"Saved the plan to {args.out}; apply it with: metrics-sync apply --plan {args.out}"))
    return 2 if args.detailed_exitcode and the_plan.has_changes else 0
