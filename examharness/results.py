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

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from examharness.code.scores import PASS_RATES_FILE, RunPassRates
from examharness.contamfile import ContaminationReport
from examharness.errors import InputError, Problem
from examharness.exam import LoadedExam, load_exam
from examharness.records import (
    CONTAMINATION_FILE,
    GRADES_FILE,
    GRADES_STAMP_FILE,
    HUMAN_GRADES_FILE,
    ITEMS_FILE,
    RUN_FILE,
    SCHEMA_VERSION,
    SCORES_FILE,
    FileStamp,
    GradedItem,
    GradesStamp,
    ItemOutcome,
    ItemRecord,
    RunConfig,
    RunScores,
    SchemaVersion,
    split_legacy_source,
)

M = TypeVar("M", bound=BaseModel)
DAMAGED_ITEMS_FILE = "items.damaged.jsonl"


def _cannot(path: Path, verb: str, err: OSError) -> InputError:
    return InputError.one(path, None, "(file)", f"cannot {verb}: {err.strerror or err}")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise _cannot(path, "read", err) from None


Prepare = Callable[[dict[str, Any]], None]


@functools.cache
def _versioned(model: type[BaseModel]) -> bool:
    """Whether ``model`` itself refuses a ``schema_version`` this code does not read."""
    field = model.model_fields.get("schema_version")
    expected: object = SchemaVersion
    return field is not None and field.annotation == expected


Trim = Callable[[bytes], bytes | None]


