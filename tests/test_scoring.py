"""raw -> scaled -> percentile range, and bootstrap intervals (scoring.py)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

from examharness.errors import InputError
from examharness.scales import Scale, load_scale
from examharness.scoring import (
    PercentileRange,
    SectionItems,
    SectionRaw,
    bootstrap_ci,
    composite,
    percentile_range,
    round_half_up,
    score_exam,
    to_scaled,
)

SCALES = Path(__file__).parents[1] / "exams" / "scales"


def real(name: str) -> Scale:
    return load_scale(name, [SCALES])


def scale(raw_to_scaled: dict[str, Any], percentile: dict[str, Any] | None = None) -> Scale:
    return Scale.model_validate({"id": "t", "title": "t", "source": "test",
                                 "raw_to_scaled": raw_to_scaled, "percentile": percentile})


def one(points: float, max_points: float, section_id: str = "all") -> list[SectionRaw]:
    return [SectionRaw(section_id=section_id, points=points, max_points=max_points)]


GRE_RULE = {"kind": "linear", "intercept": 130, "slope": 40, "round_to": 1, "min": 130, "max": 170}
MEAN = {"kind": "mean_points", "item_max": 6, "round_to": 0.5}


@pytest.mark.parametrize(
    ("x", "step", "expected"),
    [(2.5, 1, 3), (3.5, 1, 4), (2.49, 1, 2), (4.25, 0.5, 4.5), (4.24, 0.5, 4.0),
     (0.975 * 40, 1, 39)],
)
def test_round_half_up(x: float, step: float, expected: float) -> None:
    assert round_half_up(x, step) == expected


def test_composite_is_weighted() -> None:
    sections = [SectionRaw(section_id="a", points=3, max_points=4, weight=2),
                SectionRaw(section_id="b", points=1, max_points=2)]
    assert composite(sections) == (7, 10)


@pytest.mark.parametrize(("correct", "scaled"),
                         [(39, 169), (33, 163), (0, 130), (40, 170), (20, 150)])
def test_gre_report_rule(correct: int, scaled: float) -> None:
    """GPT-4 report Table 10 -> Table 1: 97.5% -> 169 and 82.5% -> 163."""
    for s in (scale(GRE_RULE), real("gre_verbal"), real("gre_quantitative")):
        assert to_scaled(s, one(correct, 40)).scaled == scaled
        assert to_scaled(s, one(correct / 40, 1)).approximation is None


def test_sat_math_chart() -> None:
    sat = real("sat_math")
    assert to_scaled(sat, one(38, 58)) == to_scaled(sat, one(38, 58))
    assert to_scaled(sat, one(38, 58)).scaled == 600
    assert to_scaled(sat, one(38, 58)).approximation is None
    assert [to_scaled(sat, one(r, 58)).scaled for r in (0, 1, 58)] == [200, 200, 800]


def test_accuracy_mapping_is_recorded() -> None:
    """220 AGIEval SAT-Math items on the 58-question chart: 180/220 x 58 = 47.45 -> 47 -> 670."""
    result = to_scaled(real("sat_math"), one(180, 220))
    assert result.scaled == 670
    assert result.approximation == (
        "raw 180/220 mapped by accuracy to 47/58 on the form's conversion")
    assert to_scaled(real("sat_math"), one(110, 220)).scaled == 520  # 29/58, half up from 29.0


def test_fractional_raw_is_rounded_and_recorded() -> None:
    result = to_scaled(real("sat_math"), one(37.5, 58))
    assert (result.scaled, result.approximation) == (
        600, "raw 37.5/58 rounded half up to 38/58 on the form's conversion")


@pytest.mark.parametrize(("raw", "scaled"), [(0, 120), (13, 120), (14, 121), (61, 150), (71, 156),
                                             (93, 173), (94, 175), (97, 179), (98, 180), (99, 180)])
def test_lsat_chart(raw: int, scaled: float) -> None:
    assert to_scaled(real("lsat"), one(raw, 99)).scaled == scaled


def test_lsat_percentiles() -> None:
    lsat = real("lsat")
    assert percentile_range(lsat, 160) == PercentileRange(low=79.4, high=82.4)
    assert percentile_range(lsat, 180) == PercentileRange(low=99.9, high=100)
    assert percentile_range(lsat, 120) == PercentileRange(low=0, high=0.3)


def test_sat_ebrw_section_tables() -> None:
    """PrepScholar example: Reading 33 -> 29, Writing 39 -> 35, EBRW 640."""
    ebrw = real("sat_ebrw")
    sections = [SectionRaw(section_id="reading", points=33, max_points=52),
                SectionRaw(section_id="writing", points=39, max_points=44)]
    assert to_scaled(ebrw, sections).scaled == 640
    whole = to_scaled(ebrw, one(206, 206, "sat-en"))
    assert whole.scaled == 800
    assert whole.approximation is not None and "whole exam's accuracy (100%)" in whole.approximation
    with pytest.raises(InputError, match="do not match the scale's sections"):
        to_scaled(ebrw, [sections[0], SectionRaw(section_id="essay", points=1, max_points=2)])


@pytest.mark.parametrize(("points", "scaled"),
                         [(12, 6.0), (9, 4.5), (8.5, 4.5), (8.4, 4.0), (0, 0.0)])
def test_mean_points(points: float, scaled: float) -> None:
    """Two essays scored 0-6: the mean, rounded half up to 0.5."""
    assert to_scaled(scale(MEAN), one(points, 12)).scaled == scaled
    assert to_scaled(real("gre_writing"), one(points, 12)).scaled == scaled


CUTS = {"kind": "composite_cuts", "section_multipliers": {"mc": 1.0, "frq": 2.0},
        "form_section_max": {"mc": 50, "frq": 25},
        "cuts": [{"score": 1, "min_composite": 0}, {"score": 2, "above": 40},
                 {"score": 3, "min_composite": 60}]}


@pytest.mark.parametrize(
    ("mc", "frq", "score", "comp"),
    [(0, 0, 1, 0), (40, 0, 1, 40), (40, 0.5, 2, 41), (30, 15, 3, 60), (30, 14.5, 2, 59)],
)
def test_composite_cuts(mc: float, frq: float, score: int, comp: float) -> None:
    sections = [SectionRaw(section_id="mc", points=mc, max_points=50),
                SectionRaw(section_id="frq", points=frq, max_points=25)]
    result = to_scaled(scale(CUTS), sections)
    assert (result.scaled, result.composite, result.approximation) == (score, comp, None)


def test_composite_cuts_rescale_by_accuracy() -> None:
    sections = [SectionRaw(section_id="mc", points=20, max_points=25),
                SectionRaw(section_id="frq", points=25, max_points=25)]
    result = to_scaled(scale(CUTS), sections)
    assert (result.scaled, result.composite) == (3, 90)
    assert result.approximation == "mc 20/25 scaled by accuracy to 40.0/50 on the form's composite"


def test_ap_us_history_offsets() -> None:
    apush = real("ap_us_history")
    full = [SectionRaw(section_id=s, points=m, max_points=m)
            for s, m in (("mc", 55), ("saq", 12), ("dbq", 7), ("leq", 6))]
    result = to_scaled(apush, full)
    assert result.scaled == 5 and result.composite == pytest.approx(129.99, abs=0.01)
    assert to_scaled(apush, [s.model_copy(update={"points": 0}) for s in full]).scaled == 1


ONE_DIST = {"kind": "distribution", "distributions": [
    {"label": "x", "year": 2022, "source": "s",
     "shares": [[5, 15], [4, 20], [3, 30], [2, 20], [1, 15]]}]}


@pytest.mark.parametrize(("score", "low", "high"),
                         [(5, 85, 100), (4, 65, 85), (1, 0, 15), (3, 35, 65)])
def test_distribution_ranges(score: float, low: float, high: float) -> None:
    """The report's AP Biology 5 (85th-100th): 15% earn a 5."""
    assert percentile_range(scale(MEAN, ONE_DIST), score) == PercentileRange(low=low, high=high)


