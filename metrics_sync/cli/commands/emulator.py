"""`metrics-sync emulator`: run the local LaunchDarkly metrics API (it parses its own options)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from metrics_sync.core.runtime import Runtime

HELP = "run a local LaunchDarkly metrics API (see `metrics-sync emulator --help`)"
CALLS_API = False
OWN_OPTIONS = True  # everything after `emulator` goes to the emulator's own parser
OWN_SIGNALS = True  # a server: the first Ctrl-C or SIGTERM stops it cleanly (it handles them itself)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER)


@dataclass(frozen=True)
class EmulatorArguments:
    rest: tuple[str, ...]  # the emulator's own options, parsed by it


def arguments(namespace: argparse.Namespace) -> EmulatorArguments:
    return EmulatorArguments(rest=tuple(namespace.rest))


def run(arguments: EmulatorArguments, runtime: Runtime) -> int:
    # The emulator imports nothing from the rest of the package, so it stays faithful to LaunchDarkly.
    from metrics_sync.emulator.server import main as emulator_main

    return emulator_main(list(arguments.rest), stdout=runtime.stdout, stderr=runtime.stderr)
