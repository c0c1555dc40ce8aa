"""Shards: a deterministic slice of a run's items, so that N machines can share one run.

An item belongs to shard ``I`` of ``N`` (1-based) when a SHA-256 of its (exam id, section id,
item id) is ``I - 1`` modulo ``N``. The hash is of the ids alone, never Python's salted
``hash``, so the slice is the same on every machine and every session (``--resume`` asks the same
items), whatever the concurrency or the order in which items finish. ``--limit`` is applied
before sharding: shards of a limited run together cover exactly the limited run.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from examharness.errors import InputError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def shard_number(exam_id: str, section_id: str, item_id: str, count: int) -> int:
    """The 1-based shard of ``count`` that holds this item."""
    key = "\x1f".join((exam_id, section_id, item_id)).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % count + 1


class Shard(BaseModel):
    """Shard ``index`` of ``count`` (``run --shard INDEX/COUNT``), stored in ``run.json``."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=1)
    count: int = Field(ge=1)

    @model_validator(mode="after")
    def _in_range(self) -> Shard:
        if self.index > self.count:
            raise ValueError(f"shard {self.index} of {self.count} does not exist")
        return self

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, exam_id: str, section_id: str, item_id: str) -> bool:
        return shard_number(exam_id, section_id, item_id, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """``I/N`` with ``1 <= I <= N``; anything else is one command-line line."""
    found = _SHARD.match(text)
    if found is None:
        raise InputError.one("command line", None, "--shard", f"expected I/N (e.g. 1/4), got {text!r}")
    index, count = int(found.group(1)), int(found.group(2))
    if count < 1 or not 1 <= index <= count:
        raise InputError.one("command line", None, "--shard", f"{text!r}: need 1 <= I <= N and N >= 1")
    return Shard(index=index, count=count)
