"""Human-translated MMLU (OpenAI's MMMLU: one CSV per language) -> one exam per language.

Each file has a header row with the columns ``Question, A, B, C, D, Answer, Subject`` (an unnamed
leading index column, as the published files have, is allowed and ignored); one section per
subject, in order of first appearance. MMMLU has no development split, so ``shots`` > 0 takes the
first ``shots`` rows of each subject as that section's exemplars and leaves them out of the items
(the report's multilingual MMLU was 3-shot from MMLU's dev set, which MMMLU does not translate).
"""

from __future__ import annotations

import csv
from pathlib import Path

from pydantic import ValidationError

from examharness.errors import InputError
from examharness.exam import Exam, MCExemplar, MCItem, ResponseExemplar, Sampling, Section
from examharness.importers import RowReport, Warn, checked_exam_id, file_digest
from examharness.languages import check_language

CITATION = (
    "MMMLU: MMLU (Hendrycks et al., ICLR 2021) translated into 14 languages by professional human "
    "translators, published by OpenAI (openai/MMMLU)"
)
LICENSE = "MIT"
COLUMNS = ("Question", "A", "B", "C", "D", "Answer", "Subject")
_SECTION_ID = str.maketrans({c: "_" for c in " /()&,.'"})


def language_of(path: Path) -> str | None:
    """``mmlu_ES_LA.csv`` -> ``es-LA`` (the published files' naming), else None."""
    stem = path.stem.removeprefix("mmlu_").replace("_", "-")
    parts = stem.split("-")
    if len(parts[0]) in (2, 3) and parts[0].isalpha():
        return "-".join([parts[0].lower(), *parts[1:]])
    return None


def _rows(path: Path, report: RowReport) -> list[tuple[int, str, MCItem]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            if header is None:
                raise InputError.one(
                    path, None, "(file)", "empty file: expected a header row " + ", ".join(COLUMNS)
                )
            offset = 1 if header and header[0].strip() == "" else 0
            if [h.strip() for h in header[offset:]] != list(COLUMNS):
                raise InputError.one(
                    path, 1, "(header)", f"expected columns {', '.join(COLUMNS)}, found {header}"
                )
            out = []
            for row, fields in enumerate(reader, start=2):
                report.row(path)
                picked = _row(path, row, fields[offset:], report)
                if picked is not None:
                    out.append((row, *picked))
            return out
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError.one(path, None, "(file)", f"cannot read CSV: {err}") from None


def _row(path: Path, row: int, fields: list[str], report: RowReport) -> tuple[str, MCItem] | None:
    if len(fields) != len(COLUMNS):
        report.bad(path, row, "(row)", f"expected {len(COLUMNS)} columns, found {len(fields)}")
        return None
    question, a, b, c, d, answer, subject = fields
    if not question.strip() or not subject.strip():
        report.bad(path, row, "Question" if not question.strip() else "Subject", "empty")
        return None
    try:
        return subject.strip(), MCItem(
            id=str(row), question=question, options=[a, b, c, d], answer=answer.strip()
        )
    except ValidationError as err:
        report.bad(path, row, "Answer", str(err.errors()[0]["msg"]).removeprefix("Value error, "))
        return None


def import_mmmlu(
    path: Path, *, language: str | None = None, exam_id: str | None = None, shots: int = 0,
    instruction: str | None = None, title: str | None = None, skip_bad: bool = False,
    warn: Warn | None = None,
) -> Exam:  # fmt: skip
    """One exam for the language of ``path``: a section per subject, 0-shot unless ``shots``."""
    language = language or language_of(path)
    if language is None:
        raise InputError.one(
            path, None, "--language", "cannot tell the language from the file name; pass --language"
        )
    check_language(language, "--language")
    if shots < 0:
        raise InputError.one(path, None, "shots", f"--shots must be 0 or more, got {shots}")
    report = RowReport(skip_bad=skip_bad, warn=warn)
    rows = _rows(path, report)
    report.finish()
    if not rows:
        raise InputError.one(path, None, "(file)", "no question rows")
    default = f"mmmlu-{language}"
    exam_id = checked_exam_id(default if exam_id is None else exam_id, given=exam_id is not None, source=path)
    by_subject: dict[str, list[tuple[int, MCItem]]] = {}
    for row, subject, item in rows:
        by_subject.setdefault(subject, []).append((row, item))
    sections = [
        _section(exam_id, subject, found, shots, instruction) for subject, found in by_subject.items()
    ]
    return Exam(
        id=exam_id, title=title or f"MMMLU ({language})",
        source=f"{CITATION}; items from {path.name}", license=LICENSE, language=language,
        description=f"{len(rows)} human-translated MMLU questions in {language}, {shots}-shot.",
        sections=[s for s in sections if s is not None],
    )  # fmt: skip


def _section(
    exam_id: str, subject: str, found: list[tuple[int, MCItem]], shots: int, instruction: str | None
) -> Section | None:
    readable = subject.replace("_", " ")
    exemplars: list[MCExemplar | ResponseExemplar] = [
        MCExemplar(question=i.question, options=i.options, answer=i.answer, explanation="")
        for _, i in found[:shots]
    ]
    items = [item.model_copy(update={"id": f"{exam_id}-{row}"}) for row, item in found[shots:]]
    if not items:
        return None
    text = instruction or "The following are multiple choice questions (with answers) about {subject}."
    return Section(
        id=subject.translate(_SECTION_ID), title=readable.capitalize(), kind="multiple_choice",
        template="mmlu_kshot", instruction=text.replace("{subject}", readable),
        sampling=Sampling(mode="single", temperature=0, max_tokens=5), exemplars=exemplars, items=items,
    )  # fmt: skip


def mmmlu_header(path: Path) -> str:
    return (
        "Generated by `examharness import mmmlu` from the file below; re-run it rather than editing\n"
        f"this file by hand. Source: {CITATION}. License: {LICENSE}.\n"
        f"Items: {path.name} (sha256 {file_digest(path)}). Item ids are <exam id>-<row>, <row> the\n"
        "1-based number of the CSV record (the header is record 1)."
    )