def test_real_ap_biology_five() -> None:
    """14% earned a 5 in 2023, so a 5 is 86th-100th (the report's AP Art History example shape)."""
    bio = real("ap_biology")
    top = [SectionRaw(section_id="mc", points=60, max_points=60),
           SectionRaw(section_id="frq", points=36, max_points=36)]
    result = to_scaled(bio, top)
    assert result.scaled == 5
    assert result.approximation is not None and "scaled by accuracy" in result.approximation
    assert percentile_range(bio, 5) == PercentileRange(low=86, high=100)


def test_min_max_across_distributions() -> None:
    """AMC rule: the lowest low and the highest high of the two contests."""
    two = {"kind": "distribution", "distributions": [
        ONE_DIST["distributions"][0],
        {"label": "y", "year": 2022, "source": "s", "shares": [[5, 10], [4, 30], [3, 60]]}]}
    assert percentile_range(scale(MEAN, two), 4) == PercentileRange(low=60, high=90)


def pct_table(convention: str) -> dict[str, Any]:
    return {"kind": "table", "convention": convention, "source": "s",
            "rows": [[170, 99], [160, 80], [150, 40], [140, 10], [130, None]]}


@pytest.mark.parametrize(
    ("convention", "score", "low", "high"),
    [
        ("below", 160, 80, 99),      # listed: T(s), T(next higher)
        ("below", 170, 99, 100),     # top: up to 100
        ("below", 140, 10, 40),      # lowest listed row
        ("below", 155, 80, 80),      # between rows: at-or-below(150) = below(160)
        ("below", 175, 100, 100),    # above the top
        ("below", 130, 0, 10),       # blank row / below the bottom: (0, below(lowest))
        ("at_or_below", 160, 40, 80),   # listed: T(previous lower), T(s)
        ("at_or_below", 140, 0, 10),    # bottom: from 0
        ("at_or_below", 170, 80, 99),
        ("at_or_below", 155, 40, 40),   # between rows: at-or-below(150)
        ("at_or_below", 175, 99, 100),  # above the top: at-or-below(top) .. 100
        ("at_or_below", 135, 0, 0),     # below the bottom
    ],
)
def test_table_ranges(convention: str, score: float, low: float, high: float) -> None:
    assert percentile_range(scale(MEAN, pct_table(convention)), score) == PercentileRange(
        low=low, high=high)


