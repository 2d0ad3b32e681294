"""`metrics-sync plan`: show what apply would change in LaunchDarkly, and optionally save it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metrics_sync.cli import early_read
from metrics_sync.cli.commands import common
from metrics_sync.core.runtime import Runtime
from metrics_sync.output.escape import shown

if TYPE_CHECKING:
    from metrics_sync.core.model import Definitions, UnsentEvent
    from metrics_sync.definitions.config import Config

HELP = "show what apply would change in LaunchDarkly"
CALLS_API = True


def configure(parser: argparse.ArgumentParser) -> None:
    common.add_paths(parser)
    common.add_project(parser)
    parser.add_argument("--out", metavar="PLANFILE", help="save the plan for `apply --plan`")
    parser.add_argument("--format", choices=["text", "json", "markdown"], default="text",
                        help="text (default), json (the plan file's form, docs/plan-format.md) or markdown (a "
                             "pull-request comment)")
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 2 when there are changes (0 none, 1 error)")
    parser.add_argument("--prune", action="store_true",
                        help="archive managed metrics (delete managed metric groups) that left the definitions")
    common.add_target(parser)
    common.add_protect_running(parser)
    common.add_code(parser)


@dataclass(frozen=True, kw_only=True)
class PlanArguments(common.ApiArguments):
    paths: tuple[str, ...]
    project: str | None
    out: str | None  # where to save the plan for `apply --plan`
    format: str
    detailed_exitcode: bool
    prune: bool
    targets: tuple[str, ...]
    protect_running: bool
    code: tuple[str, ...]


def arguments(namespace: argparse.Namespace) -> PlanArguments:
    return PlanArguments(**common.api_options(namespace), paths=tuple(namespace.paths), project=namespace.project,
                         out=namespace.out, format=namespace.format, detailed_exitcode=namespace.detailed_exitcode,
                         prune=namespace.prune, targets=tuple(namespace.target),
                         protect_running=namespace.protect_running, code=tuple(namespace.code))


def _unsent_events(runtime: Runtime, cfg: Config, definitions: Definitions,
                   code: tuple[str, ...]) -> dict[str, list[UnsentEvent]]:
    """With --code (or the config's codeRefs.paths): a warning for each metric whose event no code sends, and
    those metrics by project, for the plan to carry. Read before LaunchDarkly is."""
    from metrics_sync.coderefs.report import unsent_problems
    from metrics_sync.core.errors import redact
    from metrics_sync.core.model import UnsentEvent
    from metrics_sync.output.problems import problem_line

    report = common.code_report(runtime, cfg, definitions, code=code)
    if report is None:
        return {}
    for problem in unsent_problems(report, strict=False):
        runtime.err(redact(problem_line(problem), runtime.environ))
    unsent: dict[str, list[UnsentEvent]] = {}
    for m in report.unsent:
        unsent.setdefault(m.metric.project, []).append(UnsentEvent(m.metric.key, m.event, m.where))
    return unsent


def run(arguments: PlanArguments, runtime: Runtime) -> int:
    from metrics_sync.core.gc_tuning import survivors_frozen

    # The definitions live to the end of the command: out of the collector's sight once read
    # (core/gc_tuning.py); make_plan's listing scope (gc_frozen) brings back whatever else was frozen with them.
    with survivors_frozen() as freeze:
        return _plan(arguments, runtime, freeze)


def _plan(arguments: PlanArguments, runtime: Runtime, freeze: Callable[[], None]) -> int:
    from metrics_sync.output import views
    from metrics_sync.planning import planfile
    from metrics_sync.planning.make import make_plan

    cfg = common.config(runtime, arguments.config)
    early = early_read.start(runtime, cfg, arguments)
    try:
        definitions = common.checked_definitions(runtime, cfg, paths=arguments.paths, project=arguments.project)
        freeze()
        common.check_prune_scope(runtime, cfg, prune=arguments.prune, paths=arguments.paths)
        unsent = _unsent_events(runtime, cfg, definitions, arguments.code)
        client = early.client if early is not None else common.client(runtime, cfg, arguments)
    except BaseException:
        if early is not None:  # nothing of it is shown; its reads are cut off and waited for
            early.client.abandon()
        raise
    if early is not None:
        early.output.release()  # what the early read logged (--verbose), now that the run goes on
    with client:
        the_plan = make_plan(client, definitions, ownership_tag=cfg.ownership_tag, prune=arguments.prune,
                             targets=arguments.targets, protect=arguments.protect_running or cfg.protect_running,
                             cancel=runtime.cancel, unsent=unsent)
    runtime.cancel.check("planning")  # after Ctrl-C nothing new starts: no plan is shown or saved
    for project, item in the_plan.unsent:
        for use in item.used_by:
            runtime.err(shown(f"warning: metric `{item.key}` in `{project}`, whose event no code sends, is used by "
                              f"{use.describe()}: it gets no data from now on"))
    runtime.out(views.PLAN[arguments.format](the_plan, color=runtime.color(arguments.no_color)))
    if the_plan.refused:
        return 1
    if arguments.out:
        planfile.write(runtime.path(arguments.out), the_plan)
        runtime.err(shown(f"Saved the plan to {arguments.out}; apply it with: metrics-sync apply --plan "
                          f"{arguments.out}"))
    return 2 if arguments.detailed_exitcode and the_plan.has_changes else 0
