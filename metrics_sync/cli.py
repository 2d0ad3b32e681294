"""Command-line switchboard: parse arguments, read the environment once, wire modules, map errors to exits.

No diffing, HTTP or formatting logic lives here. Heavy modules (httpx, jsonschema, deepdiff) are
imported inside the commands that need them so `metrics-sync --version` stays instant.
Exit codes (as terraform): 0 ok / no changes, 1 any error, 2 only from `plan --detailed-exitcode`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

from metrics_sync import __version__
from metrics_sync.errors import MetricsSyncError, UsageError, redact


@dataclass
class Streams:
    """The process's side effects, passed in so tests run the CLI in-process."""

    stdout: IO[str]
    stderr: IO[str]
    stdin: IO[str]
    environ: Mapping[str, str]
    cwd: Path = field(default_factory=Path.cwd)

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


def _common(parser: argparse.ArgumentParser, *, project: bool = True) -> None:
    parser.add_argument("--config", metavar="FILE", help="config file (default ./metrics-sync.yaml when present)")
    parser.add_argument("--no-color", action="store_true", help="no colours (also NO_COLOR)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each API request to stderr")
    if project:
        parser.add_argument("--project", metavar="KEY", help="project for files that do not name one")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="metrics-sync", description="LaunchDarkly metrics as code: validate, plan, apply.")
    parser.add_argument("--version", action="version", version=f"metrics-sync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    validate = sub.add_parser("validate", help="check definitions offline against the schema and rules")
    validate.add_argument("paths", nargs="*", metavar="PATH",
                          help="files or folders (default: config paths or ./metrics)")
    validate.add_argument("--format", choices=["text", "json", "github"], default="text")
    _common(validate)
    validate.set_defaults(handler=_cmd_validate)

    emulator = sub.add_parser("emulator", add_help=False, prefix_chars="\0",
                              help="run a local LaunchDarkly metrics API (see `metrics-sync emulator --help`)")
    emulator.add_argument("rest", nargs=argparse.REMAINDER)
    emulator.set_defaults(handler=_cmd_emulator)
    return parser


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
) -> int:
    streams = Streams(
        stdout=stdout or sys.stdout,
        stderr=stderr or sys.stderr,
        stdin=stdin or sys.stdin,
        environ=os.environ if environ is None else environ,
        cwd=cwd or Path.cwd(),
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
