"""The GPT-4 Technical Report's Figure 4 for any set of series: percentile bars per exam.

The chart is built in two steps so the rule can be tested without drawing: :func:`build_chart_data`
fixes which exams appear and in what order (a pure function), :func:`render_chart` draws it.

Ordering rule (the report's caption: "Exams are ordered from low to high based on GPT-3.5
performance"), applied to the ``baseline`` series:

1. Exams with a baseline value come first, from low to high value; equal values are ordered by
   exam label (case-insensitive), then by input order (first appearance across the series, in
   series order). Label order reproduces the report's two ties (AMC 10 before Uniform Bar Exam at
   10; AP Statistics before LSAT at 40).
2. Exams the baseline lacks (missing or None) follow, by label, then input order.
3. Exams with no value in any series are dropped: there is nothing to draw.

A missing or None value draws no bar; the group keeps its slot so bars stay aligned with the
legend. Values are percentiles from 0 to 100 (the lower end of each range, as in the report).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from pydantic import BaseModel, ConfigDict, Field

from examharness.errors import InputError
from examharness.published import PublishedExam, PublishedResults, PublishedScore, find_exam

Y_LABEL = "Estimated percentile lower bound (among test takers)"
X_LABEL = "Exam"
_PALETTE = ("#3182bd", "#2ca25f", "#99d8c9", "#e6550d", "#756bb1", "#fdae6b", "#636363", "#de2d26")


class ChartSeries(BaseModel):
    """One bar per exam for one model/run, in legend order."""

    model_config = ConfigDict(extra="forbid")

    label: str
    values: dict[str, float | None]
    """Exam label -> percentile lower bound (0-100); None or missing = no bar."""
    color: str | None = None
    """Matplotlib colour; None = next unused colour of the default palette."""
    notes: dict[str, str] = Field(default_factory=dict)
    """Exam label -> caveat printed on the chart when that exam is shown."""


class ChartData(BaseModel):
    """Everything the chart shows, ordered; also the ``--json`` output."""

    model_config = ConfigDict(extra="forbid")

    title: str
    baseline: str
    """Label of the series that orders the exams."""
    exams: list[str]
    """X-axis groups, left to right."""
    series: list[ChartSeries]
    """Bars in each group and legend entries, in this order; values hold every shown exam."""
    notes: list[str] = Field(default_factory=list)
    y_label: str = Y_LABEL


def build_chart_data(
    series: Sequence[ChartSeries], baseline: str, title: str | None = None
) -> ChartData:
    """Order the exams by the baseline series (module docstring) and check the values.

    ``title`` defaults to the report's wording:
    ``"Exam results (ordered by <baseline> performance)"``.
    """
    _check(series, baseline)
    seen: dict[str, int] = {}
    for s in series:
        for exam, value in s.values.items():
            if value is not None:
                seen.setdefault(exam, len(seen))
    base = next(s for s in series if s.label == baseline).values
    with_base = sorted(
        (e for e in seen if base.get(e) is not None),
        key=lambda e: (base[e], e.casefold(), seen[e]),
    )
    without = sorted(
        (e for e in seen if base.get(e) is None), key=lambda e: (e.casefold(), seen[e])
    )
    exams = with_base + without
    notes = list(dict.fromkeys(s.notes[e] for s in series for e in exams if e in s.notes))
    return ChartData(
        title=title or f"Exam results (ordered by {baseline} performance)",
        baseline=baseline,
        exams=exams,
        series=[_restrict(s, exams) for s in series],
        notes=notes,
    )


def _restrict(s: ChartSeries, exams: list[str]) -> ChartSeries:
    """The series with a value (maybe None) for exactly the shown exams, in chart order."""
    return s.model_copy(
        update={
            "values": {e: s.values.get(e) for e in exams},
            "notes": {e: s.notes[e] for e in exams if e in s.notes},
        }
    )


def _check(series: Sequence[ChartSeries], baseline: str) -> None:
    labels = [s.label for s in series]
    if not labels:
        raise InputError.one("<chart>", None, "series", "no series to chart")
    duplicates = sorted({x for x in labels if labels.count(x) > 1})
    if duplicates:
        raise InputError.one("<chart>", None, "series", f"duplicate series labels: {duplicates}")
    if baseline not in labels:
        raise InputError.one("<chart>", None, "baseline", f"{baseline!r} is not one of {labels}")
    for s in series:
        for exam, v in s.values.items():
            if v is not None and not 0 <= v <= 100:
                raise InputError.one(
                    "<chart>", None, f"{s.label}.{exam}", f"percentile {v} is outside 0-100"
                )


def plot_value(cell: PublishedScore) -> float | None:
    """What a published cell plots: its lower bound; for "below Nth", N.

    The report does not say what Figure 4 plots for Codeforces' "below 5th". Its x-axis order
    (decoded from text extractions of the figure) puts Codeforces Rating between AMC 12 (GPT-3.5:
    4th) and AP English Literature (8th): 0 would put it second, its printed bound 5 reproduces
    the order. The chart carries a note saying so.
    """
    if cell.percentile_low is not None:
        return cell.percentile_low
    if cell.percentile is not None and cell.percentile.startswith("below"):
        return cell.percentile_high
    return None


def series_from_published(
    pub: PublishedResults, run_labels: Sequence[str] | None = None
) -> list[ChartSeries]:
    """One series per published run (table order unless ``run_labels`` picks and orders them).

    Only the rows the source plots (those with a short label) are included, keyed by short label.
    """
    runs = {r.label: r for r in pub.runs}
    chosen = list(run_labels) if run_labels is not None else list(runs)
    unknown = [label for label in chosen if label not in runs]
    if unknown:
        raise InputError.one(pub.id, None, "runs", f"unknown run(s) {unknown}; have {list(runs)}")
    rows = pub.plotted_exams()
    out = []
    for label in chosen:
        out.append(
            ChartSeries(
                label=label,
                values={row.label: plot_value(row.scores[label]) for row in rows},
                color=runs[label].color,
                notes={row.label: n for row in rows if (n := _below_note(row, row.scores[label]))},
            )
        )
    return out


def _below_note(row: PublishedExam, cell: PublishedScore) -> str:
    if cell.percentile_low is not None or plot_value(cell) is None:
        return ""
    return (
        f"{row.label}: the table prints '{cell.percentile}'; plotted at {plot_value(cell):g} "
        "(the report does not say what its figure plots)."
    )


def align_to_published(series: ChartSeries, pub: PublishedResults) -> ChartSeries:
    """Rename a run's exam keys (ids or titles) to the published chart labels they match.

    Matching is :func:`examharness.published.find_exam` (letters and digits, case-insensitive,
    row label / short label / aliases). Unmatched exams keep their names and go at the end of
    the chart. Two exams matching the same row is an error: one bar slot, two values.
    """
    renamed: dict[str, str] = {}
    for name in series.values:
        row = find_exam(pub, name)
        renamed[name] = row.label if row is not None else name
    origin: dict[str, str] = {}
    for name, key in renamed.items():
        if key in origin:
            raise InputError.one(
                series.label, None, "values", f"{origin[key]!r} and {name!r} both match {key!r}"
            )
        origin[key] = name
    return series.model_copy(
        update={
            "values": {renamed[n]: v for n, v in series.values.items()},
            "notes": {renamed.get(n, n): text for n, text in series.notes.items()},
        }
    )


def published_chart_data(
    pub: PublishedResults,
    run_labels: Sequence[str] | None = None,
    extra: Sequence[ChartSeries] = (),
    shared_only: bool = False,
) -> ChartData:
    """The source's figure, optionally with the user's runs beside it (``extra``, matched by name).

    Baseline and title come from the file's ``figure`` block (else its first run). With
    ``shared_only``, only exams that some extra series has a value for are kept.
    """
    published = series_from_published(pub, run_labels)
    aligned = [align_to_published(s, pub) for s in extra]
    if shared_only and aligned:
        keep = {e for s in aligned for e, v in s.values.items() if v is not None}
        published = [
            s.model_copy(update={"values": {e: v for e, v in s.values.items() if e in keep}})
            for s in published
        ]
    labels = [s.label for s in published]
    if pub.figure is not None and pub.figure.baseline in labels:
        return build_chart_data([*published, *aligned], pub.figure.baseline, pub.figure.title)
    return build_chart_data([*published, *aligned], labels[0] if labels else aligned[0].label)


def chart_data_json(data: ChartData) -> str:
    """The chart's data as indented JSON (what ``--json`` prints)."""
    return data.model_dump_json(indent=2)


