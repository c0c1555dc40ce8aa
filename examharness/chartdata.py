"""The data of ``chart``: the GPT-4 report's Figure 4 for run folders, a published result set, or both.

Each run becomes one series: its model name as label (with the run id added when two runs share
a model), and per exam the lower bound of the scored percentile range from ``scores.json``.
With ``--published`` the runs' exam names are matched to the published rows
(:func:`examharness.chart.align_to_published`) so their bars sit beside the published ones.

Baseline (the series that orders the exams): ``--baseline`` (a run folder or a series label);
otherwise, with ``--published``, the published figure's own baseline (GPT-3.5 for the GPT-4
report), so runs drawn beside it keep the report's order; otherwise the first run.
``--shared-only`` keeps the exams every series has a value for.
"""

from __future__ import annotations

from pathlib import Path

from examharness.chart import (
    ChartData,
    ChartSeries,
    align_to_published,
    build_chart_data,
    series_from_published,
)
from examharness.errors import InputError
from examharness.published import PublishedResults, load_published
from examharness.records import ExamScore, RunScores
from examharness.report import editions_summary
from examharness.results import RunFolder


def _low(e: ExamScore) -> float | None:
    """The plotted value: the lower bound of the reported percentile (after the contamination rule)."""
    pct = e.headline().percentile
    return pct.low if pct is not None else None


def _exam_label(e: ExamScore, titles: list[str]) -> str:
    """An exam's name on the chart: its ``published_label`` if it has one, else its title, with
    its id when two exams share a title."""
    if e.published_label is not None:
        return e.published_label
    return e.title if titles.count(e.title) == 1 else f"{e.title} ({e.exam})"


def _exam_values(run: RunScores) -> dict[str, float | None]:
    """Chart name -> plotted value; two exams claiming one published row is an error."""
    titles = [e.title for e in run.exams]
    values: dict[str, float | None] = {}
    owner: dict[str, str] = {}
    for e in run.exams:
        name = _exam_label(e, titles)
        if name in owner:
            raise InputError.one(run.run_id, None, "published_label",
                                 f"exams {owner[name]!r} and {e.exam!r} both stand for {name!r}")
        owner[name] = e.exam
        values[name] = _low(e)
    return values


def run_series(runs: list[RunScores]) -> list[ChartSeries]:
    """One series per run; a model name used twice gets the run id in its label."""
    models = [r.model for r in runs]
    out = []
    for r in runs:
        label = r.model if models.count(r.model) == 1 else f"{r.model} ({r.run_id})"
        out.append(ChartSeries(label=label, values=_exam_values(r)))
    return out


def _shared(series: list[ChartSeries]) -> list[ChartSeries]:
    keep = set.intersection(*({e for e, v in s.values.items() if v is not None} for s in series))
    return [s.model_copy(update={"values": {e: v for e, v in s.values.items() if e in keep}})
            for s in series]  # fmt: skip


def _baseline(choice: str | None, runs: list[Path], series: list[ChartSeries], n_runs: int,
              pub: PublishedResults | None) -> str:  # fmt: skip
    """The ordering series' label (module docstring)."""
    labels = [s.label for s in series]
    if choice is not None:
        if choice in labels:
            return choice
        resolved = [p.resolve() for p in runs]
        if Path(choice).resolve() in resolved:
            return labels[resolved.index(Path(choice).resolve())]
        raise InputError.one("command line", None, "--baseline",
                             f"{choice!r} is neither a charted run folder nor one of {labels}")  # fmt: skip
    if pub is not None and pub.figure is not None and pub.figure.baseline in labels:
        return pub.figure.baseline
    return labels[0]


def chart_data_for(
    runs: list[Path], *, published: str | None = None, published_runs: list[str] | None = None,
    baseline: str | None = None, shared_only: bool = False, title: str | None = None,
) -> ChartData:  # fmt: skip
    """The chart's data for run folders and/or a published result set (no drawing)."""
    if not runs and published is None:
        raise InputError.one("command line", None, "runs", "give run folders and/or --published NAME")
    scored = [RunFolder(p).read_scores() for p in runs]
    series = run_series(scored)
    pub = load_published(published) if published is not None else None
    if pub is not None:
        series = [align_to_published(s, pub) for s in series]
        series += series_from_published(pub, published_runs)
    elif published_runs:
        raise InputError.one("command line", None, "--published-runs", "needs --published NAME")
    if shared_only:
        series = _shared(series)
    base = _baseline(baseline, runs, series, len(runs), pub)
    if title is None and pub is not None and pub.figure is not None and base == pub.figure.baseline:
        title = pub.figure.title
    data = build_chart_data(series, base, title)
    editions = editions_summary([e for r in scored for e in r.exams])
    return data if editions is None else data.model_copy(update={"notes": [*data.notes, editions]})
