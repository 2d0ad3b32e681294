"""`metrics-sync doctor`: check metrics-sync's assumptions about LaunchDarkly on a real account."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from metrics_sync.cli.commands import common
from metrics_sync.core.runtime import Runtime

HELP = "check metrics-sync's assumptions about LaunchDarkly on your account (read-only unless --write)"
CALLS_API = True
DEFAULT_REPORT = "metrics-sync-doctor.json"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", metavar="KEY", required=True, help="the LaunchDarkly project to check")
    parser.add_argument("--write", action="store_true",
                        help="also create one throw-away metric (metrics-sync-doctor-<random>) to observe how "
                             "LaunchDarkly treats writes; it is archived (and deleted when allowed) afterwards")
    parser.add_argument("--report", metavar="FILE", default=DEFAULT_REPORT,
                        help=f"where to write the JSON report for a bug report (default {DEFAULT_REPORT}); "
                             "it holds no token")


@dataclass(frozen=True, kw_only=True)
class DoctorArguments(common.ApiArguments):
    project: str
    write: bool  # also create (and then remove) one throw-away metric
    report: str


def arguments(namespace: argparse.Namespace) -> DoctorArguments:
    return DoctorArguments(**common.api_options(namespace), project=namespace.project, write=namespace.write,
                           report=namespace.report)


def run(arguments: DoctorArguments, runtime: Runtime) -> int:
    from metrics_sync.core.files import write_atomic
    from metrics_sync.doctor.checks import examine
    from metrics_sync.output.doctor import table

    cfg = common.config(runtime, arguments.config)
    with common.client(runtime, cfg, arguments) as client:
        report = examine(client, arguments.project, write=arguments.write)
    runtime.out(table(report))
    write_atomic(runtime.path(arguments.report), json.dumps(report.as_json(), indent=2, allow_nan=False) + "\n")
    runtime.err(f"Report written to {arguments.report} (it holds no access token).")
    return 0 if report.ok else 1
