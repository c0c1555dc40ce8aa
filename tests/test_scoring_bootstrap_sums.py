"""The bootstrap sums whole-number points (right/wrong items) as small integers: the intervals
must be exactly those of summing them as floats, for every kind of section."""

from __future__ import annotations

import random

import numpy as np
import pytest

from examharness import compare, scoring
from examharness.scoring import SectionItems, SectionRaw, bootstrap_ci


def _totals(resample: list[SectionRaw]) -> tuple[float, ...]:
    return tuple(x for s in resample for x in (s.points, s.max_points, s.points / s.max_points))


def _sections(kind: str) -> list[SectionItems]:
    rng = random.Random(kind)
    n = 3000
    points = {
        "right/wrong": [float(rng.random() < 0.4) for _ in range(n)],
        "rubric 0-6": [float(rng.randint(0, 6)) for _ in range(n)],
        "half points": [rng.randint(0, 12) / 2 for _ in range(n)],
        "large": [float(rng.randint(0, 1000)) for _ in range(n)],
        "negative": [float(rng.choice((-1, 0, 1))) for _ in range(n)],
    }[kind]
    top = max(max(points), 1.0)
    return [SectionItems(section_id="a", points=points, max_points=[top] * n),
            SectionItems(section_id="b", points=points[:700], max_points=[top] * 700)]  # fmt: skip


@pytest.mark.parametrize("kind", ["right/wrong", "rubric 0-6", "half points", "large", "negative"])
def test_integer_sums_give_the_float_sums_intervals(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sections = _sections(kind)
    fast = bootstrap_ci(sections, _totals, n=300, seed=7)
    monkeypatch.setattr(scoring, "summable", lambda values: values)
    assert fast == bootstrap_ci(sections, _totals, n=300, seed=7)


@pytest.mark.parametrize(("values", "small"), [
    ([0.0, 1.0, 1.0], True), ([0.0, 6.0, -3.0], True), ([0.5, 1.0], False), ([128.0], False), ([], False),
])  # fmt: skip
def test_only_small_whole_numbers_are_summed_as_bytes(values: list[float], small: bool) -> None:
    assert (scoring.summable(np.asarray(values, float)).dtype == np.int8) is small


@pytest.mark.parametrize("values", [(-1.0, 0.0, 1.0), (-6.0, 0.0, 2.5), (0.0, 1.0)])
def test_paired_bootstrap_means_are_those_of_floats(
    values: tuple[float, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(len(values))
    diffs = [rng.choice(values) for _ in range(5000)]
    fast = compare.paired_bootstrap(diffs, 400, seed=5)
    monkeypatch.setattr(compare, "summable", lambda v: v)
    assert fast == compare.paired_bootstrap(diffs, 400, seed=5)
