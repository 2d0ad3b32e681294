"""`metrics-sync validate`: check the definitions offline and report every problem."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from dataclasses import dataclass

from metrics_sync.cli.commands import common
from metrics_sync.core.errors import redact
from metrics_sync.core.gc_tuning import gc_frozen, gc_paused
from metrics_sync.core.runtime import Runtime

HELP = "check definitions offline against the schema and rules"
CALLS_API = False


def configure(parser: argparse.ArgumentParser) -> None:
    common.add_paths(parser)
    parser.add_argument("--format", choices=["text", "json", "github"], default="text",
                        help="text (default), json, or GitHub workflow annotations")
    common.add_project(parser)
    common.add_code(parser)
    parser.add_argument("--strict-refs", action="store_true",
                        help="with --code: a metric whose event no code sends is an error, not a warning")


@dataclass(frozen=True, kw_only=True)
class ValidateArguments(common.CommonArguments):
    paths: tuple[str, ...]
    format: str
    project: str | None
    code: tuple[str, ...]
    strict_refs: bool


def arguments(namespace: argparse.Namespace) -> ValidateArguments:
    return ValidateArguments(**common.common_options(namespace), paths=tuple(namespace.paths),
                             format=namespace.format, project=namespace.project, code=tuple(namespace.code),
                             strict_refs=namespace.strict_refs)


def run(arguments: ValidateArguments, runtime: Runtime) -> int:
    from metrics_sync.coderefs.report import unsent_problems
    from metrics_sync.core.errors import UsageError
    from metrics_sync.output import views

    cfg = common.config(runtime, arguments.config)
    if arguments.strict_refs and not (arguments.code or cfg.code_refs.paths):
        raise UsageError("--strict-refs needs the application code", "give --code DIR, or codeRefs.paths in the config")
    with ExitStack() as scope:
        with gc_paused():
            definitions, problems = common.read_definitions(runtime, cfg, paths=arguments.paths,
                                                            project=arguments.project)
            # The definitions live to the end of the command: out of the collector's sight before it resumes,
            # or its next collections walk every one of them (a second of 100,000 metrics).
            scope.enter_context(gc_frozen())
        report = common.code_report(runtime, cfg, definitions, code=arguments.code)
        runtime.cancel.check("validating")  # Ctrl-C during a long scan: no verdict from a run the user stopped
        if report is not None:
            problems = [*problems, *unsent_problems(report, strict=arguments.strict_refs)]
        # Problem lines quote values from the files: a definitions folder could hold a link to a secret.
        runtime.out(redact(views.PROBLEMS[arguments.format](problems, definitions), runtime.environ))
        return 1 if any(p.severity == "error" for p in problems) else 0
