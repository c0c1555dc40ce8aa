"""AGIEval rows -> items and exemplars: the JSONL records and the few-shot CSV, checked row by row.

One JSON object per line: ``passage``, ``question``, ``options`` (``"(A)..."`` strings or null),
``label`` (a letter, a list of letters for multi-select, or null) and ``answer`` (the cloze /
MATH answer when there are no options); ``other`` (solutions, levels) is not used. Every distinct
passage text becomes one ``passages`` entry (``p<first row>``) that its items point to.
:mod:`examharness.importers.agieval` puts the items and exemplars together as an exam.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from examharness.errors import InputError
from examharness.exam import LETTERS, Item, MCExemplar, MCItem, MultiSelectItem, NumericItem, Passage
from examharness.importers import RowReport

STRICT_PREFIX = re.compile(r"^\(([A-Z])\)\s*")
LOOSE_PREFIX = re.compile(r"^([A-Z])(?:\?\s*|\s+)")
FEWSHOT_COLUMN = {"sat-en-without-passage": "sat-en"}
"""Tasks that share another task's few-shot column (AGIEval's own loader does the same)."""


class AgiRow(BaseModel):
    """One AGIEval record; unknown keys (``other``) are ignored."""

    model_config = ConfigDict(extra="ignore")
    passage: str | None = None
    question: str = Field(min_length=1)
    options: list[str] | None = None
    label: str | list[str] | None = None
    answer: str | float | None = None


def normalise_options(options: list[str]) -> tuple[list[str], str | None]:
    """Strip ``(A)`` prefixes; return (texts in letter order, a note when the fix was not trivial).

    Rows whose prefixes are all ``(X)`` but out of order are put in letter order, because the
    label names the option by its printed letter (checked by hand on logiqa-en rows 109 and
    193). Loose prefixes (``A ``, ``B?``) are read as letters only when every option of the row
    then has its own letter; otherwise unprefixed options are kept exactly as written.
    """
    letters = list(LETTERS[: len(options)])
    strict = [STRICT_PREFIX.match(o) for o in options]
    found = [m.group(1) if m else None for m in strict]
    texts = [o[m.end():] if m else o for o, m in zip(options, strict, strict=True)]
    if found == letters:
        return texts, None
    if None not in found and sorted(found) == letters:  # type: ignore[type-var]
        order = sorted(range(len(options)), key=lambda i: found[i] or "")
        shown = ", ".join(f or "" for f in found)
        note = f"options printed out of order ({shown}); put in letter order"
        return [texts[i] for i in order], note
    loose = [
        LOOSE_PREFIX.match(o) if f is None else None for o, f in zip(options, found, strict=True)
    ]
    guessed = [f or (m.group(1) if m else None) for f, m in zip(found, loose, strict=True)]
    if guessed == letters:
        cut = [t[m.end():] if m else t for t, m in zip(texts, loose, strict=True)]
        return cut, "irregular option prefixes (such as 'A ' or 'B?') read as option letters"
    rows = zip(texts, options, found, letters, strict=True)
    kept = [t if f == letter else o for t, o, f, letter in rows]
    odd = ", ".join(letter for f, letter in zip(found, letters, strict=True) if f != letter)
    return kept, f"option(s) {odd} have no matching (letter) prefix; kept exactly as written"


class PassageTable:
    """Distinct passage texts -> ids, so shared passages are stored once."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.entries: dict[str, Passage] = {}

    def key_for(self, text: str | None, new_key: str) -> str | None:
        if not text or not text.strip():
            return None
        return self.ids.get(text, new_key)

    def commit(self, text: str | None, key: str | None) -> None:
        if text and key and text not in self.ids:
            self.ids[text] = key
            self.entries[key] = Passage(text=text)


def _row_problems(err: ValidationError, whole: str = "(row)") -> list[tuple[str, str]]:
    """(field, message) per pydantic error, with item field names mapped back to AGIEval's.

    ``whole`` names errors about the whole model (the answer-is-an-option check is one).
    """
    names = {"answer": "label"}
    found: dict[str, list[str]] = {}
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if not str(p).startswith(("list[", "str", "float"))]
        field = ".".join(names.get(p, p) for p in loc) or whole
        message = str(e["msg"]).removeprefix("Value error, ")
        if message not in found.setdefault(field, []):
            found[field].append(message)
    return [(field, " or ".join(messages)) for field, messages in found.items()]


def _build_item(rec: AgiRow, item_id: str, passage: str | None) -> Item:
    """The item for one record; raises ``ValidationError``/``ValueError`` for a bad one."""
    if rec.options:
        options, _ = normalise_options(rec.options)
        if rec.label is None:
            raise ValueError("label: a row with options needs a label")
        if isinstance(rec.label, list):
            answers = [a.strip() for a in rec.label]
            return MultiSelectItem(
                id=item_id, question=rec.question, options=options, answer=answers, passage=passage
            )
        return MCItem(
            id=item_id, question=rec.question, options=options, answer=rec.label.strip(),
            passage=passage,
        )  # fmt: skip
    if rec.answer is None or (isinstance(rec.answer, str) and not rec.answer.strip()):
        raise ValueError("answer: a row without options needs an answer")
    return NumericItem(id=item_id, question=rec.question, answer=[rec.answer], passage=passage)


