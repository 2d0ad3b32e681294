"""Command-line switchboard: parse arguments, read the environment once, wire modules, map errors to exits.

No diffing, HTTP or formatting logic lives here. Heavy modules (httpx, jsonschema, deepdiff) are
imported inside the commands that need them so `metrics-sync --version` stays instant.
Exit codes (as terraform): 0 ok / no changes, 1 any error, 2 only from `plan --detailed-exitcode`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from metrics_sync import __version__
from metrics_sync.errors import MetricsSyncError, UsageError, redact

if TYPE_CHECKING:
    from metrics_sync.client import Client
    from metrics_sync.config import Config
    from metrics_sync.model import Definitions, Plan


@dataclass
class Streams:
    """The process's side effects, passed in so tests run the CLI in-process."""

    stdout: IO[str]
    stderr: IO[str]
    stdin: IO[str]
    environ: Mapping[str, str]
    cwd: Path = field(default_factory=Path.cwd)
    transport: Any = None  # an httpx transport for tests (e.g. WSGITransport to an in-process emulator)
    sleep: Callable[[float], None] = time.sleep  # retry and rate-limit waits; tests pass a no-op
    clock: Callable[[], float] = time.time  # for rate-limit windows; tests pass the emulator's fake clock

    def out(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def err(self, text: str) -> None:
        self.stderr.write(text if text.endswith("\n") else text + "\n")
        self.stderr.flush()


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; 2 means "changes" here, so raise and exit 1 instead."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", f"run `{self.prog} --help` for usage")


def _common(parser: argparse.ArgumentParser, *, api: bool = False, project: bool = True) -> None:
    parser.add_argument("--config", metavar="FILE", help="config file (default ./metrics-sync.yaml when present)")
    parser.add_argument("--no-color", action="store_true", help="no colours (also NO_COLOR)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each API request to stderr")
    if project:
        parser.add_argument("--project", metavar="KEY", help="project for files that do not name one")
    if api:
        parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                            help="give up on a LaunchDarkly answer after this long (default 30; then retried)")
        parser.add_argument("--base-url", metavar="URL",
                            help="LaunchDarkly URL (env LD_BASE_URL; default https://app.launchdarkly.com; "
                                 "EU https://app.eu.launchdarkly.com, federal https://app.launchdarkly.us)")


def _paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or folders (default: config paths or ./metrics)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="metrics-sync", description="LaunchDarkly metrics as code: validate, plan, apply.")
    parser.add_argument("--version", action="version", version=f"metrics-sync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    validate = sub.add_parser("validate", help="check definitions offline against the schema and rules")
    _paths_argument(validate)
    validate.add_argument("--format", choices=["text", "json", "github"], default="text")
    _common(validate)
    validate.set_defaults(handler=_cmd_validate)

    plan = sub.add_parser("plan", help="show what apply would change in LaunchDarkly")
    _paths_argument(plan)
    plan.add_argument("--out", metavar="PLANFILE", help="save the plan for `apply --plan`")
    plan.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    plan.add_argument("--detailed-exitcode", action="store_true",
                      help="exit 2 when there are changes (0 none, 1 error)")
    plan.add_argument("--prune", action="store_true", help="archive managed metrics that left the definitions")
    _common(plan, api=True)
    plan.set_defaults(handler=_cmd_plan)

    apply = sub.add_parser("apply", help="make LaunchDarkly match the definitions")
    _paths_argument(apply)
    apply.add_argument("--plan", metavar="PLANFILE", help="apply a saved plan (refused when stale)")
    apply.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--prune", action="store_true", help="archive managed metrics that left the definitions")
    apply.add_argument("--parallelism", type=int, default=4, metavar="N", help="concurrent API writes (default 4)")
    apply.add_argument("--format", choices=["text", "json"], default="text")
    _common(apply, api=True)
    apply.set_defaults(handler=_cmd_apply)

    export = sub.add_parser("export", help="write definitions for the metrics already in LaunchDarkly")
    export.add_argument("--project", metavar="KEY", required=True, help="the LaunchDarkly project to export")
    export.add_argument("--out", metavar="DIR", default="metrics",
                        help="folder to write (default ./metrics); - for stdout")
    export.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="only metrics with this tag (repeatable: all of them)")
    export.add_argument("--prefix", default="", metavar="PREFIX", help="only metrics whose key starts with PREFIX")
    export.add_argument("--single-file", action="store_true", help="one file for the project, not one per tag")
    export.add_argument("--include-archived", action="store_true", help="also export archived metrics")
    export.add_argument("--adopt", action="store_true",
                        help="let the next apply add the ownership tag (hand the metrics to metrics-sync)")
    export.add_argument("--force", action="store_true", help="overwrite existing files")
    export.add_argument("--schema-ref", metavar="REF",
                        help="schema path or URL for the editor modeline (default: a copy written next to the files)")
    _common(export, api=True, project=False)
    export.set_defaults(handler=_cmd_export)

    schema = sub.add_parser("schema", help="print the definitions' JSON Schema (for editors), or its path")
    schema.add_argument("--path", action="store_true", help="print where the installed schema file is instead")
    schema.set_defaults(handler=_cmd_schema)

    emulator = sub.add_parser("emulator", add_help=False, prefix_chars="\0",
                              help="run a local LaunchDarkly metrics API (see `metrics-sync emulator --help`)")
    emulator.add_argument("rest", nargs=argparse.REMAINDER)
    emulator.set_defaults(handler=_cmd_emulator)
    return parser


