"""`metrics-sync export`: write definition files for the metrics already in LaunchDarkly."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

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


@dataclass(frozen=True, kw_only=True)
class ExportArguments(common.ApiArguments):
    project: str
    out: str  # a folder, or "-" for stdout
    tags: tuple[str, ...]
    prefix: str
    single_file: bool
    include_archived: bool
    adopt: bool
    force: bool
    schema_ref: str | None


def arguments(namespace: argparse.Namespace) -> ExportArguments:
    return ExportArguments(**common.api_options(namespace), project=namespace.project, out=namespace.out,
                           tags=tuple(namespace.tag), prefix=namespace.prefix, single_file=namespace.single_file,
                           include_archived=namespace.include_archived, adopt=namespace.adopt, force=namespace.force,
                           schema_ref=_schema_ref(namespace.schema_ref))


def _schema_ref(ref: str | None) -> str | None:
    """--schema-ref goes into a comment line of every exported file: one line of printable text."""
    if ref is not None and (not ref.strip() or not ref.isprintable()):
        from metrics_sync.core.errors import UsageError

        raise UsageError("--schema-ref must be a path or URL on one line, without control characters",
                         "give e.g. --schema-ref ./metrics.schema.json")
    return ref


def run(arguments: ExportArguments, runtime: Runtime) -> int:
    from metrics_sync.core.errors import ApiError
    from metrics_sync.core.files import write_files
    from metrics_sync.core.resources import METRIC, METRIC_GROUP
    from metrics_sync.definitions.schema import schema_path
    from metrics_sync.export.exporter import ExportOptions, export, summary
    from metrics_sync.output.escape import lines_shown, shown

    cfg = common.config(runtime, arguments.config)
    to_stdout = arguments.out == "-"
    options = ExportOptions(project=arguments.project, ownership_tag=cfg.ownership_tag,
                            single_file=arguments.single_file or to_stdout,
                            include_archived=arguments.include_archived, adopt=arguments.adopt,
                            tags=arguments.tags, prefix=arguments.prefix,
                            # A reference that stays valid: the copy written next to the files (for stdout, the
                            # summary says how to write one), never this installation's own path.
                            schema_ref=arguments.schema_ref or SCHEMA_COPY,
                            tool_version=__version__)
    with common.client(runtime, cfg, arguments) as client:
        metrics = client.list_items(METRIC, arguments.project, tags=options.tags)
        try:
            groups = client.list_items(METRIC_GROUP, arguments.project)
        except ApiError as exc:
            if exc.status not in (401, 403, 404):
                raise
            groups = []
            runtime.err(shown(f"warning: metric groups were not exported ({exc.status}: {exc.api_message})"))
        result = export(metrics, options, groups)
    runtime.cancel.check("exporting")  # after Ctrl-C nothing new starts: no file is written
    if to_stdout:
        runtime.out("".join(result.files.values()))
        runtime.err(lines_shown(summary(result, arguments.project, arguments.out, None, adopted=arguments.adopt)))
        if result.files and not arguments.schema_ref:
            runtime.err(f"The modeline points at {SCHEMA_COPY} beside the file: write it with "
                        f"`metrics-sync schema > {SCHEMA_COPY}`, or pass --schema-ref.")
        return 0
    files = dict(result.files)
    if result.files and not arguments.schema_ref:
        files[SCHEMA_COPY] = schema_path().read_text(encoding="utf-8")
    written = write_files(runtime.path(arguments.out), files, force=arguments.force)
    runtime.out(lines_shown(summary(result, arguments.project, arguments.out, written, adopted=arguments.adopt)))
    return 0
