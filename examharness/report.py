"""Terminal and JSON views of a run's ``scores.json`` (never recomputed, never a model call)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from examharness.code.views import pass_at_k_lines
from examharness.records import HEALTH, ExamScore, ItemCounts, RunScores


def _num(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.{digits}f}"


def ordinal(x: float) -> str:
    """``1st``, ``2nd``, ``53rd``, ``11th``, ``86.5th``: how percentiles are said."""
    text = _num(x)
    if not float(x).is_integer():
        return f"{text}th"
    n = int(x)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{text}{suffix}"


def percentile_text(low: float, high: float) -> str:
    return ordinal(low) if low == high else f"{ordinal(low)}–{ordinal(high)}"


def _bar(low: float, width: int = 20) -> str:
    filled = round(low / 100 * width)
    return "█" * filled + "░" * (width - filled)


def _pct(e: ExamScore) -> str:
    if e.percentile is None:
        return "-"
    p = e.percentile
    rng = percentile_text(p.low, p.high)
    return f"{_bar(p.low)} {rng}"


def _ci(e: ExamScore) -> str:
    parts = []
    if e.ci.scaled is not None:
        parts.append(f"scaled {_num(e.ci.scaled[0])}–{_num(e.ci.scaled[1])}")
    elif e.ci.raw is not None:
        parts.append(f"raw {_num(e.ci.raw[0])}–{_num(e.ci.raw[1])}")
    if e.ci.percentile is not None:
        parts.append(f"pct {_num(e.ci.percentile[0])}–{_num(e.ci.percentile[1])}")
    return ", ".join(parts) or "-"


def health(counts: ItemCounts) -> str:
    bad = [f"{k} {counts.status(k)}" for k in HEALTH if counts.status(k)]
    return ", ".join(bad) if bad else "all answers read"


def scale_text(e: ExamScore) -> str:
    """The scale and its edition, as reports show them: ``gre_quantitative 2023``."""
    if e.scale is None:
        return ""
    year = e.edition.year if e.edition is not None else None
    return e.scale + (f" {year}" if year is not None else " (edition not stated)")


def edition_note(e: ExamScore) -> str | None:
    """One line naming the scale edition used and where its numbers come from."""
    if e.edition is None:
        return None
    year = "not stated" if e.edition.year is None else str(e.edition.year)
    label = f" ({e.edition.label})" if e.edition.label else ""
    return f"scale {e.scale}, edition {year}{label}; source: {e.edition.source}"


def editions_summary(exams: Sequence[ExamScore]) -> str | None:
    """The scale editions behind a set of scores in one line, for charts."""
    named = sorted({scale_text(e) for e in exams if e.scale})
    return f"Scale editions used: {', '.join(named)}." if named else None


def print_report(scores: RunScores, *, sections: bool = False, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"run {scores.run_id} · model {scores.model}", title_justify="left")
    for col in ("exam", "raw / max", "scaled", "percentile (lower bound bar)", "95% CI", "extraction health"):
        table.add_column(col)
    for e in scores.exams:
        table.add_row(
            e.title, f"{_num(e.raw)} / {_num(e.max_raw)} ({e.accuracy:.0%})",
            f"{_num(e.scaled)}" + (f" ({scale_text(e)})" if e.scale else ""), _pct(e), _ci(e),
            health(e.items),
        )  # fmt: skip
    console.print(table)
    for e in scores.exams:
        notes = [*e.provisional]
        if (edition := edition_note(e)) is not None:
            notes.append(edition)
        if e.approximation:
            notes.append(f"approximation: {e.approximation}")
        if e.contamination is not None:
            c = e.contamination
            clean = c.clean
            desc = f"{len(c.contaminated)} contaminated ({c.share:.0%})"
            if clean is not None:
                desc += f"; clean subset {_num(clean.raw)}/{_num(clean.max_raw)} scaled {_num(clean.scaled)}"
            notes.append(f"contamination: {desc}; reported: {c.reported} score ({c.rule})")
        if e.agreement:
            notes.append(
                f"grader agreement: exact {e.agreement.exact:.0%}, adjacent {e.agreement.adjacent:.0%}"
            )
        notes.extend(pass_at_k_lines(e.pass_at_k))
        for n in notes:
            console.print(f"  [dim]{e.exam}:[/dim] {n}")
        if sections:
            st = Table("section", "raw / max", "weight", "items", "health", title=f"{e.title}: sections")
            for s in e.sections:
                st.add_row(s.id, f"{_num(s.raw)} / {_num(s.max_raw)}", _num(s.weight),
                           str(s.items.total), health(s.items))  # fmt: skip
            console.print(st)
    _print_languages(scores, console)


def _print_languages(scores: RunScores, console: Console) -> None:
    """Accuracy per language, when the run has translated exams (module ``languages``)."""
    from examharness.languages import by_language

    rows = by_language(scores)
    if len(rows) < 2 and all(r.language == "en" for r in rows):
        return
    table = Table("language", "exams", "items", "accuracy", "95% CI", title="accuracy by language",
                  title_justify="left")  # fmt: skip
    for r in sorted(rows, key=lambda r: -r.accuracy):
        ci = "-" if r.ci is None else f"{r.ci[0]:.1f}-{r.ci[1]:.1f}%"
        table.add_row(f"{r.label} ({r.language})", ", ".join(r.exams), str(r.items), f"{r.accuracy:.1f}%", ci)
    console.print(table)


def print_summary(scores: RunScores) -> None:
    print_report(scores, console=Console(stderr=True))


def report_json(scores: RunScores) -> dict[str, Any]:
    """The documented ``report --json`` shape (README): per exam ``exam``, ``raw``, ``max_raw``,
    ``scaled``, ``percentile``, ``ci`` and ``items`` counts, plus everything else scored."""
    from examharness.languages import by_language

    data: dict[str, Any] = scores.model_dump(mode="json")
    data["languages"] = [row.model_dump(mode="json") for row in by_language(scores)]
    return data


def report_published(name: str, *, as_json: bool) -> int:
    from examharness.published import load_published

    pub = load_published(name)
    if as_json:
        import json

        print(json.dumps(pub.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return 0
    table = Table("exam", *[r.label for r in pub.runs], title=pub.title, title_justify="left")
    for row in pub.exams:
        cells = []
        for r in pub.runs:
            s = row.scores.get(r.label)
            cells.append("-" if s is None else f"{s.score} ({s.percentile or 'n/a'})")
        table.add_row(row.label, *cells)
    Console().print(table)
    return 0
