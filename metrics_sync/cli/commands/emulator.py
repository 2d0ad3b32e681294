"""`metrics-sync emulator`: run the local LaunchDarkly metrics API (it parses its own options)."""

from __future__ import annotations

import argparse

from metrics_sync.core.runtime import Runtime

HELP = "run a local LaunchDarkly metrics API (see `metrics-sync emulator --help`)"
CALLS_API = False
OWN_OPTIONS = True  # everything after `emulator` goes to the emulator's own parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER)


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    # The emulator imports nothing from the rest of the package, so it stays faithful to LaunchDarkly.
    from metrics_sync.emulator.server import main as emulator_main

    return emulator_main(args.rest, stdout=runtime.stdout, stderr=runtime.stderr)
