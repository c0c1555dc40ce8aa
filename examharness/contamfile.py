"""``contamination.json``: the file format of a contamination check (the scanner is
:mod:`examharness.contamination`).

Kept apart from the scanner so that scoring, which applies the report's rule to the clean subset,
and the views read the file without loading the scanner and its matcher.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

SCHEMA_VERSION: Literal[1] = 1


class SkippedFile(BaseModel):
    """A corpus file, or one line of a JSONL file, that was not scanned, and why."""

    file: str
    line: int | None = None
    reason: str


class ContamHit(BaseModel):
    """Where one sampled substring of an item was found (at most 3 places per substring)."""

    exam_id: str
    item_id: str
    pattern: str
    """The normalised substring that matched."""
    file: str
    line: int
    """1-based line of the file where the match starts (the record's line for JSONL)."""
    offset: int
    """Character offset where the match starts, in the original (decompressed, decoded) text:
    from the start of the file for text files, from the start of the record's field for JSONL."""


class ExamContamination(BaseModel):
    exam_id: str
    n_items: int
    item_ids: list[str]
    contaminated: list[str]
    """Ids of items with at least one sampled substring found in the corpus."""
    share_contaminated: float


class ContaminationReport(BaseModel):
    """``contamination.json``: everything needed to score the clean subset of each exam."""

    schema_version: Literal[1] = SCHEMA_VERSION
    method: str = "GPT-4 technical report, Appendix C: substring match on normalised text"
    seed: int
    include_options: bool = False
    text_field: str = "text"
    substrings_per_item: int
    substring_length: int
    corpus_files: list[str]
    exams: list[ExamContamination]
    hits: list[ContamHit]
    skipped: list[SkippedFile]
    """Unreadable or binary files and bad JSONL lines: reported, not fatal."""
    bytes_scanned: int
    """On-disk bytes read (compressed size for ``.gz``)."""
    seconds: float
    mb_per_s: float


def clean_item_ids(report: ContaminationReport, exam_id: str) -> set[str]:
    """Ids of the exam's items NOT found in the corpus: the subset for the uncontaminated score.

    Empty for an exam the report did not check (nothing is known to be clean); tell the two
    apart with ``report.exams``.
    """
    for exam in report.exams:
        if exam.exam_id == exam_id:
            return set(exam.item_ids) - set(exam.contaminated)
    return set()
