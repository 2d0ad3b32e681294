"""`metrics-sync schema`: print the definitions' JSON Schema (for editors), or where it is installed."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from metrics_sync.cli.commands import common
from metrics_sync.core.runtime import Runtime

HELP = "print the definitions' JSON Schema (for editors), or its path"
CALLS_API = False


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", action="store_true", help="print where the installed schema file is instead")


@dataclass(frozen=True, kw_only=True)
class SchemaArguments(common.CommonArguments):
    path: bool  # where the schema file is, not its text


def arguments(namespace: argparse.Namespace) -> SchemaArguments:
    return SchemaArguments(**common.common_options(namespace), path=namespace.path)


def run(arguments: SchemaArguments, runtime: Runtime) -> int:
    from metrics_sync.definitions.schema import schema_path

    path = schema_path()
    runtime.out(f"{path}\n" if arguments.path else path.read_text(encoding="utf-8"))
    return 0
