"""plan's early read: the first pages of the metrics list asked for while the definitions are read, so that at a
distance those round trips cost nothing (docs/performance.md, "Fewer round trips at a distance").

Nothing of it shows unless the run goes on: its log lines are held, and when the definitions fail its reads are
cut off and waited for, so a failed run says only what it said before.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metrics_sync.cli.commands import common
from metrics_sync.core.runtime import Runtime

if TYPE_CHECKING:
    from metrics_sync.cli.commands.plan import PlanArguments
    from metrics_sync.definitions.config import Config
    from metrics_sync.launchdarkly.client import Client

_PROJECT_LINE = re.compile(rb"^project:[ \t]*([\"']?)([A-Za-z0-9][A-Za-z0-9._-]{0,99})\1[ \t]*(?:#.*)?\r?$",
                           re.MULTILINE)
_PEEK_BYTES = 65_536  # of the first definitions file, where `project:` usually is


class Held:
    """Lines written while the definitions are read (the early read's --verbose log, a rate-limit notice): held
    until the run goes on, dropped when the definitions fail, so a failed run says only what it said before."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write, self._lock = write, threading.Lock()
        self._held: list[str] | None = []

    def __call__(self, line: str) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append(line)
                return
        self._write(line)

    def release(self) -> None:
        with self._lock:
            lines, self._held = self._held or [], None
        for line in lines:
            self._write(line)


@dataclass(frozen=True)
class Early:
    client: Client
    output: Held


def start(runtime: Runtime, cfg: Config, arguments: PlanArguments) -> Early | None:
    """The client, with the first pages of the metrics list already asked for, while the definitions are read:
    at a distance those round trips are then free. The project is guessed from the first definitions file's
    `project:` line (else --project, else the config's); a wrong guess costs one list read nobody takes. None
    when the client cannot be made yet (a missing token, a bad option): then it is made after the definitions,
    and its error comes where it always did."""
    from metrics_sync.core.errors import MetricsSyncError
    from metrics_sync.core.resources import METRIC

    if arguments.prune and arguments.paths:  # --prune with PATHs may be refused, before any request
        return None
    project = guess_project(runtime, cfg, arguments)
    if project is None:
        return None
    output = Held(runtime.err)
    try:
        client = common.client(runtime, cfg, arguments, cancel=runtime.cancel.linked(), err=output)
    except MetricsSyncError:
        return None
    client.read_ahead(METRIC, project)
    return Early(client, output)


def guess_project(runtime: Runtime, cfg: Config, arguments: PlanArguments) -> str | None:
    from metrics_sync.definitions.config import default_paths
    from metrics_sync.definitions.yaml_reader import (
        FileTooLarge,
        NotRegularFile,
        find_definition_files,
        read_regular_file,
    )

    try:
        files, _ = find_definition_files(list(arguments.paths) or list(cfg.paths) or list(default_paths(runtime.cwd)),
                                         runtime.cwd)
        if files:
            # (read_regular_file refuses what is not a regular file: a FIFO would block)
            found = _PROJECT_LINE.search(read_regular_file(files[0][0], cfg.max_file_bytes)[:_PEEK_BYTES])
            if found:
                return found.group(2).decode()
    except (OSError, NotRegularFile, FileTooLarge):  # a guess: the definitions' own reading reports it
        return None
    return arguments.project or cfg.project
