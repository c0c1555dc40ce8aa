"""MMLU (Hendrycks et al., ICLR 2021) CSV files -> an exam in the paper's k-shot format.

The CSVs have no header; each record is ``question, A, B, C, D, answer letter``, and fields may
hold commas, quotes and newlines, so they are read with :mod:`csv`. The dev file supplies the
k-shot exemplars (the first ``shots`` rows, as in the paper's evaluation code); the test file
supplies the items. MMLU has no worked explanations, so exemplars carry an empty ``explanation``:
the ``mmlu_kshot`` template shows only question, options and ``Answer: X``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from examharness.errors import InputError
from examharness.exam import (
    Exam,
    ExamScoring,
    MCExemplar,
    MCItem,
    ResponseExemplar,
    Sampling,
    Section,
)
from examharness.importers import RowReport, Warn, checked_exam_id, file_digest, no_items

CITATION = (
    "MMLU: Hendrycks et al., Measuring Massive Multitask Language Understanding, ICLR 2021 "
    "(arXiv:2009.03300)"
)
LICENSE = "MIT (Copyright (c) 2020 Dan Hendrycks)"
COLUMNS = ("question", "A", "B", "C", "D", "answer")


def subject_of(path: Path) -> str:
    """``high_school_mathematics_test.csv`` -> ``high_school_mathematics``."""
    stem = path.stem
    for suffix in ("_test", "_dev", "_val"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _records(path: Path) -> Iterator[tuple[int, int, list[str]]]:
    """(row number, first line of the row, fields) for each CSV record, 1-based."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            start = 1
            for row, fields in enumerate(reader, start=1):
                yield row, start, fields
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError.one(path, None, "", f"cannot read CSV: {err}") from None


def _where(row: int, line: int) -> str:
    return "" if row == line else f" (row {row} starts at line {line})"


def read_rows(path: Path, report: RowReport, *, counted: bool) -> list[tuple[int, MCItem]]:
    """Each good record as (row, item with a placeholder id); bad records go to ``report``.

    ``counted``: the file is the input (test) file, whose rows the ``--skip-bad`` count is of.
    """
    out: list[tuple[int, MCItem]] = []
    for row, line, fields in _records(path):
        if counted:
            report.row(path)
        if len(fields) != len(COLUMNS):
            report.bad(path, row, "(row)", f"expected {len(COLUMNS)} columns "
                       f"({', '.join(COLUMNS)}), found {len(fields)}{_where(row, line)}")
            continue
        question, *options, answer = fields
        if not question.strip():
            report.bad(path, row, "question", f"empty question{_where(row, line)}")
            continue
        try:
            item = MCItem(id=str(row), question=question, options=options, answer=answer.strip())
        except ValidationError as err:
            for e in err.errors():
                message = str(e["msg"]).removeprefix("Value error, ")
                report.bad(path, row, "answer", f"{message}{_where(row, line)}")
            continue
        out.append((row, item))
    return out


def import_mmlu(
    dev: Path,
    test: Path,
    *,
    exam_id: str | None = None,
    shots: int = 5,
    scale: str | None = None,
    instruction: str | None = None,
    title: str | None = None,
    skip_bad: bool = False,
    warn: Warn | None = None,
) -> Exam:
    """Build the exam for one subject: ``shots`` exemplars from ``dev``, every row of ``test``.

    Raises :class:`InputError` listing every bad row of both files (unless ``skip_bad``) and when
    the dev file has fewer good rows than ``shots``.
    """
    if shots < 0:
        raise InputError.one(dev, None, "shots", f"--shots must be 0 or more, got {shots}")
    subject = subject_of(test)
    given = exam_id is not None
    exam_id = checked_exam_id(exam_id if exam_id is not None else f"mmlu-{subject}", given=given, source=test)
    report = RowReport(skip_bad=skip_bad, warn=warn)
    exemplar_rows = read_rows(dev, report, counted=False) if shots > 0 else []
    rows = read_rows(test, report, counted=True)
    report.finish()
    if len(exemplar_rows) < shots:
        message = f"{shots} exemplars asked for, the dev file has {len(exemplar_rows)} good rows"
        raise InputError.one(dev, None, "shots", message)
    if not rows:
        raise no_items(test)
    readable = subject.replace("_", " ")
    exemplars: list[MCExemplar | ResponseExemplar] = [
        MCExemplar(question=ex.question, options=ex.options, answer=ex.answer, explanation="")
        for _, ex in exemplar_rows[:shots]
    ]
    items = [item.model_copy(update={"id": f"{exam_id}-{row}"}) for row, item in rows]
    section = Section(
        id=subject,
        title=readable.capitalize(),
        kind="multiple_choice",
        template="mmlu_kshot",
        instruction=instruction
        or f"The following are multiple choice questions (with answers) about {readable}.",
        sampling=Sampling(mode="single", temperature=0, max_tokens=5),
        exemplars=exemplars,
        items=items,
    )
    return Exam(
        id=exam_id,
        title=title or f"MMLU: {readable}",
        source=f"{CITATION}; items from {test.name}, {shots}-shot exemplars from {dev.name}",
        license=LICENSE,
        description=f"{len(items)} multiple-choice questions on {readable}, {shots}-shot.",
        sections=[section],
        scoring=ExamScoring(scale=scale),
    )


def mmlu_header(dev: Path, test: Path) -> str:
    """The comment that opens a generated MMLU exam file: where its items came from."""
    return (
        "Generated by `examharness import mmlu` from the files below; re-run it rather than\n"
        "editing this file by hand.\n"
        f"Source: {CITATION}. License: {LICENSE}.\n"
        f"Items: {test.name} (sha256 {file_digest(test)}); "
        f"exemplars: {dev.name} (sha256 {file_digest(dev)}).\n"
        "Item ids are <exam id>-<row> with <row> the 1-based CSV record of the test file."
    )
