"""The process's side effects, gathered in one value the CLI passes to every command.

Tests build a `Runtime` with string streams, a made-up environment, a temporary working directory, an
in-process transport to the emulator and a fake clock, and run the real commands with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from metrics_sync.core.cancel import CancelSignal

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Runtime:
    stdout: TextIO
    stderr: TextIO
    stdin: TextIO
    environ: Mapping[str, str]
    cwd: Path  # every path the user gives is taken relative to this
    transport: httpx.BaseTransport | None = None  # None: real network; tests pass WSGITransport(emulator)
    sleep: Callable[[float], None] = time.sleep  # retry and rate-limit waits
    clock: Callable[[], float] = time.time  # rate-limit windows and progress timing
    cancel: CancelSignal = field(default_factory=CancelSignal)  # set on the first Ctrl-C (core/cancel.py)

    def out(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def err(self, text: str) -> None:
        self.stderr.write(text if text.endswith("\n") else text + "\n")
        self.stderr.flush()

    def path(self, given: str) -> Path:
        """A path from the command line or the config, resolved against the working directory."""
        return self.cwd / given

    def color(self, no_color: bool) -> bool:
        """Colours only on a terminal, and never with --no-color or NO_COLOR (https://no-color.org)."""
        return not no_color and "NO_COLOR" not in self.environ and self.stdout.isatty()
