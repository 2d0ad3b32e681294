"""`metrics-sync refs`: where the application code sends the events the custom metrics measure."""

from __future__ import annotations

import argparse

from metrics_sync.cli.commands import common
from metrics_sync.core.errors import redact
from metrics_sync.core.runtime import Runtime

HELP = "find where the code sends each metric's event, and the events no metric measures"
CALLS_API = False


def configure(parser: argparse.ArgumentParser) -> None:
    common.add_paths(parser)
    common.add_code(parser)
    parser.add_argument("--format", choices=["text", "json"], default="text")
    common.add_project(parser)


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    from metrics_sync.output import refs as refs_output

    cfg = common.config(args, runtime)
    definitions = common.checked_definitions(args, runtime, cfg)
    report = common.code_report(args, runtime, cfg, definitions, required=True)
    assert report is not None
    render = refs_output.json_text if args.format == "json" else refs_output.text
    # Paths and keys come from the code: escaped by the renderer; a link in it could still point at a secret.
    runtime.out(redact(render(report), runtime.environ))
    return 0
