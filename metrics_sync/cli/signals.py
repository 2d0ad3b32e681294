"""Ctrl-C and SIGTERM (as CI sends on cancel), the same for every command.

The first one asks the run to stop: it sets the run's cancel signal (core/cancel.py), which the retry loops,
rate-limit waits, pools and apply read, and says so in one line. The run then ends by itself: apply reports
what was done and what was not, the other commands end with `Cancelled`; exit 130 either way.

While the user is asked a question (apply's confirmation) nothing is in flight: there the first one ends the
run at once with `Cancelled`, as a "no".

The second one ends the process at once, exit 130. Worker threads may be blocked in a request or a wait, and
waiting for them is what the user refuses: `os._exit` skips the interpreter's shutdown (which joins those
threads) and cannot leave a traceback, as a KeyboardInterrupt raised in the middle of any code could.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import TextIO

from metrics_sync.core.cancel import Cancelled
from metrics_sync.core.runtime import Runtime

SIGNALS = (signal.SIGINT, signal.SIGTERM)
FIRST = "Interrupted: starting nothing new; finishing what is in flight (interrupt again to exit now)."
SECOND = "Interrupted again: exiting now; what was in flight may or may not have been done (running the command " \
         "again is safe)."
EXIT_CODE = Cancelled.exit_code  # 130, as shells report a process ended by SIGINT
_asking = False  # the main thread waits for an answer at a prompt (process-wide, as signal handlers are)


@contextmanager
def interrupts(runtime: Runtime, *, exit_now: Callable[[int], object] = os._exit) -> Iterator[None]:
    """Handle the two interrupts while the block runs, then put the previous handlers back (tests run many
    commands in one process). Outside the main thread Python cannot install handlers: nothing changes there,
    and a KeyboardInterrupt still maps to 130 in main()."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = 0  # counted here, not read from runtime.cancel: apply also stops on a permission error

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received == 1:
            runtime.cancel.set()
            if _asking:
                raise Cancelled("waiting for the confirmation")  # out of the blocked read, into main()
            _say(runtime.stderr, FIRST)
            return
        _say(runtime.stderr, SECOND)
        _flush(runtime.stdout)  # what apply printed so far (each outcome is flushed already; this is a margin)
        exit_now(EXIT_CODE)

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            # None: the old handler was not installed from Python; the default is the closest to it.
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


@contextmanager
def asking() -> Iterator[None]:
    """Around a prompt: Ctrl-C there ends the run at once (a blocked read of the answer would not notice the
    cancel signal)."""
    global _asking
    _asking = True
    try:
        yield
    finally:
        _asking = False


def _say(stream: TextIO, line: str) -> None:
    # On a terminal the line follows the echoed ^C (or apply's progress line): start it on a line of its own.
    try:
        stream.write(("\n" if stream.isatty() else "") + line + "\n")
        stream.flush()
    except (OSError, ValueError, RuntimeError):
        # Closed, or busy: the handler can run in the middle of a write to the same stream (RuntimeError:
        # reentrant call). The exit code still tells what happened; a traceback here would not help.
        pass


def _flush(stream: TextIO) -> None:
    with suppress(OSError, ValueError, RuntimeError):
        stream.flush()
