"""`metrics-sync export`: write definition files for the metrics already in LaunchDarkly."""

from __future__ import annotations

import argparse

from metrics_sync import __version__
from metrics_sync.cli.commands import common
from metrics_sync.core.runtime import Runtime

HELP = "write definitions for the metrics and metric groups already in LaunchDarkly"
CALLS_API = True
SCHEMA_COPY = "metrics.schema.json"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", metavar="KEY", required=True, help="the LaunchDarkly project to export")
    parser.add_argument("--out", metavar="DIR", default="metrics",
                        help="folder to write (default ./metrics); - for stdout")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="only metrics with this tag (repeatable: all of them)")
    parser.add_argument("--prefix", default="", metavar="PREFIX", help="only metrics whose key starts with PREFIX")
    parser.add_argument("--single-file", action="store_true", help="one file for the project, not one per tag")
    parser.add_argument("--include-archived", action="store_true", help="also export archived metrics")
    parser.add_argument("--adopt", action="store_true",
                        help="let the next apply add the ownership tag (hand the metrics to metrics-sync)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--schema-ref", metavar="REF",
                        help="schema path or URL for the editor modeline (default: a copy written next to the files)")


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    from metrics_sync.core.errors import ApiError
    from metrics_sync.core.files import write_files
    from metrics_sync.core.resources import METRIC, METRIC_GROUP
    from metrics_sync.definitions.schema import schema_path
    from metrics_sync.export.exporter import ExportOptions, export, summary
    from metrics_sync.output.escape import lines_shown, shown

    cfg = common.config(args, runtime)
    to_stdout = args.out == "-"
    options = ExportOptions(project=args.project, ownership_tag=cfg.ownership_tag,
                            single_file=args.single_file or to_stdout, include_archived=args.include_archived,
                            adopt=args.adopt, tags=tuple(args.tag), prefix=args.prefix,
                            # A reference that stays valid: the copy written next to the files (for stdout, the
                            # summary says how to write one), never this installation's own path.
                            schema_ref=args.schema_ref or SCHEMA_COPY,
                            tool_version=__version__)
    with common.client(args, runtime, cfg) as client:
        metrics = client.list_items(METRIC, args.project, tags=options.tags)
        try:
            groups = client.list_items(METRIC_GROUP, args.project)
        except ApiError as exc:
            if exc.status not in (401, 403, 404):
                raise
            groups = []
            runtime.err(shown(f"warning: metric groups were not exported ({exc.status}: {exc.api_message})"))
        result = export(metrics, options, groups)
    if to_stdout:
        runtime.out("".join(result.files.values()))
        runtime.err(lines_shown(summary(result, args.project, args.out, None, adopted=args.adopt)))
        if result.files and not args.schema_ref:
            runtime.err(f"The modeline points at {SCHEMA_COPY} beside the file: write it with "
                        f"`metrics-sync schema > {SCHEMA_COPY}`, or pass --schema-ref.")
        return 0
    files = dict(result.files)
    if result.files and not args.schema_ref:
        files[SCHEMA_COPY] = schema_path().read_text(encoding="utf-8")
    written = write_files(runtime.path(args.out), files, force=args.force)
    runtime.out(lines_shown(summary(result, args.project, args.out, written, adopted=args.adopt)))
    return 0
