"""The run folder, ``results/<run-id>/``: the one place its files are read and written.

Every reader validates against the file's model (:mod:`examharness.records`) and refuses what it
cannot trust with one :class:`InputError` line ``FILE[:LINE]: field: what is wrong`` — a missing
``run.json``, invalid UTF-8, an empty or truncated file, a garbage JSONL line, an unknown
``schema_version`` — and changes nothing. Writers are atomic (a crash leaves the old file or the
new one) and turn an unwritable folder into the same kind of line.

``items.jsonl`` is appended to while a run goes on, so a killed run may leave a torn last line:
readers ignore it (the item counts as not run). A damaged line elsewhere is an error for readers;
only :meth:`RunFolder.set_aside_damaged_items` (used by ``run --resume``) moves damaged lines to
``items.damaged.jsonl`` so that their items are asked again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from examharness.code.scores import PASS_RATES_FILE, RunPassRates
from examharness.contamfile import ContaminationReport
from examharness.errors import InputError, Problem
from examharness.exam import LoadedExam, load_exam
from examharness.jsonfiles import (
    JsonlAppender,
    JsonlLines,
    cannot,
    read_jsonl,
    read_model,
    stream_jsonl,
    torn_last,
    write_model,
    write_text,
)
from examharness.records import (
    CONTAMINATION_FILE,
    GRADES_FILE,
    GRADES_STAMP_FILE,
    HUMAN_GRADES_FILE,
    ITEMS_FILE,
    RUN_FILE,
    SCORES_FILE,
    FileStamp,
    GradedItem,
    GradesStamp,
    ItemOutcome,
    ItemRecord,
    RunConfig,
    RunScores,
    split_legacy_source,
)

DAMAGED_ITEMS_FILE = "items.damaged.jsonl"


def _drop_messages(data: dict[str, Any]) -> None:
    for stage in data.get("stages") or []:
        if isinstance(stage, dict):
            stage["messages"] = []


def _as_is(raw: bytes) -> bytes:
    """For :func:`parse_model`: a good line needs no trimming (``prepare`` only mends old lines)."""
    return raw


_MESSAGES, _PARAMS, _STAGE = b'"messages":', b',"params":', b'"stage":'


def cut_messages(raw: bytes) -> bytes | None:
    """An ``items.jsonl`` line with every stage's ``messages`` emptied, without parsing them
    (JSON-decoding the prompts is most of the cost of reading a large run); None when the line
    is not laid out as :class:`StageRecord` writes it (``messages`` then ``params``).

    Sound because inside a JSON string every ``"`` is escaped: ``"messages":`` and
    ``,"params":`` cannot occur in a string, only as keys. A cut that would reach into the next
    stage (a ``"stage":`` key inside it) is refused."""
    out: list[bytes] = []
    pos = 0
    while (start := raw.find(_MESSAGES, pos)) >= 0:
        end = raw.find(_PARAMS, start)
        if end < 0 or raw[end - 1 : end] != b"]" or raw.find(_STAGE, start, end) >= 0:
            return None
        out += (raw[pos:start], b'"messages":[]')
        pos = end
    return b"".join(out) + raw[pos:] if out else raw


def _latest_items(records: Iterable[ItemRecord]) -> list[ItemRecord]:
    """The latest record per item (a retried item's newer record replaces the older)."""
    return list({r.key: r for r in records}.values())


def _latest_grades(grades: Iterable[GradedItem]) -> dict[tuple[str, str], GradedItem]:
    return {(g.exam_id, g.item_id): g for g in grades}


class ItemStream:
    """A run's item records without their prompts (as ``read_items(messages=False)``), read a
    block at a time and not held, in file order: an item asked again appears again, and its later
    record is the latest. Iterate once, then :meth:`check`, which raises on a damaged line as
    :meth:`RunFolder.read_items` does (a killed writer's torn last line excepted)."""

    def __init__(self, path: Path, hint: str) -> None:
        self._path, self._hint = path, hint
        self._damaged: list[tuple[Problem, bytes]] = []
        self._last: list[bytes] = []

    def __iter__(self) -> Iterator[ItemRecord]:
        return stream_jsonl(self._path, ItemRecord, _drop_messages, cut_messages,
                            damaged=self._damaged, last=self._last)  # fmt: skip

    def check(self) -> None:
        JsonlLines([], self._damaged, torn=torn_last(self._damaged, self._last)).check(self._hint)


class RunFolder:
    """One run folder. ``RunFolder.open`` is for an existing run; the constructor does not check."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        if not (path / RUN_FILE).is_file():
            raise InputError.one(path, None, "run", "not a run folder (no run.json)")
        return cls(path)

    def create(self) -> None:
        """Make the folder of a new run (an existing folder is fine for a resumed one)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise cannot(self.path, "create the run folder", err) from None

    def file(self, name: str) -> Path:
        return self.path / name

    def read_config(self) -> RunConfig:
        return read_model(self.file(RUN_FILE), RunConfig)

    def write_config(self, cfg: RunConfig) -> None:
        write_model(self.file(RUN_FILE), cfg)

    def read_items(self, *, messages: bool = True) -> list[ItemRecord]:
        """The latest record per item; a damaged line (other than a torn last one) is an error.

        ``messages=False`` leaves out the prompts sent (each stage's ``messages`` comes back
        empty): grading and scoring need only the replies, and the prompts are most of a large
        run's ``items.jsonl``, in memory and in validation time."""
        if not messages:
            stream = self.stream_items()
            records = _latest_items(stream)
            stream.check()
            return records
        lines = read_jsonl(self.file(ITEMS_FILE), ItemRecord)
        lines.check(self._items_hint())
        return _latest_items(lines.records)

    def _items_hint(self) -> str:
        return f"`examharness run --resume {self.path}` sets it aside and asks its item again"

    def stream_items(self) -> ItemStream:
        """The records of :meth:`read_items` (``messages=False``) one at a time, for grading a run
        too large to hold them all: see :class:`ItemStream`."""
        return ItemStream(self.file(ITEMS_FILE), self._items_hint())

    def read_outcomes(self) -> list[ItemOutcome]:
        """The latest status, error and stage names per item (as :meth:`read_items`, lighter)."""
        lines = read_jsonl(self.file(ITEMS_FILE), ItemOutcome, _drop_messages, cut_messages)
        lines.check(self._items_hint())
        return list({r.key: r for r in lines.records}.values())

    def set_aside_damaged_items(self, warn: Callable[[str], None]) -> None:
        """Move damaged lines of ``items.jsonl`` to ``items.damaged.jsonl`` (kept, not lost), so that
        a resumed run asks their items again; each is reported through ``warn``."""
        path = self.file(ITEMS_FILE)
        lines = read_jsonl(path, ItemRecord)
        if not lines.damaged:
            return
        for problem, _ in lines.damaged:
            warn(f"{problem}: skipped; the item is asked again (line kept in {DAMAGED_ITEMS_FILE})")
        kept = b"".join(raw + b"\n" for _, raw in lines.damaged)
        try:
            with self.file(DAMAGED_ITEMS_FILE).open("ab") as f:
                f.write(kept)
        except OSError as err:
            raise cannot(self.file(DAMAGED_ITEMS_FILE), "write", err) from None
        self.write_items(lines.records)

    def write_items(self, records: Iterable[ItemRecord]) -> None:
        """A whole ``items.jsonl`` at once, atomically (a merged run's, or one set to rights)."""
        write_text(self.file(ITEMS_FILE), "".join(r.model_dump_json() + "\n" for r in records))

    def append_items(self) -> JsonlAppender:
        return JsonlAppender(self.file(ITEMS_FILE))

    def read_grades(self) -> dict[tuple[str, str], GradedItem]:
        """The stored grades by ``(exam_id, item_id)`` (empty before the first ``score``)."""
        lines = read_jsonl(self.file(GRADES_FILE), GradedItem, split_legacy_source, _as_is)
        lines.check(f"run `examharness score {self.path}` to grade the run again")
        return _latest_grades(lines.records)

    def write_grades(self, graded: list[GradedItem]) -> None:
        write_text(self.file(GRADES_FILE), "".join(g.model_dump_json() + "\n" for g in graded))

    def file_stamp(self, name: str) -> FileStamp | None:
        """Size, modification time and inode of one of the folder's files (None: no such file)."""
        try:
            st = self.file(name).stat()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise cannot(self.file(name), "read", err) from None
        return FileStamp(size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino)

    def read_grades_stamp(self) -> GradesStamp | None:
        """What the stored grades were made from; None when unknown (no stamp, or one that cannot
        be read: the grades are then made again, which is always right)."""
        path = self.file(GRADES_STAMP_FILE)
        try:
            return read_model(path, GradesStamp) if path.exists() else None
        except InputError:
            return None

    def write_grades_stamp(self, stamp: GradesStamp) -> None:
        write_model(self.file(GRADES_STAMP_FILE), stamp)

    def read_human_grades(self) -> dict[tuple[str, str], GradedItem]:
        lines = read_jsonl(self.file(HUMAN_GRADES_FILE), GradedItem, split_legacy_source, _as_is)
        lines.check("fix or delete the line, then import the grades again")
        return _latest_grades(lines.records)

    def append_human_grades(self) -> JsonlAppender:
        return JsonlAppender(self.file(HUMAN_GRADES_FILE))

    def read_scores(self) -> RunScores:
        path = self.file(SCORES_FILE)
        if not path.exists():
            raise InputError.one(path, None, "scores", "no scores yet: run `examharness score RUN_DIR`")
        return read_model(path, RunScores)

    def write_scores(self, scores: RunScores) -> None:
        write_model(self.file(SCORES_FILE), scores)

    def read_contamination(self) -> ContaminationReport | None:
        """The stored contamination check, if one was stored with ``contamination --run``."""
        path = self.file(CONTAMINATION_FILE)
        if not path.exists():
            return None
        return read_model(path, ContaminationReport)

    def write_contamination(self, report: ContaminationReport) -> None:
        write_model(self.file(CONTAMINATION_FILE), report)

    def read_pass_rates(self) -> RunPassRates | None:
        """Per-problem pass rates of the run's code items (None when it has none, or before ``score``)."""
        path = self.file(PASS_RATES_FILE)
        return read_model(path, RunPassRates) if path.exists() else None

    def write_pass_rates(self, rates: RunPassRates | None) -> None:
        """Written by ``score`` when the run has code items; the predictable-scaling fit reads it."""
        if rates is not None:
            write_model(self.file(PASS_RATES_FILE), rates)


def load_run_exams(cfg: RunConfig, parse_cache: Path | None = None) -> dict[str, LoadedExam]:
    """The exam files a run was made from, by exam id (a moved or deleted file is an error);
    ``parse_cache`` as for :func:`~examharness.exam.load_exam`."""
    out = {}
    for ref in cfg.exams:
        path = Path(ref.path)
        if not path.exists():
            raise InputError.one(path, None, "exam", f"exam file of run {cfg.run_id} is gone")
        out[ref.id] = load_exam(path, parse_cache=parse_cache)
    return out
