"""`metrics-sync refs`: where the application code sends the events the custom metrics measure."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from metrics_sync.cli.commands import common
from metrics_sync.core.errors import redact
from metrics_sync.core.runtime import Runtime

HELP = "find where the code sends each metric's event, and the events no metric measures"
CALLS_API = False


def configure(parser: argparse.ArgumentParser) -> None:
    common.add_paths(parser)
    common.add_code(parser)
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="text (default) or json (every place each event is sent, for tools)")
    common.add_project(parser)


@dataclass(frozen=True, kw_only=True)
class RefsArguments(common.CommonArguments):
    paths: tuple[str, ...]
    code: tuple[str, ...]
    format: str
    project: str | None


def arguments(namespace: argparse.Namespace) -> RefsArguments:
    return RefsArguments(**common.common_options(namespace), paths=tuple(namespace.paths),
                         code=tuple(namespace.code), format=namespace.format, project=namespace.project)


def run(arguments: RefsArguments, runtime: Runtime) -> int:
    from metrics_sync.output import views

    cfg = common.config(runtime, arguments.config)
    definitions = common.checked_definitions(runtime, cfg, paths=arguments.paths, project=arguments.project)
    report = common.code_report(runtime, cfg, definitions, code=arguments.code, required=True)
    assert report is not None
    runtime.cancel.check("scanning the code")  # Ctrl-C during a long scan: no report from a run the user stopped
    # Paths and keys come from the code: escaped by the renderer; a link in it could still point at a secret.
    runtime.out(redact(views.REFS[arguments.format](report), runtime.environ))
    return 0