def _color(args: argparse.Namespace, streams: Streams) -> bool:
    return not args.no_color and "NO_COLOR" not in streams.environ and streams.stdout.isatty()


def _definitions(args: argparse.Namespace, streams: Streams, config: Config) -> Definitions:
    """Load and check the definitions; print warnings; refuse (exit 1) on any error, before any API call."""
    from metrics_sync.config import DEFAULT_PATHS
    from metrics_sync.errors import DefinitionsError
    from metrics_sync.report import problem_line
    from metrics_sync.validate import load_definitions

    paths = args.paths or list(config.paths) or list(DEFAULT_PATHS)
    definitions, problems = load_definitions(paths, default_project=args.project or config.project,
                                             max_file_bytes=config.max_file_bytes, base=streams.cwd)
    for problem in problems:
        streams.err(problem_line(problem))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DefinitionsError(errors)
    return definitions


def _client(args: argparse.Namespace, streams: Streams, config: Config) -> Client:
    from metrics_sync.client import DEFAULT_BASE_URL, Client

    token = streams.environ.get("LD_ACCESS_TOKEN") or streams.environ.get("LAUNCHDARKLY_ACCESS_TOKEN") or ""
    base_url = args.base_url or streams.environ.get("LD_BASE_URL") or config.base_url or DEFAULT_BASE_URL
    log = (lambda line: streams.err(f"[api] {line}")) if args.verbose else None
    if not 0 < args.timeout <= 600:
        raise UsageError("--timeout must be between 0 and 600 seconds")
    return Client(base_url, token, transport=streams.transport, log=log, sleep=streams.sleep, clock=streams.clock,
                  timeout=args.timeout)


def _make_plan(args: argparse.Namespace, streams: Streams, config: Config, client: Client,
               definitions: Definitions) -> Plan:
    from urllib.parse import urlsplit

    from metrics_sync.memory import gc_paused
    from metrics_sync.normalize import PLANNED_REMOTE_FIELDS
    from metrics_sync.planner import PlanOptions, plan

    with gc_paused():
        remote = {project: client.list_metrics(project, only=PLANNED_REMOTE_FIELDS)
                  for project in sorted(definitions.metrics)}
        options = PlanOptions(ownership_tag=config.ownership_tag, prune=args.prune,
                              base_url_host=urlsplit(client.base_url).netloc, tool_version=__version__)
        return plan(definitions.metrics, remote, options)


def _cmd_plan(args: argparse.Namespace, streams: Streams) -> int:
    from metrics_sync import planfile, render
    from metrics_sync.config import load_config

    config = load_config(args.config, streams.cwd)
    definitions = _definitions(args, streams, config)
    with _client(args, streams, config) as client:
        the_plan = _make_plan(args, streams, config, client, definitions)
    if args.format == "json":
        streams.out(render.plan_json(the_plan))
    elif args.format == "markdown":
        streams.out(render.plan_markdown(the_plan))
    else:
        streams.out(render.plan_text(the_plan, color=_color(args, streams)))
    if the_plan.refused:
        return 1
    if args.out:
        planfile.write(streams.cwd / args.out, the_plan)
        streams.err(f"Saved the plan to {args.out}; apply it with: metrics-sync apply --plan {args.out}")
    return 2 if args.detailed_exitcode and the_plan.has_changes else 0


