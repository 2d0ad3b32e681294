"""`metrics-sync health`: is every metric measuring something? Joins the definitions, the code's track calls
(`--code`) and LaunchDarkly's record of each metric (`lastSeen`, `lastUsedIn*`, what uses it) into one row per
metric and the findings (health/), shown as text, JSON, Markdown or a self-contained HTML catalogue page."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from metrics_sync.cli.commands import common
from metrics_sync.core.errors import UsageError, redact
from metrics_sync.core.runtime import Runtime

HELP = "check that every metric is measuring something (LaunchDarkly's lastSeen, users, the code's track calls)"
CALLS_API = True
DEFAULT_STALE_DAYS = 30
MAX_STALE_DAYS = 3650


def configure(parser: argparse.ArgumentParser) -> None:
    common.add_paths(parser)
    common.add_code(parser)
    common.add_project(parser)
    parser.add_argument("--format", choices=["text", "json", "markdown", "html"], default="text",
                        help="text (default), json (schemas/health.schema.json), markdown (for an issue) or html "
                             "(one self-contained catalogue page)")
    parser.add_argument("--out", metavar="FILE", help="write the output to FILE (atomically) instead of stdout")
    parser.add_argument("--stale-days", type=int, default=DEFAULT_STALE_DAYS, metavar="N",
                        help=f"an event not seen for N days is stale (default {DEFAULT_STALE_DAYS})")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a metric is running without events or never seen")


@dataclass(frozen=True, kw_only=True)
class HealthArguments(common.ApiArguments):
    paths: tuple[str, ...]
    code: tuple[str, ...]
    project: str | None
    format: str
    out: str | None
    stale_days: int
    strict: bool


def arguments(namespace: argparse.Namespace) -> HealthArguments:
    return HealthArguments(**common.api_options(namespace), paths=tuple(namespace.paths), code=tuple(namespace.code),
                           project=namespace.project, format=namespace.format, out=namespace.out,
                           stale_days=namespace.stale_days, strict=namespace.strict)


def run(arguments: HealthArguments, runtime: Runtime) -> int:
    from metrics_sync.core.files import write_atomic
    from metrics_sync.health.judge import Inputs, judge
    from metrics_sync.health.model import STRICT_CODES
    from metrics_sync.health.read import observe
    from metrics_sync.output import views

    if not 1 <= arguments.stale_days <= MAX_STALE_DAYS:
        raise UsageError(f"--stale-days must be between 1 and {MAX_STALE_DAYS}")
    cfg = common.config(runtime, arguments.config)
    definitions = common.checked_definitions(runtime, cfg, paths=arguments.paths, project=arguments.project)
    projects = sorted({*definitions.metrics, *definitions.groups}) or \
        [p for p in (arguments.project or cfg.project,) if p]
    if not projects:
        raise UsageError("no project to check", "give --project KEY, or `project:` in the definitions or the config")
    report = common.code_report(runtime, cfg, definitions, code=arguments.code)
    with common.client(runtime, cfg, arguments) as client:
        observed = {project: observe(client, project, cancel=runtime.cancel,
                                     expected=len(definitions.metrics.get(project, [])),
                                     where=definitions.project_sources.get(project, "--project"))
                    for project in projects}
        calls = client.calls
    health = judge(Inputs(definitions, observed, report, cfg.ownership_tag, int(runtime.clock() * 1000),
                          arguments.stale_days, calls))
    output = redact(views.HEALTH[arguments.format](health, color=runtime.color(arguments.no_color)), runtime.environ)
    if arguments.out:
        write_atomic(runtime.path(arguments.out), output)
        runtime.err(f"Health written to {arguments.out} ({len(health.flags)} findings, {calls} calls to "
                    "LaunchDarkly).")
    else:
        runtime.out(output)
    return 1 if arguments.strict and any(f.code in STRICT_CODES for f in health.flags) else 0
