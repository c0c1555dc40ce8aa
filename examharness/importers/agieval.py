"""AGIEval (Zhong et al., 2023) JSONL files -> an exam in the GPT-4 report's few-shot MC format.

One JSON object per line: ``passage``, ``question``, ``options`` (``"(A)..."`` strings or null),
``label`` (a letter, a list of letters for multi-select, or null) and ``answer`` (the cloze /
MATH answer when there are no options); ``other`` (solutions, levels) is not used. Every distinct
passage text becomes one ``passages`` entry (``p<first row>``) that its items point to.

Exemplars come only from AGIEval's ``few_shot_prompts.csv`` (``--fewshot``), never from the test
items: an exemplar taken from the file being scored would show the model some of its answers.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from examharness.errors import InputError
from examharness.exam import (
    LETTERS,
    Exam,
    ExamScoring,
    Item,
    MCExemplar,
    MCItem,
    MultiSelectItem,
    NumericItem,
    Passage,
    ResponseExemplar,
    Sampling,
    Section,
)
from examharness.importers import RowReport, Warn, file_digest

CITATION = (
    "AGIEval: Zhong et al., AGIEval: A Human-Centric Benchmark for Evaluating Foundation Models, "
    "2023 (arXiv:2304.06364), github.com/microsoft/AGIEval"
)
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


def dataset_license(path: Path) -> str:
    """The license of the dataset ``path`` belongs to, read from AGIEval's ``LICENSE-datasets``.

    That file has one ``# NAME`` section per source dataset; the first section whose name
    matches the task's family is used (a later ``# MATH`` section actually holds JEC-QA's terms).
    """
    family = {"sat": "SAT", "lsat": "LSAT", "aqua": "AQUA-RAT", "logiqa": "LogiQA", "math": "MATH"}
    key = family.get(path.stem.split("-")[0], path.stem)
    licenses = path.parent / "LICENSE-datasets"
    if not licenses.is_file():
        return f"unknown: no LICENSE-datasets beside {path.name}; see AGIEval's data/v1/LICENSE"
    text = licenses.read_text(encoding="utf-8")
    for section in re.split(r"^# ", text, flags=re.MULTILINE)[1:]:
        name, _, body = section.partition("\n")
        if key.lower() not in [n.strip().lower() for n in name.split(",")]:
            continue
        kinds = {"MIT License": "MIT", "Apache License, Version 2.0": "Apache-2.0",
                 "CC BY-NC-SA 4.0": "CC BY-NC-SA 4.0 (non-commercial, share-alike)"}
        kind = next((v for k, v in kinds.items() if k in body), body.strip().splitlines()[0])
        lines = [ln.strip() for ln in body.splitlines()]
        holder = next((ln for ln in lines if ln.startswith("Copyright")), None)
        return f"{kind} ({holder})" if holder else kind
    return f"unknown: no '# {key}' section in {licenses.name}"


class _TaskPart(BaseModel):
    """One AGIEval file's share of an exam: its section and the passages it uses."""

    section: Section
    passages: dict[str, Passage]
    n_exemplars: int


def _task_part(
    path: Path, *, id_prefix: str, key_prefix: str, shots: int | None, fewshot: Path | None,
    report: RowReport,
) -> _TaskPart:  # fmt: skip
    """Items and exemplars of one task file; passages are keyed ``<key_prefix>pN``."""
    task = path.stem
    passages = PassageTable()
    items = read_items(path, id_prefix, passages, report, key_prefix)
    exemplars = read_fewshot(fewshot, task, passages, report, key_prefix) if fewshot else []
    if shots is not None and fewshot is not None:
        if shots < 0 or shots > len(exemplars):
            message = f"{shots} exemplars asked for, the file has {len(exemplars)} for this task"
            raise InputError.one(fewshot, None, FEWSHOT_COLUMN.get(task, task), message)
        exemplars = exemplars[:shots]
    used = {ex.passage for ex in exemplars}
    exemplar_key = f"{key_prefix}fewshot-"
    kept = {k: p for k, p in passages.entries.items() if not k.startswith(exemplar_key) or k in used}
    numeric = all(isinstance(item, NumericItem) for item in items)
    shown: list[MCExemplar | ResponseExemplar] = list(exemplars)
    section = Section(
        id=task, title=f"AGIEval {task}", kind="multiple_choice", template="mc_fewshot",
        sampling=Sampling(mode="single") if numeric else None,
        exemplars=shown, items=items,
    )  # fmt: skip
    return _TaskPart(section=section, passages=kept, n_exemplars=len(exemplars))


