"""``contamination.json``: the report models, save and load, the text summary, the clean subset."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from examharness.contamination.method import SUBSTRING_LENGTH, SUBSTRINGS_PER_ITEM
from examharness.errors import InputError

SCHEMA_VERSION = 1


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

    schema_version: int = SCHEMA_VERSION
    method: str = "GPT-4 technical report, Appendix C: substring match on normalised text"
    seed: int
    include_options: bool = False
    text_field: str = "text"
    substrings_per_item: int = SUBSTRINGS_PER_ITEM
    substring_length: int = SUBSTRING_LENGTH
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


def save_report(report: ContaminationReport, path: Path) -> None:
    try:
        path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        raise InputError.one(path, None, "--out", f"cannot write: {err.strerror or err}") from None


def load_report(path: Path) -> ContaminationReport:
    try:
        return ContaminationReport.model_validate_json(path.read_bytes())
    except OSError as err:
        raise InputError.one(path, None, "(file)", f"cannot read: {err.strerror}") from None
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(map(str, first["loc"]))
        raise InputError.one(path, None, field, first["msg"]) from None


def render_text(report: ContaminationReport, max_hits: int = 20) -> str:
    """A plain-text summary for the terminal: one line per exam, then hits and skipped files."""
    lines = [f"{'exam':30} {'items':>6} {'contaminated':>12} {'share':>7}"]
    for e in report.exams:
        lines.append(f"{e.exam_id:30} {e.n_items:6d} {len(e.contaminated):12d} {e.share_contaminated:7.1%}")
    if report.hits:
        lines.append(f"\nhits (first {min(max_hits, len(report.hits))} of {len(report.hits)}):")
        lines += [
            f"  {h.exam_id}/{h.item_id}  {h.file}:{h.line} (char {h.offset})  {h.pattern}"
            for h in report.hits[:max_hits]
        ]
    if report.skipped:
        lines.append(f"\nskipped ({len(report.skipped)}):")
        lines += [f"  {s.file}{f':{s.line}' if s.line else ''}: {s.reason}" for s in report.skipped]
    lines.append(
        f"\n{len(report.corpus_files)} corpus files, {report.bytes_scanned / 1e6:.1f} MB "
        f"in {report.seconds:.1f} s ({report.mb_per_s:.0f} MB/s)"
    )
    return "\n".join(lines)
