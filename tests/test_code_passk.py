"""pass@k (Chen et al., 2021): the unbiased estimator against its closed form, and its CIs."""

from __future__ import annotations

from math import comb

import pytest

from examharness.code.models import PassCount
from examharness.code.passk import ks_for, paired_difference, pass_at_k, section_pass_at_k


@pytest.mark.parametrize(
    ("n", "c", "k"), [(1, 0, 1), (1, 1, 1), (10, 3, 1), (10, 3, 5), (10, 9, 2), (200, 7, 100), (20, 0, 10)]
)
def test_matches_the_closed_form(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


def test_pass_at_1_is_the_pass_rate() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 2, 4) == 1.0  # fewer failures than k: some drawn sample passes


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 1), (5, 1, 6), (5, 1, 0), (0, 0, 1)])
def test_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_section_mean_and_interval() -> None:
    counts = [PassCount(n=2, c=1)] * 10 + [PassCount(n=2, c=2)] * 10
    result = section_pass_at_k(counts, 1, resamples=500, seed=1)
    assert result.value == pytest.approx(0.75)
    assert result.ci is not None and result.ci[0] < 0.75 < result.ci[1]
    assert section_pass_at_k(counts, 2).value == 1.0
    assert ks_for(counts) == [1]
    assert ks_for([PassCount(n=20, c=1)]) == [1, 10]


def test_paired_difference() -> None:
    diff, (lo, hi) = paired_difference([0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], resamples=400)
    assert diff == pytest.approx(0.5)
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 0.0])
