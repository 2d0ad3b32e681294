"""Scoped garbage-collector tuning, only where a benchmark shows it pays (docs/performance.md, "Garbage
collector"). Both context managers restore the collector's state on exit; nothing here outlives its scope.

* `gc_paused()` — while one definitions file is read and checked, and while the (pure) planner runs: both
  build many small objects that form no reference cycles, yet the cyclic collector walks the growing heap
  again and again. Never used around network calls: their objects do form cycles that only the collector
  frees, and pausing it there lets garbage pile up. (Plan's early read of the metrics list goes on while the
  definitions are read: it is bounded, cli/early_read.py, so what it leaves for the collector is too.)
* `gc_frozen()` — while the remote metrics are listed (and while validate scans the code and reports): what
  exists before (the loaded definitions) lives to the end of the command, so collections during the listing
  skip it and walk only new objects. Entered by the main thread only (a scope of another thread overlapping it
  would restore the other's settings). And the
  youngest generation is collected every YOUNG_THRESHOLD allocations rather than every 700: each page decodes
  into thousands of objects that die with it, and each collection walked those alive and moved the kept ones
  on to be walked again (plan of 100,000 metrics: ~0.3 s). The network's cycles are still collected, a few
  megabytes later at most.
* `survivors_frozen()` — around reading the definitions of a command that keeps them to its end (plan): the
  collector is paused while they are read, and what is alive at the end is out of its sight before it resumes
  (else its first collections walk every definition: a young generation of millions of objects, 0.4 s at
  100,000 metrics). Until the end of the next `gc_frozen` scope, or of its own.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000  # allocations between collections of the youngest generation while listing


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the duration (reference counting still frees memory)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def gc_frozen() -> Iterator[None]:
    """Move every object alive now out of the collector's sight for the duration, then back; meanwhile the
    youngest generation is collected every YOUNG_THRESHOLD allocations instead of 700."""
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@contextmanager
def survivors_frozen() -> Iterator[Callable[[], None]]:
    """For a command that keeps what it reads first to its end: the collector is paused until the function this
    gives is called (once that is read), then resumes with everything alive out of its sight. At the end of
    the scope, however it ends, everything is back in sight and the collector as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    frozen = False

    def freeze() -> None:
        nonlocal frozen
        gc.freeze()
        frozen = True
        if was_enabled:
            gc.enable()

    try:
        yield freeze
    finally:
        if frozen:
            gc.unfreeze()
        elif was_enabled:
            gc.enable()
