"""``scales check --published NAME``: do our scales turn a report's own section scores into its results?

A section-scores file (``examharness/data/section_scores/<id>.json``) holds, per exam, the
report's section percentages (GPT-4 report: Table 10) and the overall result those produced
(Table 9's full-test column). :func:`check_published` feeds each exam's percentages through the
exam's scale, in the edition the report's era used, and compares scaled score and percentile
range with the report's.

Match rules (chosen once, here):

* scaled: our score equals the leading number of the report's score string (``"163 / 170"``).
* percentile, in whole percents truncated (the report's AP ranges are: 2022 Calculus BC's 4 is
  43.6-59.1, printed "43rd - 59th"; English Language's 2 is 14.5-44.5, printed "14th - 44th"):
  a range ``"71st - 88th"`` matches when both ends equal ours; ``"~80th"`` when it equals either
  end of ours, since a table prints one figure per score (ETS and LSAC the percent below, the
  College Board the percent at or below).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from rich.console import Console
from rich.table import Table

from examharness.errors import InputError, Problem
from examharness.published import parse_percentile
from examharness.report import percentile_text
from examharness.scales import Scale, Strict, load_scale
from examharness.scoring import PercentileRange, SectionRaw, percentile_range, to_scaled


class PublishedSection(Strict):
    """One section row of the report (Table 10: name, #questions, percent of max score)."""

    id: str
    """The scale's section id this row feeds (``all`` when the scale has no sections)."""
    name: str
    """Row label as printed."""
    questions: int = Field(ge=1)
    percent: float = Field(ge=0, le=100)
    applies_to: list[str] | None = None
    """Scale section ids that all take this row's percentage (default: ``[id]``)."""


class PublishedResult(Strict):
    score: str
    """The report's score string, e.g. ``"163 / 170"``."""
    percentile: str | None
    """The report's percentile string, e.g. ``"~80th"`` or ``"71st - 88th"``."""


class SectionScoresExam(Strict):
    exam: str
    """Row label as printed in the report."""
    scale: str
    """Scale name (``exams/scales/<scale>.yaml``)."""
    edition: int | None = None
    """Edition to use for this exam; default the file's ``edition``."""
    sections: list[PublishedSection] = Field(min_length=1)
    published: PublishedResult
    gap: str | None = None
    """Why this row is not expected to match, printed only when it does not."""


class SectionScores(Strict):
    schema_version: Literal[1] = 1
    id: str
    title: str
    source: str
    run: str
    """The report's column these section scores belong to."""
    edition: int
    """Default scale edition: the tables current when the report took its percentiles."""
    notes: list[str] = Field(default_factory=list)
    exams: list[SectionScoresExam]


class CheckRow(Strict):
    """One exam: what our scale makes of the report's section scores, beside the report's result."""

    exam: str
    scale: str
    edition: int | None
    edition_label: str | None
    sections: list[PublishedSection]
    scaled: float
    composite: float | None
    percentile: PercentileRange | None
    published_score: str
    published_percentile: str | None
    scaled_match: bool
    percentile_match: bool
    match: bool
    percentile_of_published: PercentileRange | None
    """Our percentile range for the report's own score: tells a wrong scaled score apart from a
    wrong percentile table."""
    table_match: bool
    """Whether :attr:`percentile_of_published` matches the report's percentile."""
    reason: str | None
    """The file's ``gap`` (or a computed one) when the row does not match; None when it does."""
    approximation: str | None


class CheckResult(Strict):
    id: str
    source: str
    run: str
    rows: list[CheckRow]


def _data_dir() -> Path:
    return Path(str(resources.files("examharness").joinpath("data", "section_scores")))


def load_section_scores(name_or_path: str | Path) -> SectionScores:
    """A shipped section-scores file by name (``gpt-4-technical-report``) or any file by path."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = _data_dir() / f"{name_or_path}.json"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in _data_dir().glob("*.json"))) or "(none)"
            raise InputError.one(str(name_or_path), None, "--published",
                                 f"no section scores of that name; known: {known}")
    try:
        return SectionScores.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as err:
        raise InputError.one(path, None, "", f"cannot read: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise InputError.one(path, err.lineno, "", f"invalid JSON: {err.msg}") from err
    except ValidationError as err:
        raise InputError([Problem(str(path), None, ".".join(map(str, e["loc"])), e["msg"])
                          for e in err.errors()]) from err


def section_raws(sections: Sequence[PublishedSection]) -> list[SectionRaw]:
    """Section points from the printed percentages: ``percent x questions / 100``, snapped to the
    whole number it came from when within 0.01 (the report prints percents to 0.01)."""
    raws = []
    for s in sections:
        points = s.percent * s.questions / 100
        if abs(points - round(points)) < 0.01:
            points = float(round(points))
        for sid in s.applies_to or [s.id]:
            raws.append(SectionRaw(section_id=sid, points=points, max_points=s.questions))
    return raws


def _leading_number(text: str) -> float | None:
    m = re.match(r"\s*(\d+(?:\.\d+)?)", text)
    return float(m[1]) if m else None


def percentile_matches(ours: PercentileRange | None, printed: str | None) -> bool:
    """The module docstring's rule; no percentile on either side is no match."""
    low, high = parse_percentile(printed)
    if ours is None or high is None:
        return False
    ends = (math.floor(ours.low + 1e-6), math.floor(ours.high + 1e-6))
    if low is None or low != high:
        return (low, high) == ends
    return low in ends


def check_exam(entry: SectionScoresExam, scale: Scale, edition: int | None) -> CheckRow:
    """Score one exam's published sections with ``scale`` in ``edition`` and compare."""
    chosen, note = scale.select(edition)
    result = to_scaled(chosen, section_raws(entry.sections))
    pct = percentile_range(chosen, result.scaled)
    published_scaled = _leading_number(entry.published.score)
    scaled_ok = published_scaled == result.scaled
    theirs = percentile_range(chosen, published_scaled) if published_scaled is not None else None
    pct_ok = percentile_matches(pct, entry.published.percentile)
    reason = None
    if not (scaled_ok and pct_ok):
        reason = entry.gap or ("no percentile table in this edition" if pct is None else "not known")
    spread = [s for s in entry.sections if s.applies_to]
    notes = [note, *(f"{s.name}: one percentage applied to {', '.join(s.applies_to or [])}"
                     for s in spread), result.approximation]
    return CheckRow(
        exam=entry.exam, scale=chosen.id, edition=chosen.edition, edition_label=chosen.edition_label,
        sections=entry.sections, scaled=result.scaled, composite=result.composite, percentile=pct,
        published_score=entry.published.score, published_percentile=entry.published.percentile,
        scaled_match=scaled_ok, percentile_match=pct_ok, match=scaled_ok and pct_ok, reason=reason,
        percentile_of_published=theirs,
        table_match=percentile_matches(theirs, entry.published.percentile),
        approximation="; ".join(n for n in notes if n) or None,
    )


def check_published(name_or_path: str | Path, scale_dirs: Sequence[Path],
                    edition: int | None = None) -> CheckResult:
    """Every exam of a section-scores file whose scale exists, checked (see :func:`check_exam`).

    ``edition`` overrides the file's editions for every exam.
    """
    data = load_section_scores(name_or_path)
    rows = []
    for entry in data.exams:
        scale = load_scale(entry.scale, list(scale_dirs))
        year = edition if edition is not None else (
            entry.edition if entry.edition is not None else data.edition)
        rows.append(check_exam(entry, scale, year))
    return CheckResult(id=data.id, source=data.source, run=data.run, rows=rows)


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def _verdict(r: CheckRow) -> str:
    if r.match:
        return "yes"
    if r.scaled_match:
        return "scaled only"
    return "table only" if r.table_match else "no"


def print_check(result: CheckResult, console: Console | None = None) -> None:
    """The check as a terminal table, then each row's reason and approximations.

    "table only": the scaled score differs, but our table puts the report's own score where the
    report does.
    """
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    table = Table("exam", "sections (% of max)", "scale edition", "scaled", "report", "percentile",
                  "report", "match", title=f"{result.id}: {result.run} section scores through our scales",
                  title_justify="left")
    for r in result.rows:
        pct = "-" if r.percentile is None else percentile_text(r.percentile.low, r.percentile.high)
        table.add_row(
            r.exam, ", ".join(f"{s.id} {s.percent:g}" for s in r.sections),
            f"{r.scale} {r.edition if r.edition is not None else '(not stated)'}", _num(r.scaled),
            r.published_score, pct, r.published_percentile or "-", _verdict(r),
        )
    console.print(table)
    matched = sum(r.match for r in result.rows)
    console.print(f"{matched} of {len(result.rows)} rows match (percentiles compared in whole percents, "
                  f"truncated). Source: {result.source}")
    for r in result.rows:
        if r.reason:
            console.print(f"  [dim]{r.exam}:[/dim] why not: {r.reason}")
        if r.approximation:
            console.print(f"  [dim]{r.exam}:[/dim] {r.approximation}")
