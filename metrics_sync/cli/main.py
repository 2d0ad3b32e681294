"""Command-line switchboard: parse the arguments, dispatch to a command, map errors to exit codes.

Each command lives in `metrics_sync/cli/commands/` and owns its options, its typed arguments and its flow.
Ctrl-C and SIGTERM are handled here for every command (signals.py). Exit codes (as terraform): 0 ok / no
changes, 1 any error, 2 only from `plan --detailed-exitcode`, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, Any, NoReturn

from metrics_sync import __version__
from metrics_sync.cli import signals
from metrics_sync.cli.commands import apply, doctor, emulator, export, health, plan, refs, schema, show, validate
from metrics_sync.core.errors import MetricsSyncError, UsageError, redact
from metrics_sync.core.runtime import Runtime
from metrics_sync.output.escape import shown

COMMANDS: dict[str, ModuleType] = {
    "validate": validate, "plan": plan, "apply": apply, "show": show, "export": export, "refs": refs,
    "health": health, "doctor": doctor, "schema": schema, "emulator": emulator,
}
# The common options: accepted before or after the command, so they are parsed with SUPPRESS defaults
# (absent unless given) and filled in from here afterwards.
DEFAULTS = {"config": None, "no_color": False, "base_url": None, "timeout": 30.0, "max_wait": 300.0, "verbose": False}
API_OPTIONS = {"base_url": "--base-url", "timeout": "--timeout", "max_wait": "--max-wait", "verbose": "--verbose"}


class OptionParser(argparse.ArgumentParser):
    """An ArgumentParser that knows its options' names and its commands' parsers, for did-you-mean hints."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.option_names: list[str] = []  # before argparse adds --help
        self.commands: dict[str, OptionParser] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.option_names.extend(action.option_strings)
        return action


def _parser_class(runtime: Runtime) -> type[OptionParser]:
    class Parser(OptionParser):
        """Writes help and version to the runtime's streams; usage errors exit 1, since 2 means "changes"."""

        def error(self, message: str) -> NoReturn:
            hint = f"run `{self.prog} --help` for usage"
            wrong = re.search(r"invalid choice: '([^']*)'", message)
            if wrong and self.prog == "metrics-sync":
                guess = difflib.get_close_matches(wrong.group(1), list(COMMANDS), n=1, cutoff=0.5)
                if guess:
                    hint = f"did you mean `metrics-sync {guess[0]}`?"
            raise UsageError(f"{self.prog}: {message}", hint)

        def _print_message(self, message: str, file: IO[str] | Any = None) -> None:
            if message:
                (runtime.stderr if file is sys.stderr else runtime.stdout).write(message)

    return Parser


def _common_options(parser: argparse.ArgumentParser, *, calls_api: bool) -> None:
    s = argparse.SUPPRESS
    parser.add_argument("--config", metavar="FILE", default=s,
                        help="config file (default ./metrics-sync.yaml when present)")
    parser.add_argument("--no-color", action="store_true", default=s, help="no colours (also NO_COLOR)")
    if calls_api:
        parser.add_argument("--base-url", metavar="URL", default=s,
                            help="LaunchDarkly URL (env LD_BASE_URL; default https://app.launchdarkly.com; "
                                 "EU https://app.eu.launchdarkly.com, federal https://app.launchdarkly.us)")
        parser.add_argument("--timeout", type=float, metavar="SECONDS", default=s,
                            help="give up on a LaunchDarkly answer after this long (default 30; then retried "
                                 "once)")
        parser.add_argument("--max-wait", type=float, metavar="SECONDS", default=s,
                            help="wait at most this long in all for LaunchDarkly's rate limits and between retries "
                                 "(default 300), then stop with an error")
        parser.add_argument("-v", "--verbose", action="store_true", default=s,
                            help="log each API request to stderr (never the token)")


