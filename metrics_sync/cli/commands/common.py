"""What several commands share: the common options as typed values, the parser pieces, and the config, the
definitions and the LaunchDarkly client, each read once.

Each command turns argparse's namespace into its own frozen arguments value in one function, `arguments`;
everything below that works with the value (terraform's `internal/command/arguments` is the model).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from metrics_sync.core.errors import TOKEN_VARIABLES, ConfigError, DefinitionsError, UsageError, redact, token_problem
from metrics_sync.core.runtime import Runtime
from metrics_sync.output.escape import shown

if TYPE_CHECKING:
    from metrics_sync.coderefs.report import Report
    from metrics_sync.core.cancel import CancelSignal
    from metrics_sync.core.model import Definitions, Problem
    from metrics_sync.definitions.config import Config
    from metrics_sync.launchdarkly.client import Client

MAX_TIMEOUT = 600.0
MAX_MAX_WAIT = 86_400.0


@dataclass(frozen=True, kw_only=True)
class CommonArguments:
    """The options every command takes, before or after its name."""

    config: str | None  # the config file; None: metrics-sync.yaml found from the working directory
    no_color: bool


@dataclass(frozen=True, kw_only=True)
class ApiArguments(CommonArguments):
    """The options of the commands that call LaunchDarkly."""

    base_url: str | None  # None: LD_BASE_URL, else the config's baseUrl, else LaunchDarkly's
    timeout: float
    max_wait: float  # seconds of waiting in all (rate limits, backoffs) before a run gives up
    verbose: bool


class CommonOptions(TypedDict):
    """The common options read from the namespace, spread into a command's arguments (typed by mypy)."""

    config: str | None
    no_color: bool


class ApiOptions(CommonOptions):
    base_url: str | None
    timeout: float
    max_wait: float
    verbose: bool


def common_options(namespace: argparse.Namespace) -> CommonOptions:
    return CommonOptions(config=namespace.config, no_color=namespace.no_color)


def api_options(namespace: argparse.Namespace) -> ApiOptions:
    return ApiOptions(config=namespace.config, no_color=namespace.no_color, base_url=namespace.base_url,
                      timeout=namespace.timeout, max_wait=namespace.max_wait, verbose=namespace.verbose)


def add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="definition files or folders (default: the config's paths, else ./metrics)")


def add_project(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", metavar="KEY", help="project for files that do not name one")


def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", action="append", default=[], metavar="KEY",
                        help="only these metrics and metric groups: a key, `project/key`, or a glob such as "
                             "'checkout-*' (repeatable); --prune then archives (deletes) only among them")


def add_protect_running(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protect-running", action="store_true",
                        help="refuse changes that change the results of running experiments (as the config's "
                             "protectRunningExperiments: true)")


def check_prune_scope(runtime: Runtime, cfg: Config, *, prune: bool, paths: tuple[str, ...]) -> None:
    """--prune archives managed metrics missing from the definitions, so it needs all of them: PATHs that
    leave out some of the definitions files (of the config's paths, or ./metrics) would archive the
    metrics of the files left out. --target is the way to limit it."""
    if not prune or not paths:
        return
    from metrics_sync.definitions.config import default_paths
    from metrics_sync.definitions.yaml_reader import find_definition_files

    whole = list(cfg.paths) or list(default_paths(runtime.cwd))
    everything, _ = find_definition_files(whole, runtime.cwd)
    given = {str(path.resolve()) for path, _ in find_definition_files(list(paths), runtime.cwd)[0]}
    left_out = [shown for path, shown in everything if str(path.resolve()) not in given]
    if left_out:
        more = f" and {len(left_out) - 3} more" if len(left_out) > 3 else ""
        raise UsageError(f"--prune with these PATHs would archive the metrics of the definition files left out "
                         f"({', '.join(left_out[:3])}{more})",
                         "run it on all the definitions (no PATHs), or limit it with --target")


def config(runtime: Runtime, file: str | None) -> Config:
    """The config: `file` (--config), else metrics-sync.yaml found from the working directory."""
    from metrics_sync.definitions.config import load_config

    return load_config(file, runtime.cwd)


