"""`metrics-sync plan`: show what apply would change in LaunchDarkly, and optionally save it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from metrics_sync.cli.commands import common
from metrics_sync.core.runtime import Runtime
from metrics_sync.output.escape import shown

if TYPE_CHECKING:
    from metrics_sync.core.model import Definitions
    from metrics_sync.definitions.config import Config

HELP = "show what apply would change in LaunchDarkly"
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
    from metrics_sync.output import plan as plan_output
    from metrics_sync.planning import planfile
    from metrics_sync.planning.make import make_plan, unsent_uses

    cfg = common.config(args, runtime)
    definitions = common.checked_definitions(args, runtime, cfg)
    common.check_prune_scope(args, runtime, cfg)
    unsent = _unsent_events(args, runtime, cfg, definitions)
    with common.client(args, runtime, cfg) as client:
        the_plan = make_plan(client, definitions, ownership_tag=cfg.ownership_tag, prune=args.prune,
                             targets=tuple(args.target), protect=args.protect_running or cfg.protect_running,
                             cancel=runtime.cancel)
        running = unsent_uses(client, [(project, key) for project, key, _, _ in unsent],
                              cancel=runtime.cancel) if unsent else {}
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
