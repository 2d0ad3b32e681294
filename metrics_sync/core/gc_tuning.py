"""Scoped garbage-collector tuning, only where a benchmark shows it pays (docs/performance.md, "Garbage
collector"). Both context managers restore the collector's state on exit; nothing here outlives its scope.

* `gc_paused()` — while one definitions file is read and checked, and while the (pure) planner runs: both
  build many small objects that form no reference cycles, yet the cyclic collector walks the growing heap
  again and again. Never used around network calls: their objects do form cycles that only the collector
  frees, and pausing it there lets garbage pile up.
* `gc_frozen()` — while the remote metrics are listed: what exists before (the loaded definitions) lives
  to the end of the command, so collections during the listing skip it and walk only new objects.
* `survivors_frozen()` — around reading the definitions of a command that keeps them to its end (plan): the
  collector is paused while they are read, and what is alive at the end is out of its sight before it resumes
  (else its first collections walk every definition: a young generation of millions of objects, 0.4 s at
  100,000 metrics). Until the end of the next `gc_frozen` scope, or of the process.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
    """Move every object alive now out of the collector's sight for the duration, then back."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def survivors_frozen() -> Iterator[None]:
    """Pause the cyclic collector for the duration, and freeze what is alive at its end (see the module's
    docstring: `gc_frozen` ends it)."""
    with gc_paused():
        yield
        gc.freeze()