def build_parser(runtime: Runtime) -> OptionParser:
    parser_class = _parser_class(runtime)
    parser = parser_class(prog="metrics-sync", description="LaunchDarkly metrics as code: validate, plan, apply.",
                          epilog="--base-url, --timeout, --max-wait and -v apply to the commands that call "
                                 "LaunchDarkly.")
    parser.add_argument("--version", action="version", version=f"metrics-sync {__version__}")
    _common_options(parser, calls_api=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    for name, command in COMMANDS.items():
        if getattr(command, "OWN_OPTIONS", False):
            subparser = sub.add_parser(name, help=command.HELP, add_help=False, prefix_chars="\0")
        else:
            subparser = sub.add_parser(name, help=command.HELP, description=command.HELP)
            _common_options(subparser, calls_api=command.CALLS_API)
        command.configure(subparser)
        parser.commands[name] = subparser
    return parser


def _unknown_options(parser: OptionParser, command: str | None, extras: Sequence[str]) -> UsageError:
    """Arguments no option takes: the first unknown option close to a known one gets a did-you-mean, as a
    mistyped command does (`plan --formt json`: did you mean `--format`?)."""
    known = parser.commands.get(command or "", parser)
    hint = f"run `{known.prog} --help` for usage"
    for word in extras:
        name = word.split("=", 1)[0]
        if name.startswith("--"):
            guess = difflib.get_close_matches(name, [o for o in known.option_names if o.startswith("--")], n=1,
                                              cutoff=0.6)
            if guess:
                hint = f"did you mean `{guess[0]}`?"
                break
    return UsageError(f"{known.prog}: unrecognized arguments: {' '.join(extras)}", hint)


def parse(argv: Sequence[str], runtime: Runtime) -> argparse.Namespace:
    parser = build_parser(runtime)
    args, extras = parser.parse_known_args(list(argv))
    if extras:
        raise _unknown_options(parser, args.command, extras)
    if args.command is None:
        raise UsageError(f"a command is required ({', '.join(COMMANDS)})", "run `metrics-sync --help` for usage")
    if not COMMANDS[args.command].CALLS_API:
        own = getattr(COMMANDS[args.command], "OWN_COMMON_OPTIONS", ())  # the emulator's -v is its own
        given = [flag for dest, flag in API_OPTIONS.items() if hasattr(args, dest) and dest not in own]
        if given:
            raise UsageError(f"{given[0]} is only for commands that call LaunchDarkly (plan, apply, export, "
                             f"health, doctor), not `{args.command}`")
    for name, value in DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


def main(argv: Sequence[str] | None = None, runtime: Runtime | None = None) -> int:
    runtime = runtime or Runtime(stdout=sys.stdout, stderr=sys.stderr, stdin=sys.stdin, environ=os.environ,
                                 cwd=Path.cwd())
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            namespace = parse(words, runtime)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0)
        command = COMMANDS[namespace.command]
        # The namespace stops here: the command reads it into its own typed arguments, in one place.
        arguments = command.arguments(namespace)
        own = getattr(command, "OWN_SIGNALS", False)  # the emulator: a server that Ctrl-C stops
        with contextlib.nullcontext() if own else signals.interrupts(runtime):
            code: int = command.run(arguments, runtime)
        return code
    except MetricsSyncError as exc:  # Cancelled among them: its one line, exit 130
        runtime.err(f"error: {shown(redact(str(exc), runtime.environ))}")
        return exc.exit_code
    except KeyboardInterrupt:  # where no handler of ours was installed (not the main thread)
        runtime.err("interrupted")
        return signals.EXIT_CODE
    except Exception as exc:  # a bug: one line and a crash report, never a traceback on the terminal
        if runtime.environ.get("METRICS_SYNC_DEBUG") or isinstance(exc, ImportError):  # launch.py: install problem
            raise
        from metrics_sync.cli import crash
        message = shown(redact(f"{type(exc).__name__}: {exc}", runtime.environ))[:300]
        report = crash.write_report(exc, words, runtime.environ)
        where = f"a crash report is in {report}; " if report else ""
        runtime.err(f"internal error: {message}\n{where}please report this at {crash.ISSUES_URL}"
                    f"{' and attach the report' if report else ' with the command you ran'} (it holds no token)")
        return 1
