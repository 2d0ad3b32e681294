"""`metrics-sync emulator`: run the local LaunchDarkly metrics API (it parses its own options)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from metrics_sync.core.errors import UsageError
from metrics_sync.core.runtime import Runtime

HELP = "run a local LaunchDarkly metrics API (see `metrics-sync emulator --help`)"
CALLS_API = False
OWN_OPTIONS = True  # everything after `emulator` goes to the emulator's own parser
OWN_SIGNALS = True  # a server: the first Ctrl-C or SIGTERM stops it cleanly (it handles them itself)
OWN_COMMON_OPTIONS = ("verbose",)  # `metrics-sync -v emulator`: the emulator logs each request it serves


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER)


@dataclass(frozen=True)
class EmulatorArguments:
    rest: tuple[str, ...]  # the emulator's own options, parsed by it


# The common options of the commands that call LaunchDarkly; the emulator calls nothing (its own -v/--verbose logs
# the requests it serves).
NOT_HERE = ("--base-url", "--timeout", "--max-wait")


def arguments(namespace: argparse.Namespace) -> EmulatorArguments:
    for word in namespace.rest:
        if word == "--":
            break
        option = word.split("=", 1)[0]
        if option in NOT_HERE:
            raise UsageError(f"{option} is only for commands that call LaunchDarkly (plan, apply, export, health, "
                             "doctor), not `emulator`",
                             "the emulator listens at --host and --port; give the other commands its address with "
                             "--base-url")
    verbose = ("--verbose",) if namespace.verbose else ()  # given before `emulator`
    return EmulatorArguments(rest=(*verbose, *namespace.rest))


def run(arguments: EmulatorArguments, runtime: Runtime) -> int:
    # The emulator imports nothing from the rest of the package, so it stays faithful to LaunchDarkly.
    from metrics_sync.emulator.server import main as emulator_main

    return emulator_main(list(arguments.rest), stdout=runtime.stdout, stderr=runtime.stderr)
