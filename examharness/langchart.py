"""The report's Figure 5 for runs of translated exams: accuracy per language, sorted.

Built from result files alone (``scores.json`` of each run, grouped by language with
:func:`examharness.languages.by_language`) plus, optionally, the published per-language numbers
(``examharness/data/languages/<id>.json``).

Figure 5 of the GPT-4 report: horizontal bars, one per language, sorted by accuracy, with
vertical reference lines for the English baselines (random guessing, Chinchilla, PaLM, GPT-3.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from pydantic import BaseModel, ConfigDict

from examharness.errors import InputError
from examharness.jsonfiles import read_model
from examharness.languages import LanguageScore, by_language, language_name, primary
from examharness.records import RunScores

_PALETTE = ("#3182bd", "#2ca25f", "#e6550d", "#756bb1", "#636363")
_LINES = ("#999999", "#d62728", "#9467bd", "#8c564b", "#17becf")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PublishedLanguage(Strict):
    label: str
    """The language as printed in the source."""
    language: str
    """BCP-47 tag (an examharness addition, to match runs)."""
    accuracy: float
    """Percent."""


class Baseline(Strict):
    label: str
    accuracy: float


class PublishedLanguages(Strict):
    """A published per-language result (e.g. the GPT-4 report's Figure 5), with its source."""

    schema_version: int = 1
    id: str
    title: str
    source: str
    method: str | None = None
    caption: str | None = None
    series: str
    """Label of the model whose per-language accuracies these are."""
    languages: list[PublishedLanguage]
    baselines: list[Baseline] = []
    notes: list[str] = []


class LanguageSeries(Strict):
    label: str
    scores: list[LanguageScore]


class LanguageChartData(Strict):
    """What the chart shows and ``--json`` prints."""

    title: str
    languages: list[str]
    """Language tags, bottom to top (the first series' accuracy, ascending)."""
    series: list[LanguageSeries]
    baselines: list[Baseline] = []
    source: str | None = None


def _published_dir() -> Path:
    return Path(str(resources.files("examharness").joinpath("data", "languages")))


def load_published_languages(name_or_path: str) -> PublishedLanguages:
    """A shipped file by name (``gpt-4-technical-report``) or any file by path."""
    path = Path(name_or_path)
    if not (path.suffix == ".json" or path.is_file()):
        path = _published_dir() / f"{name_or_path}.json"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in _published_dir().glob("*.json")))
            raise InputError.one(
                name_or_path,
                None,
                "--published",
                f"no published per-language results of that name; known: {known}",
            )
    return read_model(path, PublishedLanguages)


def published_series(pub: PublishedLanguages) -> LanguageSeries:
    return LanguageSeries(label=pub.series, scores=[
        LanguageScore(language=p.language, label=p.label, accuracy=p.accuracy, items=0, exams=[])
        for p in pub.languages
    ])  # fmt: skip


def language_chart_data(
    runs: Sequence[tuple[str, RunScores]],
    published: PublishedLanguages | None = None,
    title: str | None = None,
) -> LanguageChartData:
    """Series per run (label, scores), then the published series.

    With runs, the chart shows the languages the runs have; with none, every published language.
    Languages are sorted by the first series' accuracy (then the next series'), lowest at the bottom.
    """
    series = [LanguageSeries(label=label, scores=by_language(run)) for label, run in runs]
    if published is not None:
        series.append(published_series(published))
    if not series or not any(s.scores for s in series):
        raise InputError.one("chart", None, "--languages", "no language has a result: nothing to draw")
    values = [{primary(x.language): x.accuracy for x in s.scores} for s in series]
    shown = values[: len(runs)] or values  # with runs: the languages they have; else all published
    tags = list(dict.fromkeys(tag for v in shown for tag in v))
    order = sorted(tags, key=lambda tag: ([v.get(tag, -1.0) for v in values], tag))
    return LanguageChartData(
        title=title or (published.title if published and not runs else "Accuracy across languages"),
        languages=order, series=series, baselines=published.baselines if published else [],
        source=published.source if published else None,
    )  # fmt: skip


def draw_language_chart(data: LanguageChartData) -> Figure:
    """Horizontal bars (Figure 5's layout) on an Agg canvas; missing values draw no bar."""
    n, k = len(data.languages), len(data.series)
    fig = Figure(figsize=(9.0, max(4.0, 1.5 + 0.32 * n * max(1, k) ** 0.5)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    height = 0.8 / max(k, 1)
    for i, s in enumerate(data.series):
        values = {primary(x.language): x for x in s.scores}
        ys, xs, errs = [], [], []
        for j, tag in enumerate(data.languages):
            if tag in values:
                x = values[tag]
                ys.append(j + (i - (k - 1) / 2) * height)
                xs.append(x.accuracy)
                errs.append((x.accuracy - x.ci[0], x.ci[1] - x.accuracy) if x.ci else (0.0, 0.0))
        xerr = list(zip(*errs, strict=True)) if errs else None
        ax.barh(ys, xs, height, color=_PALETTE[i % len(_PALETTE)], label=s.label, zorder=2,
                xerr=xerr, error_kw={"elinewidth": 0.8})  # fmt: skip
    for b, colour in zip(data.baselines, _LINES * 4, strict=False):
        ax.axvline(
            b.accuracy, color=colour, linestyle="--", linewidth=1, label=f"{b.label} {b.accuracy:.1f}%"
        )
    labels = [language_name(t) for t in data.languages]
    ax.set_yticks(range(n), labels)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlim(0, 100)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
    ax.grid(axis="x", alpha=0.3, zorder=0)
    ax.set_xlabel("Accuracy →")
    ax.set_title(data.title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def render_language_chart(data: LanguageChartData, out: Path) -> None:
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise InputError.one(out, None, "--out", "chart file must end in .png or .svg")
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_language_chart(data).savefig(out, format=fmt, dpi=150)
