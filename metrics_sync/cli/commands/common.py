"""What several commands share: the config, the definitions and the LaunchDarkly client, each read once."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from metrics_sync.core.errors import TOKEN_VARIABLES, DefinitionsError, UsageError, redact
from metrics_sync.core.runtime import Runtime
from metrics_sync.output.escape import shown

if TYPE_CHECKING:
    from metrics_sync.coderefs.report import Report
    from metrics_sync.core.model import Definitions, Problem
    from metrics_sync.definitions.config import Config
    from metrics_sync.launchdarkly.client import Client

MAX_TIMEOUT = 600.0


def add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="definition files or folders (default: the config's paths, else ./metrics)")


def add_project(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", metavar="KEY", help="project for files that do not name one")


def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", action="append", default=[], metavar="KEY",
                        help="only these metrics: a key, `project/key`, or a glob such as 'checkout-*' "
                             "(repeatable); --prune then archives only among them")


def add_protect_running(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protect-running", action="store_true",
                        help="refuse changes that change the results of running experiments (as the config's "
                             "protectRunningExperiments: true)")


def check_prune_scope(args: argparse.Namespace, runtime: Runtime, cfg: Config) -> None:
    """--prune archives managed metrics missing from the definitions, so it needs all of them: PATHs that
    leave out some of the definitions files (of the config's paths, or ./metrics) would archive the
    metrics of the files left out. --target is the way to limit it."""
    if not args.prune or not args.paths:
        return
    from metrics_sync.definitions.config import DEFAULT_PATHS
    from metrics_sync.definitions.yaml_reader import find_definition_files

    whole = list(cfg.paths) or list(DEFAULT_PATHS)
    everything, _ = find_definition_files(whole, runtime.cwd)
    given = {str(path.resolve()) for path, _ in find_definition_files(args.paths, runtime.cwd)[0]}
    left_out = [shown for path, shown in everything if str(path.resolve()) not in given]
    if left_out:
        more = f" and {len(left_out) - 3} more" if len(left_out) > 3 else ""
        raise UsageError(f"--prune with these PATHs would archive the metrics of the definition files left out "
                         f"({', '.join(left_out[:3])}{more})",
                         "run it on all the definitions (no PATHs), or limit it with --target")


def config(args: argparse.Namespace, runtime: Runtime) -> Config:
    from metrics_sync.definitions.config import load_config

    return load_config(args.config, runtime.cwd)


def read_definitions(args: argparse.Namespace, runtime: Runtime, cfg: Config) -> tuple[Definitions, list[Problem]]:
    """Every definition and every problem under the PATHs (else the config's paths, else ./metrics)."""
    from metrics_sync.definitions.config import DEFAULT_PATHS
    from metrics_sync.definitions.load import load_definitions

    paths = args.paths or list(cfg.paths) or list(DEFAULT_PATHS)
    flag = getattr(args, "project", None)
    source = "--project" if flag else cfg.project_source or "the config"
    return load_definitions(paths, default_project=flag or cfg.project, max_file_bytes=cfg.max_file_bytes,
                            base=runtime.cwd, parallel=None, default_project_source=source,
                            paths_source=None if args.paths else cfg.paths_source)


def checked_definitions(args: argparse.Namespace, runtime: Runtime, cfg: Config) -> Definitions:
    """The definitions, for commands that act on them: warnings are printed, and any error stops the run
    (exit 1) before a single API call."""
    from metrics_sync.output.problems import problem_line

    definitions, problems = read_definitions(args, runtime, cfg)
    for problem in problems:
        runtime.err(redact(problem_line(problem), runtime.environ))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DefinitionsError(errors)
    return definitions


def client(args: argparse.Namespace, runtime: Runtime, cfg: Config) -> Client:
    from metrics_sync.launchdarkly.client import DEFAULT_BASE_URL, Client

    if not 0 < args.timeout <= MAX_TIMEOUT:
        raise UsageError(f"--timeout must be between 0 and {MAX_TIMEOUT:.0f} seconds")
    token = next((runtime.environ[name] for name in TOKEN_VARIABLES if runtime.environ.get(name)), "")
    base_url = args.base_url or runtime.environ.get("LD_BASE_URL") or cfg.base_url or DEFAULT_BASE_URL
    log = (lambda line: runtime.err(f"[api] {shown(line)}")) if args.verbose else None
    return Client(base_url, token, transport=runtime.transport, log=log, notice=lambda line: runtime.err(shown(line)),
                  sleep=runtime.sleep, clock=runtime.clock, timeout=args.timeout, environ=runtime.environ)


def add_code(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--code", action="append", default=[], metavar="DIR",
                        help="application code to look for the metrics' events in (repeatable; default: the "
                             "config's codeRefs.paths)")


def code_report(args: argparse.Namespace, runtime: Runtime, cfg: Config, definitions: Definitions,
                *, required: bool = False) -> Report | None:
    """Where the code sends each custom metric's event (coderefs/), when --code or the config names the code;
    None when neither does (an error when `required`)."""
    from metrics_sync.coderefs.report import match
    from metrics_sync.coderefs.scanner import Scanner

    folders = list(args.code) or list(cfg.code_refs.paths)
    if not folders:
        if required:
            raise UsageError("no application code to scan", "give --code DIR, or codeRefs.paths in metrics-sync.yaml")
        return None
    scan = Scanner(cfg.code_refs).scan(folders, runtime.cwd, runtime.environ)
    for note in scan.notes:
        runtime.err(shown(f"note: {note}"))
    return match(definitions, scan)
