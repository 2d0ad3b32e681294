"""`metrics-sync show PLANFILE`: render a saved plan (offline), as plan printed it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from metrics_sync.cli.commands import common
from metrics_sync.core.runtime import Runtime

HELP = "render a saved plan (text, JSON or a Markdown PR comment)"
CALLS_API = False


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("planfile", metavar="PLANFILE", help="a plan saved with `metrics-sync plan --out`")
    parser.add_argument("--format", choices=["text", "json", "markdown"], default="text",
                        help="text (default), json (the plan file's form) or markdown (a pull-request comment), "
                             "as plan prints them")


@dataclass(frozen=True, kw_only=True)
class ShowArguments(common.CommonArguments):
    planfile: str
    format: str


def arguments(namespace: argparse.Namespace) -> ShowArguments:
    return ShowArguments(**common.common_options(namespace), planfile=namespace.planfile, format=namespace.format)


def run(arguments: ShowArguments, runtime: Runtime) -> int:
    from metrics_sync.output import views
    from metrics_sync.planning import planfile

    saved = planfile.read(runtime.path(arguments.planfile))
    runtime.out(views.PLAN[arguments.format](saved, color=runtime.color(arguments.no_color)))
    return 0
