"""One cancel signal for a run, so that a run can be stopped.

The CLI sets it on the first Ctrl-C (or SIGTERM, as CI sends on cancel). Everything that waits or loops
reads it: the session's retry loop and rate-limit waits end at once, the transport gives a request in flight
at most `GRACE` seconds more, pools start no new work, and apply starts no new change and reports what was
done and what was not. A second signal ends the process at once (cli/signals.py).
"""

from __future__ import annotations

import threading
import time

from metrics_sync.core.errors import MetricsSyncError

GRACE = 3.0  # seconds a request in flight may still take once the run is cancelled


class Cancelled(MetricsSyncError):
    """The run was cancelled (Ctrl-C): raised where work would otherwise start or wait."""

    exit_code = 130

    def __init__(self, doing: str = "") -> None:
        super().__init__(f"interrupted{f' while {doing}' if doing else ''}; nothing more was started",
                         "running the command again is safe")


class CancelSignal:
    """Thread-safe: set once from a signal handler, read by every worker."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._until: float | None = None  # the monotonic time requests in flight are cut off
        self._linked: list[CancelSignal] = []

    def set(self, grace: float | None = None) -> None:
        """Cancel: nothing new starts, and requests in flight get `grace` seconds more (default GRACE; a read
        that no one waits for any longer, such as plan's early read when the definitions fail, is given none)."""
        if self._until is None:
            self._until = time.monotonic() + (GRACE if grace is None else grace)
        self._event.set()
        for signal in tuple(self._linked):  # (no lock: this runs in a signal handler)
            signal.set(grace)

    def linked(self) -> CancelSignal:
        """A signal set whenever this one is (Ctrl-C), that can also be set on its own (e.g. to give up a
        client's reads while the run goes on)."""
        signal = CancelSignal()
        self._linked.append(signal)
        if self.is_set():
            signal.set()
        return signal

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking at once when cancelled; True when the run is cancelled."""
        if seconds > 0:
            return self._event.wait(seconds)
        return self._event.is_set()

    def check(self, doing: str = "") -> None:
        """Raise `Cancelled` when the run is cancelled: called before anything new starts."""
        if self._event.is_set():
            raise Cancelled(doing)

    def deadline(self, own: float) -> float:
        """A request's monotonic deadline, `own`, shortened to the grace period once the run is cancelled."""
        return own if self._until is None else min(own, self._until)


NEVER = CancelSignal()  # for callers (tests, benchmarks) that never cancel
