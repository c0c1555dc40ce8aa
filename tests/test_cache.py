"""The SQLite request cache: what its key covers, that it survives a reopen, and that the runner
can share it between concurrent workers and concurrent runs."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder, marker_of, write_mc_exam

from examharness.api import RunOptions, run_exams
from examharness.backends.base import ChatReply, StageParams, Usage
from examharness.cache import AsyncCache, RequestCache, default_cache_path, request_key
from examharness.results import RunFolder
from examharness.runner import Counters
from examharness.testing import Fault, ScriptedServer

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
BASE: dict[str, Any] = {
    "model": "m", "base_url": "http://127.0.0.1:1/v1", "stage": "response", "messages": MESSAGES,
    "params": StageParams(temperature=0.0, max_tokens=5, seed=0),
}  # fmt: skip


@pytest.mark.parametrize(("field", "value"), [
    ("model", "m2"),
    ("base_url", "http://127.0.0.1:2/v1"),
    ("base_url", None),
    ("stage", "explanation"),
    ("stage", "answer"),
    ("messages", [{"role": "user", "content": "What is 2 + 3?"}]),
    ("messages", [{"role": "system", "content": "What is 2 + 2?"}]),
    ("messages", [*MESSAGES, {"role": "assistant", "content": "4"}]),
    ("params", StageParams(temperature=0.3, max_tokens=5, seed=0)),
    ("params", StageParams(temperature=0.0, max_tokens=6, seed=0)),
    ("params", StageParams(temperature=0.0, max_tokens=5, seed=1)),
    ("params", StageParams(temperature=0.0, max_tokens=5, seed=None)),
    ("params", StageParams(temperature=0.0, max_tokens=5, seed=0, stop=["]"])),
])  # fmt: skip
def test_key_changes_with_every_input(field: str, value: Any) -> None:
    assert request_key(**{**BASE, field: value}) != request_key(**BASE)


def test_key_is_stable_and_ignores_dict_order() -> None:
    reordered = [{"content": "What is 2 + 2?", "role": "user"}]
    assert request_key(**BASE) == request_key(**{**BASE, "messages": reordered})
    assert len(request_key(**BASE)) == 64


def test_default_path_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "examharness" / "requests.sqlite"


def test_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "cache.sqlite"
    reply = ChatReply(text="The answer is [B] — ünïcode", finish_reason="length",
                      usage=Usage(prompt_tokens=12, completion_tokens=3))
    key = request_key(**BASE)
    cache = RequestCache(path)
    assert cache.get(key) is None
    cache.put(key, reply)
    cache.put(key, reply)
    cache.close()
    reopened = RequestCache(path)
    try:
        assert reopened.get(key) == reply
        assert reopened.get(request_key(**{**BASE, "model": "other"})) is None
    finally:
        reopened.close()


def rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute("SELECT count(*) FROM replies").fetchone()[0]
    return count


def test_writes_waiting_for_the_worker_are_one_transaction_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the cache's thread is busy, writes queue up; it then makes them all in one
    transaction, in the order they were put (the later reply for a key wins), before a lookup
    asked for after them."""
    transactions: list[int] = []
    put_many = RequestCache.put_many

    def counted(self: RequestCache, replies: Any, payloads: Any) -> None:
        transactions.append(len(replies) + len(payloads))
        put_many(self, replies, payloads)

    monkeypatch.setattr(RequestCache, "put_many", counted)
    cache = AsyncCache(RequestCache(tmp_path / "c.sqlite"), warn=pytest.fail)
    busy = threading.Event()
    cache._pool.submit(busy.wait)
    for i in range(50):
        cache.put(f"k{i}", ChatReply(text=f"first {i}", finish_reason="stop", usage=Usage()))
        cache.put_payload(f"p{i}", f'{{"n": {i}}}')
    cache.put("k7", ChatReply(text="second 7", finish_reason="stop", usage=Usage()))
    looked_up = cache._pool.submit(cache._cache.get, "k7")
    busy.set()
    reply = looked_up.result(timeout=10)
    cache.close()
    assert transactions == [101]
    assert reply is not None and reply.text == "second 7"
    reopened = RequestCache(tmp_path / "c.sqlite")
    assert [reopened.get(f"k{i}").text for i in (0, 49)] == ["first 0", "first 49"]  # type: ignore[union-attr]
    assert reopened.get_payload("p49") == '{"n": 49}'


def test_runner_fills_the_cache_from_many_workers(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "many.yaml", 80)
    cache = tmp_path / "cache.sqlite"
    with ScriptedServer(responder=Recorder(exam), latency=0.01) as srv:
        opts = RunOptions(paths=[exam.path], model="m", base_url=srv.base_url, concurrency=32,
                          out=tmp_path / "results", cache_path=cache)
        _, first = run_exams(opts)
        _, second = run_exams(opts)
        assert len(srv.requests) == exam.n_items
    assert rows(cache) == exam.n_items
    assert (first.requests, second.requests, second.cached) == (exam.n_items, 0, exam.n_items)
    # The parse cache lives beside the request cache, never in a folder that holds exams.
    assert sorted(p.name for p in (tmp_path / "exams").iterdir()) == ["many.yaml"]
    assert list((tmp_path / "parsed-exams").glob("*.json"))


def test_two_runs_share_one_cache_file_at_once(tmp_path: Path) -> None:
    exams = [write_mc_exam(tmp_path / "exams" / f"e{i}.yaml", 40, exam_id=f"e{i}") for i in range(2)]
    cache = tmp_path / "shared.sqlite"
    results: list[Counters] = []
    failures: list[BaseException] = []
    with ScriptedServer(responder=Recorder(exams[0]), latency=0.005) as srv:

        def one(i: int) -> None:
            opts = RunOptions(paths=[exams[i].path], model="m", base_url=srv.base_url,
                              concurrency=16, out=tmp_path / f"results{i}", cache_path=cache)
            try:
                results.append(run_exams(opts)[1])
            except BaseException as err:
                failures.append(err)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not failures
    assert sorted(c.ok for c in results) == [40, 40]
    # Both exams have identical items, so the second writer may hit the first's entries.
    assert rows(cache) <= 80 and sum(c.requests + c.cached for c in results) == 80


def test_failures_are_not_cached(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "fail.yaml", 6)

    def policy(index: int, request: dict[str, Any], attempt: int) -> Fault | None:
        return Fault.server_error(503) if marker_of(request) == "QID-002" else None

    cache = tmp_path / "cache.sqlite"
    with ScriptedServer(responder=Recorder(exam), faults=policy) as srv:
        opts = RunOptions(paths=[exam.path], model="m", base_url=srv.base_url, max_attempts=2,
                          out=tmp_path / "results", cache_path=cache)
        run_dir, first = run_exams(opts)
        _, second = run_exams(opts)
    assert first.errors == 1 and rows(cache) == 5
    assert (second.cached, second.errors) == (5, 1) and second.requests == 2
    assert {r.item_id: r.status for r in RunFolder(run_dir).read_items()}["q002"] == "error"
