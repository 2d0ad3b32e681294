"""Garbage-collector settings for the data-heavy phases (loading, listing, planning).

Those phases build hundreds of thousands of small objects and create no reference cycles worth
collecting, but CPython's cyclic collector still walks the growing heap again and again: on 50,000
metrics it took half of plan's time and made it grow faster than linearly (docs/performance.md).
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


def settle() -> None:
    """Before a long-running phase (apply): move what exists now out of the collector's sight, so later
    collections only walk the objects that phase creates."""
    gc.collect()
    gc.freeze()
