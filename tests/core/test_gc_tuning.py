"""The collector's scoped tuning (core/gc_tuning.py): each scope changes the collector only while it lasts."""

from __future__ import annotations

import gc

import pytest

from metrics_sync.core.gc_tuning import YOUNG_THRESHOLD, gc_frozen, gc_paused, survivors_frozen


def test_the_listing_scope_freezes_what_exists_and_collects_the_young_less_often() -> None:
    before, kept = gc.get_threshold(), [object()]
    with gc_frozen():
        assert gc.get_freeze_count() > 0
        assert 700 < gc.get_threshold()[0] == YOUNG_THRESHOLD <= 100_000
        assert gc.get_threshold()[1:] == before[1:]
        # Cycles made inside the scope are still collected by the collector on its own (no gc.collect here):
        # of 3 × YOUNG_THRESHOLD cycles, those made before the last collection are gone.
        gone = 0

        class Node:
            def __del__(self) -> None:
                nonlocal gone
                gone += 1

        for _ in range(3 * YOUNG_THRESHOLD):
            node = Node()
            node.me = node  # type: ignore[attr-defined]
        del node
        assert gone >= YOUNG_THRESHOLD
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert kept


def test_every_scope_restores_the_collector_when_it_ends_by_an_error() -> None:
    before = gc.get_threshold()
    for scope in (gc_frozen, gc_paused):
        with pytest.raises(KeyError), scope():
            raise KeyError("x")
        assert (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()) == (True, before, 0)
    with pytest.raises(KeyError), survivors_frozen() as freeze:
        freeze()
        raise KeyError("x")
    assert (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()) == (True, before, 0)
