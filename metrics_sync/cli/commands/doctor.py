"""`metrics-sync doctor`: check metrics-sync's assumptions about LaunchDarkly on a real account."""

from __future__ import annotations

import argparse
import json

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


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    from metrics_sync.core.files import write_atomic
    from metrics_sync.doctor.checks import examine
    from metrics_sync.output.doctor import table

    cfg = common.config(args, runtime)
    with common.client(args, runtime, cfg) as client:
        report = examine(client, args.project, write=args.write)
    runtime.out(table(report))
    write_atomic(runtime.path(args.report), json.dumps(report.as_json(), indent=2, allow_nan=False) + "\n")
    runtime.err(f"Report written to {args.report} (it holds no access token).")
    return 0 if report.ok else 1