def _parse_record(path: Path, row: int, line: str, report: RowReport) -> AgiRow | None:
    try:
        raw: Any = json.loads(line)
    except json.JSONDecodeError as err:
        report.bad(path, row, "(row)", f"invalid JSON: {err.msg} at column {err.colno}")
        return None
    except RecursionError:
        report.bad(path, row, "(row)", "invalid JSON: nested too deeply")
        return None
    if not isinstance(raw, dict):
        report.bad(path, row, "(row)", f"expected a JSON object, found {type(raw).__name__}")
        return None
    try:
        return AgiRow.model_validate(raw)
    except ValidationError as err:
        for field, message in _row_problems(err):
            report.bad(path, row, field, message)
        return None


def read_items(
    path: Path, id_prefix: str, passages: PassageTable, report: RowReport, passage_prefix: str = ""
) -> list[Item]:
    """Every good row of ``path`` as an item ``<id_prefix>-<row>``; bad rows go to ``report``.

    A passage first seen on row N is ``<passage_prefix>pN``.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError.one(path, None, "", f"cannot read file: {err}") from None
    items: list[Item] = []
    for row, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        report.row(path)
        rec = _parse_record(path, row, line, report)
        if rec is None:
            continue
        if rec.options:
            note = normalise_options(rec.options)[1]
            if note:
                report.note(path, row, "options", note)
        pid = passages.key_for(rec.passage, f"{passage_prefix}p{row}")
        try:
            item = _build_item(rec, f"{id_prefix}-{row}", pid)
        except ValidationError as err:
            for field, message in _row_problems(err, "label"):
                report.bad(path, row, field, message)
            continue
        except ValueError as err:
            field, _, message = str(err).partition(": ")
            report.bad(path, row, field, message)
            continue
        passages.commit(rec.passage, pid)
        items.append(item)
    return items


def _fewshot_rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(enumerate(csv.reader(handle, strict=True), start=1))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError.one(path, None, "", f"cannot read CSV: {err}") from None


def _exemplar(cell: str, explanation: str) -> tuple[MCExemplar, str | None, str | None]:
    """(exemplar with passage unset, its passage text, a normalisation note); raises ValueError."""
    try:
        raw = ast.literal_eval(cell)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as err:
        raise ValueError(f"sample is not a Python dict literal: {err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"sample is a {type(raw).__name__}, not a dict")
    rec = AgiRow.model_validate(raw)
    if not rec.options:
        raise ValueError("sample has no options; only multiple-choice exemplars can be shown "
                         "by the mc_fewshot template (import this task without --fewshot)")
    if not isinstance(rec.label, str):
        raise ValueError(f"sample label must be one letter, found {rec.label!r}")
    if not explanation.strip():
        raise ValueError("the explanation for this sample is empty")
    options, note = normalise_options(rec.options)
    ex = MCExemplar(question=rec.question, options=options, answer=rec.label.strip(),
                    explanation=explanation.strip())
    return ex, rec.passage, note


def read_fewshot(
    path: Path, task: str, passages: PassageTable, report: RowReport, passage_prefix: str = ""
) -> list[MCExemplar]:
    """The worked examples for ``task`` from AGIEval's ``few_shot_prompts.csv``.

    That file has one column per task (header row: task names) and rows ``sample k`` /
    ``explanation k``; samples are Python dict literals. An empty cell means the task has
    fewer examples (upstream's loader skips it too), not an error.
    """
    rows = _fewshot_rows(path)
    column = FEWSHOT_COLUMN.get(task, task)
    header = rows[0][1] if rows else []
    if column not in header:
        tasks = ", ".join(h for h in header if h)
        message = f"no few-shot column for task {column!r}; columns: {tasks}"
        raise InputError.one(path, 1, column, message)
    col = header.index(column)
    by_label = {cells[0].strip(): (row, cells) for row, cells in rows[1:] if cells}
    drop_passage = column != task
    exemplars: list[MCExemplar] = []
    for k in range(1, len(rows)):
        if f"sample {k}" not in by_label:
            break
        row, cells = by_label[f"sample {k}"]
        cell = cells[col] if col < len(cells) else ""
        if not cell.strip():
            continue
        exp_cells = by_label.get(f"explanation {k}", (0, []))[1]
        explanation = exp_cells[col] if col < len(exp_cells) else ""
        try:
            ex, text, note = _exemplar(cell, explanation)
        except ValidationError as err:
            for field, message in _row_problems(err, "label"):
                report.bad(path, row, f"{column}.{field}", message)
            continue
        except ValueError as err:
            report.bad(path, row, column, str(err))
            continue
        if note:
            report.note(path, row, column, note)
        pid = None if drop_passage else passages.key_for(text, f"{passage_prefix}fewshot-{k}")
        passages.commit(None if drop_passage else text, pid)
        exemplars.append(ex.model_copy(update={"passage": pid}))
    return exemplars
