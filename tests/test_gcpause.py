"""The collector pause around building a large exam: on only for large inputs, always undone,
and what a failed build left is not frozen."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from examharness.cli import main
from examharness.gcpause import LARGE, YOUNG, collector_paused


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


def test_the_command_process_collects_young_objects_less_often(tmp_path: Path) -> None:
    """``entry`` (the ``examharness`` command) spaces young collections out, for its own process
    only: ``main`` as tests and library users call it leaves the threshold alone."""
    before = gc.get_threshold()
    assert main(["report", str(tmp_path / "no-run")]) != 0
    script = (
        "import gc, examharness.cli as c\n"
        "c.main = lambda **kw: print(gc.get_threshold()[0]) or 0\n"
        "c.entry()\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(out.stdout) == YOUNG != before[0]
    assert gc.get_threshold() == before