@pytest.mark.parametrize(
    ("name", "score", "low", "high"),
    [("gre_verbal", 169, 99, 99), ("gre_quantitative", 163, 63, 66),
     ("gre_quantitative", 170, 92, 100), ("gre_writing", 4.0, 59, 83),
     ("sat_math", 600, 72, 75), ("sat_math", 200, 0, 0), ("sat_ebrw", 640, 81, 83)],
)
def test_real_percentile_tables(name: str, score: float, low: float, high: float) -> None:
    assert percentile_range(real(name), score) == PercentileRange(low=low, high=high)


def test_no_percentile_data() -> None:
    assert percentile_range(real("amc"), 60) is None


def items(n: int, p: float, seed: int = 1, section_id: str = "all") -> SectionItems:
    rng = random.Random(seed)
    return SectionItems(section_id=section_id, points=[float(rng.random() < p) for _ in range(n)],
                        max_points=[1.0] * n)


def test_bootstrap_is_deterministic_and_contains_estimate() -> None:
    secs = [items(200, 0.7, 1, "a"), items(100, 0.5, 2, "b")]

    def acc(raws: list[SectionRaw]) -> tuple[float]:
        r, m = composite(raws)
        return (r / m,)

    [first] = bootstrap_ci(secs, acc, n=500, seed=3)
    assert bootstrap_ci(secs, acc, n=500, seed=3) == [first]
    assert any(bootstrap_ci(secs, acc, n=500, seed=s) != [first] for s in range(4, 9))
    assert first is not None
    (point,) = acc([s.raw() for s in secs])
    assert first[0] < point < first[1]
    assert first[1] - first[0] < 0.15


def test_bootstrap_none_statistic() -> None:
    assert bootstrap_ci([items(10, 0.5)], lambda raws: (None, 1.0), n=20) == [None, (1.0, 1.0)]


def test_score_exam_carries_intervals_through() -> None:
    result = score_exam(real("sat_math"), [items(220, 0.8)], seed=7)
    again = score_exam(real("sat_math"), [items(220, 0.8)], seed=7)
    assert result == again
    assert result.max_raw == 220 and result.scaled is not None and result.percentile is not None
    ci = result.ci
    assert ci.raw and ci.scaled and ci.percentile
    assert ci.raw[0] <= result.raw <= ci.raw[1]
    assert ci.scaled[0] <= result.scaled <= ci.scaled[1]
    assert ci.percentile[0] <= result.percentile.low <= ci.percentile[1]
    assert result.approximation and "mapped by accuracy" in result.approximation


def test_score_exam_without_scale_or_bootstrap() -> None:
    result = score_exam(None, [items(40, 0.5)], n_boot=0)
    assert result.scaled is None and result.percentile is None
    assert result.ci.raw is None and result.scale_id is None
    unscaled = score_exam(None, [items(40, 0.5)])
    assert unscaled.ci.raw is not None and unscaled.ci.scaled is None
    with pytest.raises(InputError, match="no scored items"):
        score_exam(None, [SectionItems(section_id="a", points=[], max_points=[])])


def test_bootstrap_is_fast() -> None:
    """1000 resamples of 2000 items, through the SAT chart and percentile table, well under 1 s."""
    secs = [items(1200, 0.8, 1, "reading"), items(800, 0.7, 2, "writing")]
    start = time.perf_counter()
    score_exam(real("sat_ebrw"), secs, n_boot=1000)
    assert time.perf_counter() - start < 1.0