def parse_model(path: Path, line: int | None, raw: bytes, model: type[M], prepare: Prepare | None = None,
                trim: Trim | None = None) -> M:  # fmt: skip
    """One JSON document (a whole file, or one JSONL line numbered ``line``) as ``model``;
    ``prepare`` may change the parsed data before it is validated (drop what is not wanted, mend
    an old format). ``trim`` does the same to the bytes of a good document, or returns None
    when it cannot; without ``trim``, a document with a ``prepare`` is always parsed in full.

    A well-formed document is validated straight from its bytes (fields the model does not have
    are never turned into Python objects); any problem is diagnosed again step by step below, for
    the one-line message that names it."""
    if (prepare is None or trim is not None) and _versioned(model):
        cut = raw if trim is None else trim(raw)
        try:
            if cut is not None:
                return model.model_validate_json(cut)
        except ValidationError:
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        at = (line or 1) + raw.count(b"\n", 0, err.start)
        raise InputError.one(path, at, "(file)", f"not UTF-8 text (byte {raw[err.start]:#04x})") from None
    if not text.strip():
        raise InputError.one(path, line, "(file)", "empty file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        what = f"not valid JSON ({err.msg}, column {err.colno}): damaged or cut short"
        raise InputError.one(path, line or err.lineno, "(file)", what) from None
    if not isinstance(data, dict):
        raise InputError.one(path, line, "(file)", f"expected a JSON object, found {type(data).__name__}")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        what = f"unknown schema_version {version!r}: this examharness reads version {SCHEMA_VERSION}"
        raise InputError.one(path, line, "schema_version", what)
    if prepare is not None:
        prepare(data)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(map(str, first["loc"])) or "(file)"
        raise InputError.one(path, line, field, first["msg"]) from None


def read_model(path: Path, model: type[M]) -> M:
    return parse_model(path, None, _read_bytes(path), model)


def write_model(path: Path, model: BaseModel) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of either."""
    _write_text(path, model.model_dump_json(indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _cannot(path, "write", err) from None


def write_text(path: Path, text: str) -> None:
    """Atomic text write, for the files sibling modules keep in a run folder (batch files)."""
    _write_text(path, text)


@dataclass(frozen=True)
class JsonlLines(Generic[M]):
    """A JSONL file read line by line: the good records, and the lines that are not."""

    records: list[M]
    damaged: list[tuple[Problem, bytes]]
    """Lines that cannot be read, with their bytes (a torn last line included)."""
    torn: bool
    """Whether the last damaged line is an unfinished last line (a killed writer's)."""

    def check(self, hint: str) -> None:
        """Raise on a damaged line that is not a killed writer's torn last line."""
        bad = self.damaged[:-1] if self.torn else self.damaged
        if bad:
            first = bad[0][0]
            more = f" (and {len(bad) - 1} more damaged line(s))" if len(bad) > 1 else ""
            raise InputError([Problem(first.file, first.line, first.field, f"{first.message}{more}; {hint}")])


def read_jsonl(path: Path, model: type[M], prepare: Prepare | None = None, trim: Trim | None = None,
               ) -> JsonlLines[M]:  # fmt: skip
    """Every line of ``path`` as ``model``, read a block of lines at a time (a 20,000-item run's
    ``items.jsonl`` is hundreds of megabytes: only the records are held, never the file)."""
    damaged: list[tuple[Problem, bytes]] = []
    last: list[bytes] = []
    records = list(stream_jsonl(path, model, prepare, trim, damaged=damaged, last=last))
    return JsonlLines(records, damaged, torn=_torn(damaged, last))


def stream_jsonl(
    path: Path, model: type[M], prepare: Prepare | None = None, trim: Trim | None = None, *,
    damaged: list[tuple[Problem, bytes]], last: list[bytes],
) -> Iterator[M]:  # fmt: skip
    """:func:`read_jsonl`'s records one at a time, none held: its damaged lines are appended to
    ``damaged`` and the file's last line to ``last`` as the iterator goes."""
    if not path.exists():
        return
    line = b""
    try:
        with path.open("rb") as f:
            block: list[tuple[int, bytes]] = []
            for n, line in enumerate(f, 1):
                raw = line[:-1] if line.endswith(b"\n") else line
                if raw.strip():
                    block.append((n, raw))
                if len(block) == _BLOCK:
                    yield from _parse_block(path, block, model, prepare, trim, damaged)
                    block = []
            yield from _parse_block(path, block, model, prepare, trim, damaged)
    except OSError as err:
        raise _cannot(path, "read", err) from None
    last.append(line)


def _torn(damaged: list[tuple[Problem, bytes]], last: list[bytes]) -> bool:
    """Whether the last damaged line is the file's unfinished last line (a killed writer's)."""
    return bool(damaged and last) and not last[0].endswith(b"\n") and damaged[-1][1] == last[0]


_BLOCK = 1000
"""Lines validated in one call (a few megabytes of a run's ``items.jsonl`` at most)."""


@functools.cache
def _list_of(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _parse_block(
    path: Path, block: list[tuple[int, bytes]], model: type[M], prepare: Prepare | None, trim: Trim | None,
    damaged: list[tuple[Problem, bytes]],
) -> list[M]:  # fmt: skip
    """``block``'s lines (numbered) as records; a line that is not one goes to ``damaged`` with its
    problem.

    Good lines are validated together as one JSON array (one call into pydantic instead of one
    per line: a third of the time for small records); a block with any problem, or whose array
    is not one record per line, is read again a line at a time, which names the line."""
    if block and (prepare is None or trim is not None) and _versioned(model):
        cut = [raw if trim is None else trim(raw) for _, raw in block]
        good = [c for c in cut if c is not None]
        try:
            many: list[M] = _list_of(model).validate_json(b"[" + b",".join(good) + b"]")
        except ValidationError:
            many = []
        if len(good) == len(block) == len(many):
            return many
    records: list[M] = []
    for n, raw in block:
        try:
            records.append(parse_model(path, n, raw, model, prepare, trim))
        except InputError as err:
            damaged.append((err.problems[0], raw))
    return records


def _drop_torn_tail(path: Path) -> None:
    """Cut a killed writer's unfinished last line, so the next record starts on a line of its own."""
    if not path.exists():
        return
    with path.open("rb+") as f:
        size = end = f.seek(0, os.SEEK_END)
        while end > 0:
            start = max(end - 65536, 0)
            f.seek(start)
            cut = f.read(end - start).rfind(b"\n")
            if cut >= 0:
                if start + cut + 1 < size:
                    f.truncate(start + cut + 1)
                return
            end = start
        f.truncate(0)


class JsonlAppender:
    """Appends one JSON line per record and hands it to the OS before returning.

    Flushing (not fsyncing) each line keeps the runner fast; it survives the process being killed.
    ``close`` fsyncs, so a finished run also survives power loss (unless the session only wrote
    what the cache already holds).
    """

    def __init__(self, path: Path) -> None:
        try:
            _drop_torn_tail(path)
            self._f = path.open("a", encoding="utf-8")
        except OSError as err:
            raise _cannot(path, "write", err) from None

    def append(self, model: BaseModel) -> str:
        """Write one record; returns its JSON (without the newline)."""
        return self.append_line(model.model_dump_json())

    def append_line(self, line: str) -> str:
        """Write one record already serialized (one line of JSON, without the newline)."""
        self._f.write(line + "\n")
        self._f.flush()
        return line

    def close(self, *, sync: bool = True) -> None:
        """``sync=False``: flushed, not fsynced (for lines that can be made again for nothing)."""
        self._f.flush()
        if sync:
            os.fsync(self._f.fileno())
        self._f.close()


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
        JsonlLines([], self._damaged, torn=_torn(self._damaged, self._last)).check(self._hint)


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
            raise _cannot(self.path, "create the run folder", err) from None

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
            raise _cannot(self.file(DAMAGED_ITEMS_FILE), "write", err) from None
        self.write_items(lines.records)

    def write_items(self, records: Iterable[ItemRecord]) -> None:
        """A whole ``items.jsonl`` at once, atomically (a merged run's, or one set to rights)."""
        _write_text(self.file(ITEMS_FILE), "".join(r.model_dump_json() + "\n" for r in records))

    def append_items(self) -> JsonlAppender:
        return JsonlAppender(self.file(ITEMS_FILE))

    def read_grades(self) -> dict[tuple[str, str], GradedItem]:
        """The stored grades by ``(exam_id, item_id)`` (empty before the first ``score``)."""
        lines = read_jsonl(self.file(GRADES_FILE), GradedItem, split_legacy_source, _as_is)
        lines.check(f"run `examharness score {self.path}` to grade the run again")
        return _latest_grades(lines.records)

    def write_grades(self, graded: list[GradedItem]) -> None:
        _write_text(self.file(GRADES_FILE), "".join(g.model_dump_json() + "\n" for g in graded))

    def file_stamp(self, name: str) -> FileStamp | None:
        """Size, modification time and inode of one of the folder's files (None: no such file)."""
        try:
            st = self.file(name).stat()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise _cannot(self.file(name), "read", err) from None
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
