"""Derived results kept in the request cache, so that a rerun recomputes nothing the cache holds.

A cached rerun gets every reply from the cache in milliseconds; rendering every prompt again to
find its cache key, and grading every reply again (answer extraction), then cost more than
everything else the command does. Two things are stored in the cache file's ``payloads`` table:

- **item records**: the finished record of an item all of whose replies came back non-empty,
  under a key that digests the exam's content, the item's place in it, its sampling plan, the
  seed, the model and endpoint, every template the renderer could use, and the code that renders
  and records. A rerun writes those records as they are (marked cached), sending and rendering
  nothing; it is the same record a request-level cache hit would give.
- **grades** of choice and numeric items: a pure function of the item, the record's status and
  its stages' replies, and of the code that grades, all four digested into the key.
- **exam scores** (raw, scaled, percentile range and their bootstrap intervals): a pure function
  of the scale as loaded, every section's per-item points, the resamples and seed, and the code
  that scores. The 1,000-resample bootstrap is most of what scoring costs.

The code's part of each key is a fingerprint of the source of the modules involved, so a changed
rule never serves a stale result. A cache that cannot be read or written only turns the memo off.
Items whose prompts carry images are not memoized: the image files are not in the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from examharness import __version__
from examharness.cache import RequestCache
from examharness.exam import Item, MCItem, MultiSelectItem, NumericItem
from examharness.records import GradedItem, ItemRecord, ItemStatus, Model, SectionSampling, StageName
from examharness.scales import Scale
from examharness.scoring import ExamScoreCore, SectionItems, score_exam

GRADE_SOURCES = ("grading.py", "records.py", "exam.py", "extract")
SCORE_SOURCES = ("scoring.py", "scales.py")
ITEM_SOURCES = (
    "prompts.py", "promptenv.py", "runner.py", "records.py", "exam.py", "cache.py", "backends/base.py"
)  # fmt: skip


@cache
def code_fingerprint(sources: tuple[str, ...] = GRADE_SOURCES) -> str:
    """A digest of the examharness version and the source of ``sources`` (modules or packages)."""
    h = hashlib.sha256(__version__.encode())
    root = resources.files("examharness")
    for name in sources:
        entry = root / name
        files = sorted((f for f in entry.iterdir() if f.name.endswith(".py")), key=lambda f: f.name) \
            if entry.is_dir() else [entry]  # fmt: skip
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


class ServedStage(StageName):
    """What a rerun needs of a stored stage: its name and reply (the rest is skipped)."""

    reply: str | None = None
    finish_reason: str | None = None


class ServedRecord(Model):
    """What a rerun needs of a stored record (:func:`from_memo`): to count it (as
    :class:`~examharness.records.ItemOutcome`) and to key its grade (:func:`grade_key`). Validated
    straight from the line: its prompts are skipped, never built."""

    exam_id: str
    item_id: str
    status: ItemStatus
    error: str | None = None
    stages: list[ServedStage]

    @property
    def key(self) -> tuple[str, str]:
        return (self.exam_id, self.item_id)


def grade_key(record: ItemRecord | ServedRecord, item: Item) -> str | None:
    """The memo key of a record's grade; None for items whose grade is not memoized (free
    response, essays and code are graded by other means; errors cost nothing to grade)."""
    if record.status == "error" or not isinstance(item, MCItem | MultiSelectItem | NumericItem):
        return None
    h = hashlib.sha256(b"grade\0" + code_fingerprint().encode())
    h.update(item.model_dump_json().encode())
    h.update(f"\0{record.status}\0{len(record.stages)}".encode())
    for s in record.stages:
        reply = (s.reply or "").encode("utf-8", "surrogatepass")
        h.update(f"\0{s.reply is None}\0{s.finish_reason}\0{len(reply)}\0".encode())
        h.update(reply)
    return "grade:" + h.hexdigest()


def score_key(scale: Scale | None, sections: Sequence[SectionItems], *, n_boot: int, seed: int) -> str:
    """The memo key of an exam's :func:`~examharness.scoring.score_exam` result."""
    h = hashlib.sha256(code_fingerprint(SCORE_SOURCES).encode())
    h.update(b"\0" + (scale.model_dump_json() if scale is not None else "null").encode())
    for section in sections:
        h.update(b"\0" + section.model_dump_json().encode())
    h.update(f"\0{n_boot}\0{seed}".encode())
    return "score:" + h.hexdigest()