def _saved_plan(args: argparse.Namespace, streams: Streams, config: Config, client: Client) -> Plan:
    """Load a saved plan and refuse it when it no longer matches LaunchDarkly or the definitions."""
    from urllib.parse import urlsplit

    from metrics_sync import planfile
    from metrics_sync.apply import check_stale
    from metrics_sync.errors import PlanError
    from metrics_sync.planner import definitions_hashes

    saved = planfile.read(streams.cwd / args.plan)
    if saved.refused:
        raise PlanError("the saved plan contains changes LaunchDarkly cannot make; fix the definitions and plan again")
    host = urlsplit(client.base_url).netloc
    if saved.base_url_host != host:
        raise PlanError(f"the plan was made against {saved.base_url_host}, not {host}", "run plan again")
    if args.paths:
        hashes = definitions_hashes(_definitions(args, streams, config).metrics, saved.ownership_tag)
        for project_plan in saved.projects:
            if hashes.get(project_plan.project) != project_plan.definitions_hash:
                raise PlanError(f"the definitions of project {project_plan.project} changed since the plan",
                                "run plan again")
    remote = {p.project: client.list_metrics(p.project) for p in saved.projects if p.changes}
    stale = check_stale(saved, remote)
    if stale:
        more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
        raise PlanError(f"plan is stale: {stale[0]}{more}; run plan again")
    return saved


def _confirm(streams: Streams, count: int) -> bool:
    streams.stderr.write(f"Apply these {count} change{'s' if count != 1 else ''}? [y/N] ")
    streams.stderr.flush()
    answer = streams.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _cmd_apply(args: argparse.Namespace, streams: Streams) -> int:
    from metrics_sync import render
    from metrics_sync.apply import apply_plan
    from metrics_sync.config import load_config
    from metrics_sync.memory import settle
    from metrics_sync.model import ApplyResult

    if not 1 <= args.parallelism <= 64:
        raise UsageError("--parallelism must be between 1 and 64")
    if args.plan and args.prune:
        raise UsageError("--prune cannot be used with --plan: the saved plan already says what to archive")
    config = load_config(args.config, streams.cwd)
    color = _color(args, streams)
    with _client(args, streams, config) as client:
        if args.plan:
            the_plan = _saved_plan(args, streams, config, client)
        else:
            definitions = _definitions(args, streams, config)
            the_plan = _make_plan(args, streams, config, client, definitions)
            if args.format == "text":
                streams.out(render.plan_text(the_plan, color=color))
            if the_plan.refused:
                return 1
            if the_plan.has_changes and not args.auto_approve:
                if not streams.stdin.isatty():
                    raise UsageError("refusing to apply without confirmation: stdin is not a terminal",
                                     "review the plan, then pass --auto-approve (or apply a saved plan with --plan)")
                if not _confirm(streams, len(the_plan.changes)):
                    streams.err("Apply cancelled; nothing was changed.")
                    return 1
        if not the_plan.has_changes:
            if args.format == "json":
                streams.out(render.result_json(ApplyResult([])))
            elif args.plan:
                streams.out("No changes. The saved plan has nothing to apply.\n")
            return 0
        show_progress = streams.stderr.isatty() and len(the_plan.changes) > 1

        def progress(done: int, total: int) -> None:
            if show_progress:
                streams.stderr.write(f"\r  applying: {done}/{total} changes done")
                if done == total:
                    streams.stderr.write("\n")
                streams.stderr.flush()

        settle()
        stop = threading.Event()
        with _graceful_interrupt(stop, streams):
            result = apply_plan(the_plan, client, parallelism=args.parallelism, progress=progress, stop=stop)
        if args.format == "text" and not args.plan:
            streams.out("\n")
    if args.format == "json":
        streams.out(render.result_json(result))
    else:
        streams.out(render.result_text(result, color=color))
    if result.interrupted:
        return 130
    return 1 if result.failed else 0


