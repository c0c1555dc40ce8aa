"""On-disk SQLite cache of completed requests: a rerun costs no requests.

The key is a hash of everything that determines a reply: model, base URL, stage, the full
messages and the generation parameters (temperature, max tokens, seed, stop). Only successful
replies are stored, so a cached run never replays a failure. WAL mode and ``synchronous=NORMAL``
keep a write to a fraction of a millisecond; a crash loses at most the last few entries.

The cache is an optimisation, never a reason to lose a reply or stall a run: :func:`open_cache`
turns a file that cannot be opened (a directory, garbage, locked by another program) into one
warning and no cache, and :class:`AsyncCache` does every SQLite call on one worker thread, so a
busy file costs at most :data:`BUSY_TIMEOUT` per call on that thread, never on the event loop,
and its first failure switches the cache off for the rest of the run (one warning).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from examharness.backends.base import ChatReply, StageParams, Usage

SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
  key TEXT PRIMARY KEY,
  text TEXT NOT NULL,
  finish_reason TEXT,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  created REAL NOT NULL DEFAULT (julianday('now'))
);
CREATE TABLE IF NOT EXISTS payloads (
  key TEXT PRIMARY KEY,
  json TEXT NOT NULL,
  created REAL NOT NULL DEFAULT (julianday('now'))
)
"""
_CHUNK = 500
"""Keys per SQL statement (older SQLite builds allow 999 parameters)."""
BUSY_TIMEOUT = 2.0
"""Seconds one SQLite call waits for a lock another connection holds before giving up."""


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "examharness" / "requests.sqlite"


def request_key(
    *, model: str, base_url: str | None, stage: str, messages: list[dict[str, Any]], params: StageParams
) -> str:
    payload = json.dumps(
        [model, base_url or "", stage, messages, params.model_dump()],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class RequestCache:
    def __init__(self, path: Path) -> None:
        """Raises ``OSError`` or ``sqlite3.Error`` when the file cannot serve as a cache."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
        )
        try:
            self._switch_to_wal()
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise

    def _switch_to_wal(self) -> None:
        """Several runs may share one cache file: switching to WAL needs an exclusive lock, so
        only the first opener does it; the others retry briefly, for ``BUSY_TIMEOUT`` at most."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)  # another opener is switching the file to WAL right now

    def get(self, key: str) -> ChatReply | None:
        row = self._db.execute(
            "SELECT text, finish_reason, prompt_tokens, completion_tokens FROM replies WHERE key=?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        usage = Usage(prompt_tokens=row[2], completion_tokens=row[3])
        return ChatReply(text=row[0], finish_reason=row[1], usage=usage)

    def put(self, key: str, reply: ChatReply) -> None:
        self.put_many([(key, reply)], [])

    def put_many(self, replies: list[tuple[str, ChatReply]], payloads: list[tuple[str, str]]) -> None:
        """Store replies and payloads in one transaction (one commit instead of one each)."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO replies (key, text, finish_reason, prompt_tokens, completion_tokens)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (key, r.text, r.finish_reason, r.usage.prompt_tokens, r.usage.completion_tokens)
                    for key, r in replies
                ],
            )
            self._db.executemany("INSERT OR REPLACE INTO payloads (key, json) VALUES (?, ?)", payloads)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def get_payload(self, key: str) -> str | None:
        """A stored non-chat reply (e.g. prompt log-probabilities) as the JSON it was put as."""
        row = self._db.execute("SELECT json FROM payloads WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put_payload(self, key: str, payload: str) -> None:
        self.put_many([], [(key, payload)])

    def get_payloads(self, keys: list[str]) -> dict[str, str]:
        """The stored payloads of ``keys`` (missing keys left out), in a few statements."""
        found: dict[str, str] = {}
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, json FROM payloads WHERE key IN ({marks})", chunk)
            found.update((str(k), str(v)) for k, v in rows)
        return found

    def put_payloads(self, rows: list[tuple[str, str]]) -> None:
        """Store many payloads in one transaction."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO payloads (key, json) VALUES (?, ?)", rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


Warn = Callable[[str], None]


def open_cache(path: Path, warn: Warn) -> AsyncCache | None:
    """The cache at ``path`` for a run, or None after one warning line when it cannot be used."""
    try:
        return AsyncCache(RequestCache(path), warn)
    except (OSError, sqlite3.Error) as err:
        warn(f"warning: cache {path}: {err}; continuing without the cache")
        return None


class AsyncCache:
    """The request cache as a run uses it: lookups awaited, writes queued, all on one thread.

    ``put`` returns at once; the writes waiting when the worker thread gets to them are made in
    one transaction, in submission order, before any lookup submitted after them. A failing call
    (locked, corrupt, disk full) warns once and turns the cache off: later lookups miss and later
    writes are dropped, and the run goes on asking the backend.
    """

    def __init__(self, cache: RequestCache, warn: Warn) -> None:
        self._cache, self._warn = cache, warn
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="examharness-cache")
        self._lock = threading.Lock()
        self._off = False
        self._replies: list[tuple[str, ChatReply]] = []
        self._payloads: list[tuple[str, str]] = []
        self._flush_queued = False

    @property
    def path(self) -> Path:
        return self._cache.path

    async def get(self, key: str) -> ChatReply | None:
        if self._off:
            return None
        return await asyncio.wrap_future(self._pool.submit(self._call, self._cache.get, key))

    def put(self, key: str, reply: ChatReply) -> None:
        if not self._off:
            with self._lock:
                self._replies.append((key, reply))
                self._queue_flush()

    async def get_payloads(self, keys: list[str]) -> dict[str, str]:
        if self._off or not keys:
            return {}
        found = await asyncio.wrap_future(self._pool.submit(self._call, self._cache.get_payloads, keys))
        return found or {}

    def put_payload(self, key: str, payload: str) -> None:
        if not self._off:
            with self._lock:
                self._payloads.append((key, payload))
                self._queue_flush()

    def _queue_flush(self) -> None:
        """(Holding the lock.) One flush job waits in the queue for every write not yet taken."""
        if not self._flush_queued:
            self._flush_queued = True
            self._pool.submit(self._call, self._flush)

    def _flush(self) -> None:
        with self._lock:
            replies, payloads = self._replies, self._payloads
            self._replies, self._payloads, self._flush_queued = [], [], False
        self._cache.put_many(replies, payloads)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Runs on the worker thread; the first failure warns and switches the cache off."""
        if self._off:
            return None
        try:
            return fn(*args)
        except sqlite3.Error as err:
            with self._lock:
                first, self._off = not self._off, True
            if first:
                self._warn(f"warning: cache {self._cache.path}: {err}; continuing without the cache")
            return None

    def close(self) -> None:
        """Finish the queued writes (each bounded by ``BUSY_TIMEOUT``), then close the file."""
        self._pool.shutdown(wait=True)
        self._cache.close()