def render_chart(data: ChartData, out: Path) -> None:
    """Write the chart to ``out``; the format follows its extension (``.png`` or ``.svg``)."""
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise InputError.one(out, None, "out", "chart file must end in .png or .svg")
    if not has_bars(data):
        raise InputError.one(out, None, "out", "nothing to draw: no exam has a percentile in any "
                             "series (an exam needs a scale with a percentile table; --shared-only "
                             "keeps only exams every series has)")
    fig = draw_chart(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None)


def draw_chart(data: ChartData) -> Figure:
    """Grouped bars, one group per exam, on an Agg canvas (no display, no pyplot global state).

    The figure widens with the number of exams and series so 26 rotated labels stay readable.
    """
    n_exams, n_series = max(len(data.exams), 1), max(len(data.series), 1)
    fig = Figure(
        figsize=(max(8.0, 2.0 + n_exams * (0.3 + 0.1 * n_series)), 7.0), layout="constrained"
    )
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / n_series
    for i, (s, colour) in enumerate(zip(data.series, _colours(data.series), strict=True)):
        offset = (i - (n_series - 1) / 2) * width
        bars = [(j + offset, s.values.get(e)) for j, e in enumerate(data.exams)]
        xs = [x for x, v in bars if v is not None]
        heights = [v for _, v in bars if v is not None]
        ax.bar(xs, heights, width, label=s.label, color=colour, zorder=2)
        _mark_zeros(ax, [x for x, v in bars if v == 0], width, colour)
    ax.set_xticks(
        range(len(data.exams)), data.exams, rotation=55, ha="right", rotation_mode="anchor"
    )
    ax.set_xlim(-0.6, len(data.exams) - 0.4)
    ax.set_ylim(0, 100)
    ax.set_yticks(range(0, 101, 20))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.set_ylabel(data.y_label)
    ax.set_xlabel(X_LABEL)
    ax.set_title(data.title)
    ax.legend(loc="upper left")
    if data.notes:
        ax.annotate(
            "\n".join(textwrap.fill(f"Note: {n}", 140) for n in data.notes),
            xy=(0.0, 0.0),
            xycoords=("axes fraction", ax.xaxis.label),
            xytext=(0, -6),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=8,
            color="#444444",
        )
    return fig


def _mark_zeros(ax: Axes, xs: list[float], width: float, colour: str) -> None:
    """A 0th-percentile bar has no height; draw a thick base line and ``0`` so it is not read
    as "no result" (which draws nothing)."""
    for x in xs:
        ax.plot([x - width / 2, x + width / 2], [0.6, 0.6], color=colour, linewidth=3,
                solid_capstyle="butt", zorder=3)  # fmt: skip
        ax.text(x, 1.5, "0", ha="center", va="bottom", fontsize=7, color=colour, zorder=3)


def has_bars(data: ChartData) -> bool:
    """Whether any series has a value to draw (a 0 counts; None does not)."""
    return any(v is not None for s in data.series for v in s.values.values())


def _colours(series: Sequence[ChartSeries]) -> list[str]:
    """Explicit colours as given; the rest from the palette, skipping colours already taken."""
    taken = {s.color for s in series if s.color}
    free = iter([c for c in _PALETTE if c not in taken] + list(_PALETTE) * len(series))
    return [s.color or next(free) for s in series]