def read_definitions(runtime: Runtime, cfg: Config, *, paths: tuple[str, ...],
                     project: str | None) -> tuple[Definitions, list[Problem]]:
    """Every definition and every problem under the PATHs (else the config's paths, else ./metrics); files
    that name no project belong to `project` (--project), else the config's."""
    from metrics_sync.definitions.config import default_paths
    from metrics_sync.definitions.load import load_definitions

    source = "--project" if project else cfg.project_source or "the config"
    return load_definitions(list(paths) or list(cfg.paths) or list(default_paths(runtime.cwd)),
                            default_project=project or cfg.project, max_file_bytes=cfg.max_file_bytes,
                            base=runtime.cwd, parallel=None, default_project_source=source,
                            paths_source=None if paths else cfg.paths_source)


def checked_definitions(runtime: Runtime, cfg: Config, *, paths: tuple[str, ...], project: str | None) -> Definitions:
    """The definitions, for commands that act on them: warnings are printed, and any error stops the run
    (exit 1) before a single API call."""
    from metrics_sync.output.problems import problem_line

    definitions, problems = read_definitions(runtime, cfg, paths=paths, project=project)
    for problem in problems:
        runtime.err(redact(problem_line(problem), runtime.environ))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DefinitionsError(errors)
    return definitions


def client(runtime: Runtime, cfg: Config, options: ApiArguments, *, cancel: CancelSignal | None = None,
           err: Callable[[str], None] | None = None) -> Client:
    """The LaunchDarkly client, as the common options (`options`), the environment and the config say; its
    cancel signal `cancel` (default: the run's), its log lines and notices written with `err` (default: the
    run's stderr)."""
    from metrics_sync.definitions.config import check_config_base_url
    from metrics_sync.launchdarkly.client import Client
    from metrics_sync.launchdarkly.session import DEFAULT_BASE_URL, RetryPolicy

    if not 0 < options.timeout <= MAX_TIMEOUT:
        raise UsageError(f"--timeout must be between 0 and {MAX_TIMEOUT:.0f} seconds")
    if not 0 <= options.max_wait <= MAX_MAX_WAIT:  # (NaN fails both)
        raise UsageError(f"--max-wait must be between 0 and {MAX_MAX_WAIT:.0f} seconds")
    variable = next((name for name in TOKEN_VARIABLES if runtime.environ.get(name)), TOKEN_VARIABLES[0])
    token = runtime.environ.get(variable, "")
    if token and (wrong := token_problem(token)) is not None:  # checked once, before any request; never shown
        raise ConfigError(f"{variable} {wrong}; it was not sent",
                          f"set {variable} to the API access token exactly, with nothing around it")
    base_url = options.base_url or runtime.environ.get("LD_BASE_URL") or DEFAULT_BASE_URL
    if not options.base_url and not runtime.environ.get("LD_BASE_URL") and cfg.base_url:
        base_url = check_config_base_url(cfg, runtime.environ)  # the config may be a pull request's
    write = err or runtime.err
    log = (lambda line: write(f"[api] {shown(line)}")) if options.verbose else None
    return Client(base_url, token, transport=runtime.transport, log=log, notice=lambda line: write(shown(line)),
                  sleep=runtime.sleep, clock=runtime.clock, timeout=options.timeout, environ=runtime.environ,
                  cancel=cancel or runtime.cancel, retry=RetryPolicy(max_wait_total=options.max_wait))


def add_code(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--code", action="append", default=[], metavar="DIR",
                        help="application code to look for the metrics' events in (repeatable; default: the "
                             "config's codeRefs.paths)")


def code_report(runtime: Runtime, cfg: Config, definitions: Definitions, *, code: tuple[str, ...],
                required: bool = False) -> Report | None:
    """Where the code sends each custom metric's event (coderefs/), when `code` (--code) or the config names
    the code; None when neither does (an error when `required`)."""
    from metrics_sync.coderefs.report import match
    from metrics_sync.coderefs.scanner import Scanner

    folders = list(code) or list(cfg.code_refs.paths)
    if not folders:
        if required:
            raise UsageError("no application code to scan", "give --code DIR, or codeRefs.paths in metrics-sync.yaml")
        return None
    scan = Scanner(cfg.code_refs).scan(folders, runtime.cwd, runtime.environ)
    for note in scan.notes:
        runtime.err(shown(f"note: {note}"))
    return match(definitions, scan)
