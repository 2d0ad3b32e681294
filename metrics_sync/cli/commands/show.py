"""`metrics-sync show PLANFILE`: render a saved plan (offline), as plan printed it."""

from __future__ import annotations

import argparse

from metrics_sync.core.runtime import Runtime

HELP = "render a saved plan (text, JSON or a Markdown PR comment)"
CALLS_API = False


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("planfile", metavar="PLANFILE", help="a plan saved with `metrics-sync plan --out`")
    parser.add_argument("--format", choices=["text", "json", "markdown"], default="text")


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    from metrics_sync.output import plan as plan_output
    from metrics_sync.planning import planfile

    saved = planfile.read(runtime.path(args.planfile))
    if args.format == "json":
        runtime.out(planfile.to_json(saved))
    elif args.format == "markdown":
        runtime.out(plan_output.markdown(saved))
    else:
        runtime.out(plan_output.text(saved, color=runtime.color(args.no_color)))
    return 0
