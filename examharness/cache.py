"""On-disk SQLite cache of completed requests: a rerun costs no requests.

The key is a hash of everything that determines a reply: model, base URL, stage, the full
messages and the generation parameters (temperature, max tokens, seed, stop). Only successful
replies are stored, so a cached run never replays a failure. WAL mode and ``synchronous=NORMAL``
keep a write to a fraction of a millisecond; a crash loses at most the last few entries.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
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
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
        # Several runs may share one cache file: switching to WAL needs an exclusive lock, so only
        # the first opener does it; everything else waits on the busy timeout instead of failing.
        for attempt in range(50):
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.1)  # another opener is switching the file to WAL right now
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

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
        self._db.execute(
            "INSERT OR REPLACE INTO replies (key, text, finish_reason, prompt_tokens, completion_tokens)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, reply.text, reply.finish_reason, reply.usage.prompt_tokens, reply.usage.completion_tokens),
        )

    def get_payload(self, key: str) -> str | None:
        """A stored non-chat reply (e.g. prompt log-probabilities) as the JSON it was put as."""
        row = self._db.execute("SELECT json FROM payloads WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put_payload(self, key: str, payload: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO payloads (key, json) VALUES (?, ?)", (key, payload))

    def close(self) -> None:
        self._db.close()
