"""Model files and JSON Lines files, read and written the one safe way.

Every reader validates against the file's model and refuses what it cannot trust with one
:class:`InputError` line ``FILE[:LINE]: field: what is wrong`` (invalid UTF-8, an empty or
truncated file, a garbage line, an unknown ``schema_version``). A JSON Lines file is read a block
of lines at a time and never held whole; its damaged lines are kept with their bytes, and a
killed writer's torn last line is told apart from damage. Writes are atomic (a crash leaves the
old file or the new one); :class:`JsonlAppender` hands each line to the OS as it is written.
:mod:`examharness.results` keeps a run folder's files with these.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from examharness.errors import InputError, Problem
from examharness.records import SCHEMA_VERSION, SchemaVersion

M = TypeVar("M", bound=BaseModel)


def cannot(path: Path, verb: str, err: OSError) -> InputError:
    return InputError.one(path, None, "(file)", f"cannot {verb}: {err.strerror or err}")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise cannot(path, "read", err) from None


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
    """``model`` as indented JSON, written atomically (:func:`write_text`)."""
    write_text(path, model.model_dump_json(indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of either."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise cannot(path, "write", err) from None


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
    return JsonlLines(records, damaged, torn=torn_last(damaged, last))


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
        raise cannot(path, "read", err) from None
    last.append(line)


def torn_last(damaged: list[tuple[Problem, bytes]], last: list[bytes]) -> bool:
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
            raise cannot(path, "write", err) from None

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
