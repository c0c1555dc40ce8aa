"""Importers: public benchmark files (MMLU CSV, AGIEval JSONL) -> an exam (:class:`Exam`).

Each importer reads its input in place, checks every row, and builds the exam from the same
pydantic models a hand-written exam file is validated with, so an imported file always loads.
Bad rows are never dropped silently: by default every one is reported as ``FILE:ROW: field:
message`` in one :class:`~examharness.errors.InputError`; with ``skip_bad`` they are left out and
each is passed to ``warn`` with a final count. Item ids are ``<exam id>-<row>`` (1-based row of
the input), so an id leads straight back to its source row and stays stable when rows are skipped.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from examharness.errors import InputError, Problem
from examharness.exam import Exam

Warn = Callable[[str], None]
ITEM_KEY_ORDER = ("id", "type", "passage", "question", "prompt", "options", "answer")
EXAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""The pattern of :attr:`Exam.id <examharness.exam.Exam.id>`."""

__all__ = ["RowReport", "Warn", "check_out", "checked_exam_id", "file_digest", "no_items", "write_exam_yaml"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


class RowReport:
    """Collects the bad rows of one import and decides, at the end, whether they are fatal.

    ``warn`` receives notes (lossless normalisations worth knowing about) at once and, with
    ``skip_bad``, one ``warning: skipped ...`` line per bad row plus the count.
    """

    def __init__(self, *, skip_bad: bool, warn: Warn | None) -> None:
        self.skip_bad = skip_bad
        self.warn: Warn = warn or _stderr
        self.problems: list[Problem] = []
        self.rows: dict[str, int] = {}
        """Rows seen (good and bad) per input file, for the final count; exemplar files
        (few-shot, dev) are not input files and are not counted."""

    def row(self, file: Path) -> None:
        """Count one row of the input file ``file``."""
        self.rows[str(file)] = self.rows.get(str(file), 0) + 1

    def bad(self, file: Path, row: int, field: str, message: str) -> None:
        self.problems.append(Problem(str(file), row, field, message))

    def note(self, file: Path, row: int, field: str, message: str) -> None:
        self.warn(f"note: {Problem(str(file), row, field, message)}")

    def finish(self) -> None:
        """Raise for bad rows, or (``skip_bad``) report each skipped row and how many."""
        if not self.problems:
            return
        if not self.skip_bad:
            raise InputError(self.problems)
        for problem in self.problems:
            self.warn(f"warning: skipped {problem}")
        bad = {(p.file, p.line) for p in self.problems}
        of_input = sum(1 for file, _ in bad if file in self.rows)
        files = f" in {len(self.rows)} files" if len(self.rows) > 1 else ""
        line = f"warning: skipped {of_input} bad row(s) of {sum(self.rows.values())}{files}"
        if len(bad) > of_input:
            line += f", and {len(bad) - of_input} bad exemplar row(s)"
        self.warn(line)


def file_digest(path: Path) -> str:
    """First 16 hex digits of the file's sha256, recorded in the generated file's header."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _tidy(value: Any) -> Any:
    """Drop ``None`` and empty lists/dicts that are the models' defaults, so files stay readable."""
    if isinstance(value, dict):
        out = {k: _tidy(v) for k, v in value.items() if v is not None and v != [] and v != {}}
        if "id" in out and "type" in out:
            first = [k for k in ITEM_KEY_ORDER if k in out]
            keys = first + [k for k in out if k not in ITEM_KEY_ORDER]
            out = {k: out[k] for k in keys}
        return out
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def exam_to_data(exam: Exam) -> dict[str, Any]:
    """Plain data for the exam file; ``type`` is kept on every item (it is the discriminator)."""
    data: dict[str, Any] = _tidy(exam.model_dump(mode="json"))
    return data


def check_out(out: Path, *, force: bool) -> None:
    """Refuse, before any work, an ``--out`` that is a folder or (without ``--force``) an
    existing file: an import never silently replaces an exam someone may have edited."""
    if out.is_dir():
        raise InputError.one("command line", None, "--out", f"{out} is a folder; give the exam file to write")
    if out.exists() and not force:
        message = f"{out} exists; use --force to overwrite it"
        raise InputError.one("command line", None, "--out", message)


def checked_exam_id(exam_id: str, *, given: bool, source: Path) -> str:
    """``exam_id`` when it is a valid exam id (letters, digits, ``.``, ``_``, ``-``; it names
    files and run folders); else :class:`InputError` naming ``--id`` or the file it came from."""
    if EXAM_ID.fullmatch(exam_id):
        return exam_id
    where, field = ("command line", "--id") if given else (str(source), "(file name)")
    message = f"exam id {exam_id!r} may only hold letters, digits, '.', '_' and '-' (use --id)"
    raise InputError.one(where, None, field, message)


def no_items(path: Path) -> InputError:
    return InputError.one(path, None, "", "no items: the file has no (good) rows")


def write_exam_yaml(exam: Exam, out: Path, header: str) -> None:
    """Write ``exam`` as an exam file that starts with ``header`` as ``#`` comment lines.

    The result is re-validated from disk by callers that care (``examharness validate``); the
    data comes from a validated model, so it loads back to an equal :class:`Exam`.
    """
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.strip().splitlines())
    data = exam_to_data(exam)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(comment + body, encoding="utf-8")
    except OSError as err:
        raise InputError.one(out, None, "--out", f"cannot write: {err.strerror or err}") from None