class ResultMemo:
    """Grades by :func:`grade_key` and exam scores by :func:`score_key`, read and written in
    batches through one cache connection."""

    def __init__(self, path: Path) -> None:
        self._store: RequestCache | None
        try:
            self._store = RequestCache(path)
        except (OSError, sqlite3.Error):
            self._store = None  # the run has already said the cache is unusable

    def grade_all(
        self, pairs: Sequence[tuple[ItemRecord, Item]], grade: Callable[[ItemRecord, Item], GradedItem]
    ) -> list[GradedItem]:
        """``grade`` for every pair, taking each memoized grade from the cache instead."""
        keys = [grade_key(record, item) for record, item in pairs]
        known = self._get([k for k in keys if k is not None])
        out: list[GradedItem] = []
        fresh: list[tuple[str, str]] = []
        for (record, item), key in zip(pairs, keys, strict=True):
            stored = known.get(key) if key is not None else None
            if stored is not None:
                out.append(GradedItem.model_validate_json(stored))
                continue
            g = grade(record, item)
            out.append(g)
            if key is not None:
                fresh.append((key, g.model_dump_json()))
        self._put(fresh)
        return out

    def known_grades(self, keys: list[str]) -> dict[str, GradedItem]:
        """The memoized grades of ``keys`` that the memo holds (a damaged entry is left out)."""
        out: dict[str, GradedItem] = {}
        for key, stored in self._get(keys).items():
            with contextlib.suppress(ValidationError):
                out[key] = GradedItem.model_validate_json(stored)
        return out

    def exam_score(self, scale: Scale | None, sections: Sequence[SectionItems], *, n_boot: int,
                   seed: int) -> ExamScoreCore:  # fmt: skip
        """:func:`~examharness.scoring.score_exam`, or its memoized result (a damaged entry is
        computed and stored again)."""
        key = score_key(scale, sections, n_boot=n_boot, seed=seed)
        stored = self._get([key]).get(key)
        if stored is not None:
            with contextlib.suppress(ValidationError):
                return ExamScoreCore.model_validate_json(stored)
        core = score_exam(scale, sections, n_boot=n_boot, seed=seed)
        self._put([(key, core.model_dump_json())])
        return core

    def _get(self, keys: list[str]) -> dict[str, str]:
        if self._store is None or not keys:
            return {}
        try:
            return self._store.get_payloads(keys)
        except sqlite3.Error:
            self.close()
            return {}

    def _put(self, rows: list[tuple[str, str]]) -> None:
        if self._store is None or not rows:
            return
        try:
            self._store.put_payloads(rows)
        except sqlite3.Error:
            self.close()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


@cache
def templates_digest(dirs: tuple[Path, ...]) -> str:
    """A digest of every template a renderer with this search path could load (includes too)."""
    h = hashlib.sha256()
    for d in dirs:
        for f in sorted(d.rglob("*.j2")):
            h.update(str(f.relative_to(d)).encode())
            h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def item_key(
    *, model: str, base_url: str | None, seed: int, vision: bool, templates: str, exam_hash: str,
    section_id: str, item_id: str, index: int, sampling: SectionSampling,
) -> str:  # fmt: skip
    """The memo key of one item's whole record (see the module doc for what it covers)."""
    parts = [code_fingerprint(ITEM_SOURCES), model, base_url or "", seed, vision, templates, exam_hash,
             section_id, item_id, index, sampling.model_dump(mode="json")]  # fmt: skip
    return "item:" + hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


def memorable(record: ItemRecord) -> bool:
    """Only a complete answer is kept: never an error, an empty reply or a code item (its
    programs' verdicts come from the sandbox), nor an item whose prompt carries an image (the
    image file is not in the key). Whether a prompt has images depends only on the exam and the
    templates, which the key covers, so a key stored without images renders without them."""
    return (record.status == "ok" and record.item_type != "code" and bool(record.stages)
            and all((s.reply or "").strip() for s in record.stages)
            and all(isinstance(m.get("content"), str) for s in record.stages for m in s.messages)
            )  # fmt: skip


def from_memo(line: str, finished_at: str) -> tuple[ServedRecord, str]:
    """A stored record (the ``items.jsonl`` line it was first written as) as a rerun served from
    the cache writes it: every stage a cache hit, finished at ``finished_at``. Returns what the
    rerun needs of the record (:class:`ServedRecord`, for counting and its grade key) and the line
    to write.

    The line is the stored one with each stage's ``latency_s``, ``cached`` and ``attempts`` and the
    record's ``finished_at`` replaced in its text, so that the prompts, most of each line, are
    neither parsed nor written again. Sound for the reason :func:`~examharness.results.cut_messages`
    is: inside a JSON string every quote is escaped, so those keys cannot occur in one. A line not
    laid out as :class:`ItemRecord` writes it is parsed and written whole. Raises
    ``ValidationError`` for a damaged entry."""
    record = ServedRecord.model_validate_json(line)
    patched, n = _STAGE_TIMES.subn(_CACHED_STAGE, line)
    at = patched.rfind(',"finished_at":')  # the last field: only the line's end is looked at
    if n != len(record.stages) or at < 0 or not _FINISHED.fullmatch(patched, at):
        full = ItemRecord.model_validate_json(line)
        stages = [s.model_copy(update={"cached": True, "attempts": 0, "latency_s": 0.0}) for s in full.stages]
        served = full.model_copy(update={"stages": stages, "finished_at": finished_at})
        return record, served.model_dump_json()
    return record, f'{patched[:at]},"finished_at":{json.dumps(finished_at)}}}'


_STAGE_TIMES = re.compile(r'"latency_s":[-+0-9.eE]+,"cached":(?:true|false),"attempts":[0-9]+(?=\})')
_CACHED_STAGE = '"latency_s":0.0,"cached":true,"attempts":0'
_FINISHED = re.compile(r',"finished_at":"[^"\\]*"\}')
