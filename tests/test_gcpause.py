"""The collector pause around building a large exam: on only for large inputs, always undone,
and what a failed build left is not frozen."""

from __future__ import annotations

import gc

import pytest

from examharness.gcpause import LARGE, collector_paused


def test_a_large_build_runs_without_the_collector_and_what_lives_is_frozen() -> None:
    frozen = gc.get_freeze_count()
    with collector_paused(LARGE):
        assert not gc.isenabled()
        kept = [[i] for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(kept)


def test_a_small_build_leaves_the_collector_alone() -> None:
    frozen = gc.get_freeze_count()
    with collector_paused(LARGE - 1):
        assert gc.isenabled()
        kept = [[i] for i in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == frozen and kept


def test_a_failed_build_turns_the_collector_back_on_and_freezes_nothing() -> None:
    frozen = gc.get_freeze_count()
    with pytest.raises(ValueError), collector_paused(LARGE):
        raise ValueError("bad exam")
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_a_collector_already_off_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused(LARGE):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
