"""``contamination.json``: save and load, the text summary (models: :mod:`examharness.contamfile`)."""

from __future__ import annotations

from pathlib import Path

from examharness.contamfile import ContaminationReport
from examharness.errors import InputError
from examharness.jsonfiles import read_model


def save_report(report: ContaminationReport, path: Path) -> None:
    try:
        path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        raise InputError.one(path, None, "--out", f"cannot write: {err.strerror or err}") from None


def load_report(path: Path) -> ContaminationReport:
    return read_model(path, ContaminationReport)


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
