"""The collector's scoped tuning (core/gc_tuning.py): each scope changes the collector only while it lasts."""

from __future__ import annotations

import gc

import pytest

from metrics_sync.core.gc_tuning import YOUNG_THRESHOLD, gc_frozen, gc_paused, survivors_frozen


def test_the_listing_scope_freezes_what_exists_and_collects_the_young_less_often() -> None:
    before, kept = gc.get_threshold(), [object()]
    with gc_frozen():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made inside the scope is still collected
        del garbage
        assert gc.collect() >= 1
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