@contextmanager
def _graceful_interrupt(stop: threading.Event, streams: Streams) -> Iterator[None]:
    """During apply, the first Ctrl-C (or SIGTERM, as CI sends on cancel) stops new changes and lets those in
    flight finish, so the summary is exact; a second one aborts at once (like a kill, re-running apply
    converges)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        streams.err("\nInterrupted: finishing the changes in flight and starting no new ones "
                    "(interrupt again to abort at once).")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _cmd_export(args: argparse.Namespace, streams: Streams) -> int:
    from metrics_sync.config import load_config
    from metrics_sync.export import ExportOptions, export, summary
    from metrics_sync.files import write_files
    from metrics_sync.schema import schema_path

    config = load_config(args.config, streams.cwd)
    to_stdout = args.out == "-"
    options = ExportOptions(project=args.project, ownership_tag=config.ownership_tag,
                            single_file=args.single_file or to_stdout, include_archived=args.include_archived,
                            adopt=args.adopt, tags=tuple(args.tag), prefix=args.prefix,
                            schema_ref=args.schema_ref or (str(schema_path()) if to_stdout else "metrics.schema.json"),
                            tool_version=__version__)
    with _client(args, streams, config) as client:
        result = export(client.list_metrics(args.project, tags=options.tags), options)
    if to_stdout:
        streams.out("".join(result.files.values()))
        streams.err(summary(result, args.project, args.out, None))
        return 0
    files = dict(result.files)
    if result.files and not args.schema_ref:
        files["metrics.schema.json"] = schema_path().read_text(encoding="utf-8")
    written = write_files(streams.cwd / args.out, files, force=args.force)
    streams.out(summary(result, args.project, args.out, written))
    return 0


def _cmd_schema(args: argparse.Namespace, streams: Streams) -> int:
    from metrics_sync.schema import schema_path

    path = schema_path()
    streams.out(f"{path}\n" if args.path else path.read_text(encoding="utf-8"))
    return 0


def _cmd_emulator(args: argparse.Namespace, streams: Streams) -> int:
    # The emulator parses its own options: it imports nothing from the rest of the package.
    from metrics_sync.emulator.server import main as emulator_main

    return emulator_main(args.rest, stdout=streams.stdout, stderr=streams.stderr)


def _cmd_validate(args: argparse.Namespace, streams: Streams) -> int:
    from metrics_sync.config import DEFAULT_PATHS, load_config
    from metrics_sync.report import RENDERERS
    from metrics_sync.validate import load_definitions

    config = load_config(args.config, streams.cwd)
    paths = args.paths or list(config.paths) or list(DEFAULT_PATHS)
    definitions, problems = load_definitions(
        paths, default_project=args.project or config.project, max_file_bytes=config.max_file_bytes,
        base=streams.cwd,
    )
    streams.out(RENDERERS[args.format](problems, definitions))
    return 1 if any(p.severity == "error" for p in problems) else 0


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    stdin: IO[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    transport: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> int:
    streams = Streams(
        stdout=stdout or sys.stdout,
        stderr=stderr or sys.stderr,
        stdin=stdin or sys.stdin,
        environ=os.environ if environ is None else environ,
        cwd=cwd or Path.cwd(),
        transport=transport,
        sleep=sleep,
        clock=clock,
    )
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        except SystemExit as exc:  # --help / --version
            return int(exc.code or 0)
        handler: Callable[[argparse.Namespace, Streams], int] | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_usage(streams.stderr)
            streams.err("metrics-sync: error: a command is required (validate, plan, apply, export, emulator)")
            return 1
        return handler(args, streams)
    except MetricsSyncError as exc:
        streams.err(f"error: {redact(str(exc), streams.environ)}")
        return exc.exit_code
    except KeyboardInterrupt:
        streams.err("interrupted")
        return 130
    except Exception as exc:  # a bug: a one-line report, never a traceback (METRICS_SYNC_DEBUG=1 re-raises)
        if streams.environ.get("METRICS_SYNC_DEBUG"):
            raise
        message = redact(f"{type(exc).__name__}: {exc}", streams.environ)
        streams.err(f"internal error: {message}; please report this with the command you ran")
        return 1
