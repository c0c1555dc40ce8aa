"""Predictable scaling (GPT-4 report, Section 3): fit the small members, predict the large ones.

Two laws, each fitted with ``scipy.optimize.least_squares`` under bounds:

* loss: L(C) = a·C^b + c, with a > 0, b < 0 and 0 ≤ c < min(L) (an irreducible loss term, as the
  report fitted to its small models' final loss);
* capability: −E_P[log pass_rate(C)] = α·C^(−k), with α, k > 0, over a set P of problems.

Compute is divided by ``compute_ref`` (the largest fitted member's) before fitting, which keeps the
optimiser well conditioned; the reported a and α are converted back to raw FLOPs. The uncertainty
band of a prediction is a percentile bootstrap: members are resampled with replacement (a resample
needs at least as many distinct members as the law has parameters, else it is drawn again) and so
are the problems (or texts, for loss) that each member's value averages over.
These functions are pure: they take numbers and return numbers; reading run folders lives in
:mod:`examharness.scalingdata`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel
from scipy.optimize import least_squares

Array = np.ndarray


class LossLaw(BaseModel):
    """L(C) = a·C^b + c with C in FLOPs."""

    a: float
    b: float
    c: float

    def __call__(self, compute: float) -> float:
        return float(self.a * compute**self.b + self.c)


class CapabilityLaw(BaseModel):
    """−E_P[log pass_rate(C)] = α·C^(−k) with C in FLOPs."""

    alpha: float
    k: float

    def __call__(self, compute: float) -> float:
        return float(self.alpha * compute ** (-self.k))


def fit_loss_law(compute: Array, loss: Array) -> LossLaw:
    """Least squares on L itself; needs at least three distinct compute values."""
    c_ref = float(np.max(compute))
    x = compute / c_ref
    floor = float(np.min(loss))
    c0 = 0.5 * floor
    slope, intercept = np.polyfit(np.log(x), np.log(np.maximum(loss - c0, 1e-12)), 1)
    start = [math.exp(intercept), min(slope, -1e-6), c0]

    def residuals(p: Array) -> Array:
        return np.asarray(p[0] * x ** p[1] + p[2] - loss)

    lower, upper = [1e-12, -10.0, 0.0], [np.inf, -1e-9, floor * (1 - 1e-9)]
    start = [float(np.clip(v, lo + 1e-12, hi - 1e-12)) for v, lo, hi in zip(start, lower, upper, strict=True)]
    fit = least_squares(residuals, start, bounds=(lower, upper), x_scale="jac", max_nfev=5000)
    a_n, b, c = (float(v) for v in fit.x)
    return LossLaw(a=a_n * c_ref ** (-b), b=b, c=c)


def fit_capability_law(compute: Array, neg_log_pass: Array) -> CapabilityLaw:
    """Least squares on log(−E[log pass rate]): the values span decades, so relative error counts."""
    c_ref = float(np.max(compute))
    x = compute / c_ref
    y = np.log(neg_log_pass)
    slope, intercept = np.polyfit(np.log(x), y, 1)

    def residuals(p: Array) -> Array:
        return np.asarray(np.log(p[0]) - p[1] * np.log(x) - y)

    start = [max(math.exp(intercept), 1e-9), max(-slope, 1e-6)]
    fit = least_squares(residuals, start, bounds=([1e-12, 1e-9], [np.inf, 10.0]), max_nfev=5000)
    alpha_n, k = (float(v) for v in fit.x)
    return CapabilityLaw(alpha=alpha_n * c_ref**k, k=k)


def mean_neg_log_pass(pass_rates: Array) -> Array:
    """−E_P[log pass_rate] per member from a members × problems matrix (no zeros allowed)."""
    return np.asarray(-np.mean(np.log(pass_rates), axis=1))


class Band(BaseModel):
    low: float
    high: float
    level: float
    resamples: int
    """Resamples whose fit succeeded (a resample with too few distinct members is redrawn)."""


def bootstrap_bands(
    refit: Callable[[Array, Array], Array],
    n_members: int,
    n_units: int,
    min_members: int,
    *,
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> list[Band] | None:
    """Percentile bands of the predictions ``refit(member_idx, unit_idx)`` returns for one
    resample of members and units (problems or texts), both drawn with replacement.

    One band per predicted value; None with no resamples or too few members to refit.
    """
    if n_boot <= 0 or n_members < min_members:
        return None
    rng = np.random.default_rng(seed)
    values: list[Array] = []
    draws = 0
    while len(values) < n_boot and draws < 20 * n_boot:
        draws += 1
        members = rng.integers(0, n_members, n_members)
        if len(set(members.tolist())) < min_members:
            continue
        predicted = refit(members, rng.integers(0, n_units, n_units))
        if np.all(np.isfinite(predicted)):
            values.append(predicted)
    if not values:
        return None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(np.stack(values), [tail, 100 - tail], axis=0)
    return [
        Band(low=float(a), high=float(b), level=level, resamples=len(values))
        for a, b in zip(lo, hi, strict=True)
    ]
