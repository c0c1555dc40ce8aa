"""The fits and the capability data rules, on numbers and files made here (no server)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from examharness.errors import InputError
from examharness.family import ResolvedCompute
from examharness.familyrun import FamilyPassRates, MemberPassRates, ProblemRate
from examharness.jsonfiles import write_model
from examharness.scaling import bootstrap_bands, fit_capability_law, fit_loss_law
from examharness.scalingdata import capability_scaling

COMPUTE = np.logspace(18, 23, 6)


@pytest.mark.parametrize(("a", "b", "c"), [(150.0, -0.1, 1.8), (3e3, -0.15, 0.5), (40.0, -0.05, 0.0)])
def test_loss_law_is_recovered_from_exact_points(a: float, b: float, c: float) -> None:
    law = fit_loss_law(COMPUTE, a * COMPUTE**b + c)
    assert law.b == pytest.approx(b, rel=1e-3)
    assert law.c == pytest.approx(c, abs=1e-3)
    assert law.a == pytest.approx(a, rel=1e-2)


@pytest.mark.parametrize(("alpha", "k"), [(30.0, 0.1), (2e4, 0.25), (5.0, 0.05)])
def test_capability_law_is_recovered_from_exact_points(alpha: float, k: float) -> None:
    law = fit_capability_law(COMPUTE, alpha * COMPUTE ** (-k))
    assert (law.alpha, law.k) == (pytest.approx(alpha, rel=1e-6), pytest.approx(k, rel=1e-6))


def test_bootstrap_band_covers_the_truth_under_noise() -> None:
    rng = np.random.default_rng(3)
    noisy = (150 * COMPUTE**-0.1 + 1.8)[:, None] * (1 + rng.normal(0, 0.01, (6, 40)))

    def refit(members: np.ndarray, units: np.ndarray) -> np.ndarray:
        values = noisy[np.ix_(members, units)].mean(axis=1)
        return np.array([fit_loss_law(COMPUTE[members], values)(1e25)])

    (band,) = bootstrap_bands(refit, 6, 40, 3, n_boot=200, seed=0) or []
    assert band.low < 150 * 1e25**-0.1 + 1.8 < band.high and band.resamples == 200
    assert bootstrap_bands(refit, 2, 40, 3, n_boot=200, seed=0) is None


def write_rates(path: Path, rows: dict[str, tuple[float, list[tuple[int, int]]]]) -> Path:
    members = [
        MemberPassRates(
            member=name,
            compute=ResolvedCompute(flops=c, method="flops"),
            samples=10,
            accuracy={},
            problems=[
                ProblemRate(exam_id="e", item_id=f"p{j}", n=n, passed=k) for j, (n, k) in enumerate(probs)
            ],
        )
        for name, (c, probs) in rows.items()
    ]
    path.mkdir(parents=True, exist_ok=True)
    write_model(path / "pass_rates.json", FamilyPassRates(run_id="x", family="f", members=members))
    return path


def test_unsolved_problems_leave_p_and_a_held_out_zero_is_floored(tmp_path: Path) -> None:
    rows = {
        "s": (1e18, [(10, 3), (10, 0), (10, 5)]),
        "m": (1e19, [(10, 5), (10, 2), (10, 7)]),
        "l": (1e20, [(10, 7), (10, 4), (10, 9)]),
        "big": (1e22, [(10, 0), (10, 9), (10, 10)]),
    }
    cap = capability_scaling(write_rates(tmp_path, rows), 1e20, None, n_boot=50, seed=0)
    assert cap.problems == ["e/p0", "e/p2"] and cap.excluded == ["e/p1"]
    assert [p.value for p in cap.fitted] == pytest.approx(
        [
            -(math.log(0.3) + math.log(0.5)) / 2,
            -(math.log(0.5) + math.log(0.7)) / 2,
            -(math.log(0.7) + math.log(0.9)) / 2,
        ]
    )
    (big,) = cap.predictions
    assert cap.floored == {"big": 1}
    assert big.actual == pytest.approx(-(math.log(0.05) + math.log(1.0)) / 2)


def test_too_few_members_below_the_cutoff_is_one_clear_error(tmp_path: Path) -> None:
    rows = {"s": (1e18, [(10, 3)]), "big": (1e22, [(10, 9)])}
    with pytest.raises(InputError, match="at least 2 computes at or below"):
        capability_scaling(write_rates(tmp_path, rows), 1e18, None, n_boot=0, seed=0)
