"""A cache that cannot be used never stops a run, loses a reply or stalls the event loop: a
garbage file, a directory and a file another connection holds locked each become one warning
line and a run without the cache."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder, SmallExam, cli_env, examharness, write_mc_exam

from examharness.api import RunOptions, run_exams
from examharness.backends.base import ChatReply, Usage
from examharness.cache import BUSY_TIMEOUT, open_cache
from examharness.jsonfiles import read_jsonl
from examharness.records import ITEMS_FILE, ItemRecord
from examharness.testing import ScriptedServer


@pytest.fixture
def locked_file(tmp_path: Path) -> Iterator[Path]:
    """A database file another connection holds an exclusive lock on for the whole test."""
    path = tmp_path / "locked.sqlite"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE held (x)")
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("INSERT INTO held VALUES (1)")
    yield path
    other.close()


def unusable(kind: str, tmp_path: Path, locked: Path) -> Path:
    if kind == "locked":
        return locked
    path = tmp_path / f"{kind}.sqlite"
    if kind == "garbage":
        path.write_bytes(b"this is not an SQLite database\n" * 200)
    else:
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["garbage", "directory", "locked"])
def test_unusable_cache_is_one_warning_and_the_run_goes_on(
    tmp_path: Path, kind: str, locked_file: Path
) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "e.yaml", 12)
    cache = unusable(kind, tmp_path, locked_file)
    out = tmp_path / "results"
    with ScriptedServer(responder=Recorder(exam)) as srv:
        done = examharness("run", str(exam.path), "--model", "m", "--base-url", srv.base_url,
                           "--cache", str(cache), "--out", str(out), "--no-score",
                           env=cli_env(tmp_path), timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [line for line in warnings if str(cache) in line and "without the cache" in line]
    assert len(warnings) == 1, done.stderr
    records = read_jsonl(next(out.glob("*/" + ITEMS_FILE)), ItemRecord).records
    assert len(records) == exam.n_items and {r.status for r in records} == {"ok"}


class LockingRecorder(Recorder):
    """Answers like :class:`Recorder`; at the ``lock_at``-th request another connection takes the
    cache file's write lock and keeps it, as a second program would."""

    def __init__(self, exam: SmallExam, cache: Path, lock_at: int) -> None:
        super().__init__(exam)
        self.cache, self.lock_at = cache, lock_at
        self.holder: sqlite3.Connection | None = None

    def __call__(self, request: dict[str, Any]) -> str:
        if len(self.bodies) + 1 == self.lock_at:
            self.holder = sqlite3.connect(self.cache, isolation_level=None, check_same_thread=False)
            self.holder.execute("BEGIN EXCLUSIVE")
        return super().__call__(request)


def test_cache_locked_mid_run_loses_no_reply(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "e.yaml", 30)
    cache = tmp_path / "cache.sqlite"
    recorder = LockingRecorder(exam, cache, lock_at=10)
    warnings: list[str] = []
    with ScriptedServer(responder=recorder, latency=0.01) as srv:
        opts = RunOptions(paths=[exam.path], model="m", base_url=srv.base_url, out=tmp_path / "r",
                          cache_path=cache, concurrency=4)  # fmt: skip
        started = time.monotonic()
        run_dir, counters = run_exams(opts, warn=warnings.append)
        elapsed = time.monotonic() - started
    assert recorder.holder is not None
    recorder.holder.close()
    assert counters.ok == exam.n_items
    assert len(read_jsonl(run_dir / ITEMS_FILE, ItemRecord).records) == exam.n_items
    assert len(warnings) == 1 and "locked" in warnings[0]
    assert elapsed < 3 * BUSY_TIMEOUT + 5  # one bounded wait on the writer thread, not one per item


def test_a_busy_cache_never_blocks_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    warnings: list[str] = []
    cache = open_cache(path, warnings.append)
    assert cache is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    reply = ChatReply(text="[B]", finish_reason="stop", usage=Usage())

    async def main() -> float:
        started = time.monotonic()
        worst, last = 0.0, time.monotonic()
        for i in range(20):
            cache.put(f"key{i}", reply)
        while time.monotonic() - started < BUSY_TIMEOUT + 3 and not warnings:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            worst, last = max(worst, now - last), now
        assert await cache.get("key0") is None  # switched off: a miss, not a wait
        return worst

    try:
        worst_gap = asyncio.run(main())
        started = time.monotonic()
        cache.close()
        closing = time.monotonic() - started
    finally:
        holder.close()
    assert len(warnings) == 1 and str(path) in warnings[0]
    assert worst_gap < 0.5 and closing < 1.0