def import_agieval(
    paths: Path | Sequence[Path],
    *,
    exam_id: str | None = None,
    title: str | None = None,
    published_label: str | None = None,
    section_per_file: bool = False,
    shots: int | None = None,
    fewshot: Path | None = None,
    scale: str | None = None,
    skip_bad: bool = False,
    warn: Warn | None = None,
) -> Exam:
    """Build one exam from AGIEval task files.

    One file gives one section, items ``<exam id>-<row>``. With ``section_per_file`` every file
    is a section of its own (id: the task, e.g. ``lsat-ar``; items ``<exam id>-<task>-<row>``,
    passages ``<task>-pN``), each with its task's exemplars, so LSAT's three AGIEval parts form
    one exam. Several files need ``section_per_file``: each task has its own exemplars.
    ``shots`` exemplars per task come from ``fewshot`` (all of the task's, when ``shots`` is
    None); without ``fewshot`` there are none, whatever ``shots`` says. Raises
    :class:`InputError` listing every bad row (unless ``skip_bad``), or when fewer exemplars
    exist than asked for.
    """
    files = [paths] if isinstance(paths, Path) else list(paths)
    if not files or (len(files) > 1 and not section_per_file):
        raise InputError.one("command line", None, "files", "give one AGIEval file, or several "
                             "with --section-per-file (each task has its own exemplars)")
    tasks = [f.stem for f in files]
    if len(set(tasks)) < len(tasks):
        raise InputError.one("command line", None, "files", f"a task is given twice: {tasks}")
    exam_id = exam_id or f"agieval-{'-'.join(tasks)}"
    report = RowReport(skip_bad=skip_bad, warn=warn)
    parts = [
        _task_part(f, id_prefix=f"{exam_id}-{f.stem}" if section_per_file else exam_id,
                   key_prefix=f"{f.stem}-" if section_per_file else "", shots=shots,
                   fewshot=fewshot, report=report)
        for f in files
    ]  # fmt: skip
    report.finish()
    if fewshot is None and shots:
        report.warn(f"note: {files[0]}: no --fewshot file, so no exemplars: they are never taken "
                    "from the test items, which would show the model answers it is scored on")
    names = ", ".join(f.name for f in files)
    source = f"{CITATION}; items from {names}"
    if fewshot is not None:
        shown = ", ".join(str(p.n_exemplars) for p in parts)
        source += f", {shown} exemplars from {fewshot.name}"
    licenses = "; ".join(dict.fromkeys(dataset_license(f) for f in files))
    n_items = sum(len(p.section.items) for p in parts)
    shot_counts = "/".join(dict.fromkeys(str(p.n_exemplars) for p in parts))
    return Exam(
        id=exam_id, title=title or f"AGIEval: {', '.join(tasks)}", source=source,
        license=f"{licenses}; AGIEval repository: MIT (Microsoft)",
        description=f"{n_items} items from AGIEval {', '.join(tasks)}, {shot_counts}-shot.",
        published_label=published_label,
        passages={k: v for p in parts for k, v in p.passages.items()},
        sections=[p.section for p in parts], scoring=ExamScoring(scale=scale),
    )  # fmt: skip


def agieval_header(paths: Path | Sequence[Path], fewshot: Path | None) -> str:
    """The comment that opens a generated AGIEval exam file: where its items came from."""
    files = [paths] if isinstance(paths, Path) else list(paths)
    lines = [
        "Generated by `examharness import agieval` from the files below; re-run it rather than",
        "editing this file by hand.",
        f"Source: {CITATION}.",
    ]
    for path in files:
        lines.append(f"Items: {path.name} (sha256 {file_digest(path)}); "
                     f"license: {dataset_license(path)}.")
    lines.append("Item ids are <exam id>-<line> (several files: <exam id>-<task>-<line>) with "
                 "<line> the 1-based line of the JSONL file.")
    if fewshot is not None:
        digest = file_digest(fewshot)
        lines.append(f"Exemplars: {fewshot.name} (sha256 {digest}), never the test items.")
    return "\n".join(lines)
