"""Figure 4 chart: ordering rule, published series, run matching, PNG/SVG/JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examharness.chart import (
    Y_LABEL,
    ChartData,
    ChartSeries,
    align_to_published,
    build_chart_data,
    chart_data_json,
    draw_chart,
    published_chart_data,
    render_chart,
    series_from_published,
)
from examharness.errors import InputError
from examharness.published import PublishedResults, load_published

# Figure 4's x axis, left to right. Decoded from a page-by-page text extraction of the report's
# p.6 (rotated tick labels come out right to left, in word fragments: "ce cien tal S men iron Env
# AP W EBR SAT ory Hist Art AP ..."); the method notes list it as source M4 (index id 60513696286).
REPORT_FIGURE4_ORDER = [
    "AP Calculus BC",
    "AMC 12",
    "Codeforces Rating",
    "AP English Literature",
    "AMC 10",
    "Uniform Bar Exam",
    "AP English Language",
    "AP Chemistry",
    "GRE Quantitative",
    "AP Physics 2",
    "USABO Semifinal 2020",
    "AP Macroeconomics",
    "AP Statistics",
    "LSAT",
    "GRE Writing",
    "AP Microeconomics",
    "AP Biology",
    "GRE Verbal",
    "AP World History",
    "SAT Math",
    "AP US History",
    "AP US Government",
    "AP Psychology",
    "AP Art History",
    "SAT EBRW",
    "AP Environmental Science",
]


@pytest.fixture(scope="module")
def pub() -> PublishedResults:
    return load_published("gpt-4-technical-report")


def series(label: str, **values: float | None) -> ChartSeries:
    return ChartSeries(label=label, values=values)


@pytest.mark.parametrize(
    ("base", "other", "expected"),
    [
        ({"c": 30, "a": 10, "b": 20}, {}, ["a", "b", "c"]),
        # ties: by label, case-insensitively
        ({"b": 10, "A": 10, "c": 5}, {}, ["c", "A", "b"]),
        # exams the baseline lacks (missing or None) go last, by label
        ({"z": 50, "y": None}, {"x": 1, "y": 2, "a": 3}, ["z", "a", "x", "y"]),
        # exams no series has a value for are dropped
        ({"a": 1, "gone": None}, {"gone": None}, ["a"]),
        ({}, {"b": 1, "a": 2}, ["a", "b"]),
    ],
)
def test_ordering_rule(
    base: dict[str, float | None], other: dict[str, float | None], expected: list[str]
) -> None:
    data = build_chart_data([series("base", **base), series("other", **other)], "base")
    assert data.exams == expected


def test_ties_with_the_same_label_keep_input_order() -> None:
    first = ChartSeries(label="base", values={"SAT": 10.0, "sat": 10.0, "Sat": 10.0})
    assert build_chart_data([first], "base").exams == ["SAT", "sat", "Sat"]


def test_input_order_across_series_breaks_remaining_ties() -> None:
    a = ChartSeries(label="a", values={"Sat": 3.0})
    b = ChartSeries(label="b", values={"SAT": 1.0})
    assert build_chart_data([b, a], "b").exams == ["SAT", "Sat"]
    assert build_chart_data([a, b], "b").exams == ["SAT", "Sat"]  # SAT has a baseline value


def test_missing_values_become_none_and_series_keep_legend_order() -> None:
    data = build_chart_data(
        [series("x", a=10, b=None), series("y", b=50), series("z", c=5)], baseline="y"
    )
    assert [s.label for s in data.series] == ["x", "y", "z"]
    assert data.exams == ["b", "a", "c"]
    assert data.series[0].values == {"b": None, "a": 10, "c": None}
    assert data.series[1].values == {"b": 50, "a": None, "c": None}


def test_default_title_follows_the_report() -> None:
    data = build_chart_data([series("GPT-3.5", a=1)], "GPT-3.5")
    assert data.title == "Exam results (ordered by GPT-3.5 performance)"
    assert data.y_label == "Estimated percentile lower bound (among test takers)"


@pytest.mark.parametrize(
    ("given", "baseline", "message"),
    [
        ([], "x", "no series"),
        ([series("x", a=1)], "y", "'y' is not one of"),
        ([series("x", a=1), series("x", b=2)], "x", "duplicate series labels"),
        ([series("x", a=101)], "x", "x.a: percentile 101"),
        ([series("x", a=-1)], "x", "outside 0-100"),
    ],
)
def test_bad_series(given: list[ChartSeries], baseline: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_chart_data(given, baseline)


def test_figure4_matches_the_report(pub: PublishedResults) -> None:
    data = published_chart_data(pub)
    assert data.exams == REPORT_FIGURE4_ORDER
    assert data.title == "Exam results (ordered by GPT-3.5 performance)"
    assert data.baseline == "GPT-3.5"
    assert [s.label for s in data.series] == ["GPT-4", "GPT-4 (no vision)", "GPT-3.5"]
    gpt4, _, gpt35 = data.series
    assert gpt4.values["AP Biology"] == 85  # the caption's example
    assert gpt4.values["Uniform Bar Exam"] == 90
    assert gpt35.values["AP Calculus BC"] == 0
    assert gpt35.values["Codeforces Rating"] == 5
    assert len(data.notes) == 1 and "below 5th" in data.notes[0]


def test_series_from_published_picks_runs(pub: PublishedResults) -> None:
    picked = series_from_published(pub, ["GPT-3.5", "GPT-4"])
    assert [s.label for s in picked] == ["GPT-3.5", "GPT-4"]
    assert len(picked[0].values) == 26
    assert "Leetcode (easy)" not in picked[0].values
    with pytest.raises(InputError, match="unknown run"):
        series_from_published(pub, ["GPT-5"])


def test_align_run_exam_names(pub: PublishedResults) -> None:
    run = ChartSeries(label="mine", values={"sat-math": 55.0, "AP Calculus BC": 12.0, "mmlu": 1.0})
    aligned = align_to_published(run, pub)
    assert aligned.values == {"SAT Math": 55.0, "AP Calculus BC": 12.0, "mmlu": 1.0}
    clash = ChartSeries(label="mine", values={"sat-math": 1.0, "SAT Math": 2.0})
    with pytest.raises(InputError, match="both match 'SAT Math'"):
        align_to_published(clash, pub)


def test_run_beside_published_bars(pub: PublishedResults) -> None:
    run = ChartSeries(label="mine", values={"sat-math": 55.0, "ap-calculus-bc": 12.0, "x": 3.0})
    full = published_chart_data(pub, extra=[run])
    assert full.exams == [*REPORT_FIGURE4_ORDER, "x"]
    assert full.series[-1].values["SAT Math"] == 55.0
    shared = published_chart_data(pub, extra=[run], shared_only=True)
    assert shared.exams == ["AP Calculus BC", "SAT Math", "x"]
    assert shared.notes == []  # Codeforces is not shown, so neither is its note


def test_chart_json_round_trips(pub: PublishedResults) -> None:
    data = published_chart_data(pub)
    text = chart_data_json(data)
    raw = json.loads(text)
    assert list(raw) == ["title", "baseline", "exams", "series", "notes", "y_label"]
    assert raw["series"][2]["values"]["AP Calculus BC"] == 0
    assert ChartData.model_validate_json(text) == data
    gap = build_chart_data([series("a", x=1, y=None), series("b", y=2)], "a")
    assert json.loads(chart_data_json(gap))["series"][0]["values"] == {"x": 1, "y": None}


def test_drawn_axes(pub: PublishedResults) -> None:
    ax = draw_chart(published_chart_data(pub)).axes[0]
    assert ax.get_ylabel() == Y_LABEL
    assert ax.get_ylim() == (0, 100)
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == ["0%", "20%", "40%", "60%", "80%", "100%"]
    assert [t.get_text() for t in ax.get_xticklabels()] == REPORT_FIGURE4_ORDER
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "GPT-4",
        "GPT-4 (no vision)",
        "GPT-3.5",
    ]


def test_render_png_and_svg(pub: PublishedResults, tmp_path: Path) -> None:
    data = published_chart_data(pub)
    png, svg = tmp_path / "fig4.png", tmp_path / "sub" / "fig4.svg"
    render_chart(data, png)
    render_chart(data, svg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    assert b"<svg" in svg.read_bytes()[:2000]


def test_render_with_missing_values(tmp_path: Path) -> None:
    data = build_chart_data([series("a", x=10, y=None), series("b", y=20)], "a")
    render_chart(data, tmp_path / "gap.png")
    assert (tmp_path / "gap.png").stat().st_size > 0


def test_render_rejects_other_formats(tmp_path: Path) -> None:
    data = build_chart_data([series("a", x=1)], "a")
    with pytest.raises(InputError, match=r"must end in \.png or \.svg"):
        render_chart(data, tmp_path / "chart.pdf")


def _zero_marks(data: ChartData) -> list[str]:
    """The ``0`` labels drawn for 0th-percentile bars."""
    return [t.get_text() for t in draw_chart(data).axes[0].texts if t.get_text() == "0"]


def test_a_zero_bar_is_drawn_and_a_missing_one_is_not() -> None:
    """0 % has no bar height, so it gets a mark; a missing result draws nothing."""
    zero = build_chart_data([series("a", x=0, y=30), series("b", x=None, y=40)], "a")
    assert _zero_marks(zero) == ["0"]
    lines = draw_chart(zero).axes[0].lines
    assert len(lines) == 1 and lines[0].get_linewidth() == 3
    missing = build_chart_data([series("a", x=None, y=30), series("b", x=20, y=40)], "a")
    assert _zero_marks(missing) == [] and len(draw_chart(missing).axes[0].lines) == 0


def test_a_chart_with_no_bars_is_not_written(tmp_path: Path) -> None:
    data = build_chart_data([series("a", x=None)], "a")
    with pytest.raises(InputError, match="nothing to draw"):
        render_chart(data, tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()
