"""pass@k: the unbiased estimator of Chen et al. (2021), per problem and per section, with CIs.

For a problem sampled ``n`` times with ``c`` correct samples, pass@k = 1 − C(n−c, k) / C(n, k):
the probability that at least one of ``k`` samples drawn without replacement from the ``n`` is
correct (computed as a stable product, as in the paper's numpy snippet). A section's pass@k is the
mean over its problems; its bootstrap CI resamples problems (the unit the exam samples from).
Pure functions: no I/O, seeded randomness only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel

from examharness.code.models import PassCount


class PassAtK(BaseModel):
    """A section's (or exam's) pass@k with its bootstrap interval."""

    k: int
    value: float
    ci: tuple[float, float] | None = None
    problems: int


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 − C(n−c, k)/C(n, k); requires 0 ≤ c ≤ n and 1 ≤ k ≤ n."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def ks_for(counts: Sequence[PassCount]) -> list[int]:
    """The k values every problem supports: 1, 10, 100 (the paper's) up to the smallest n."""
    smallest = min((p.n for p in counts), default=0)
    return [k for k in (1, 10, 100) if k <= smallest]


def mean_pass_at_k(counts: Sequence[PassCount], k: int) -> float:
    return sum(pass_at_k(p.n, p.c, k) for p in counts) / len(counts)


def section_pass_at_k(
    counts: Sequence[PassCount], k: int, *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> PassAtK:
    """Mean pass@k over problems, with a percentile bootstrap CI over problems."""
    if not counts:
        raise ValueError("pass@k needs at least one problem")
    per_problem = [pass_at_k(p.n, p.c, k) for p in counts]
    value = sum(per_problem) / len(per_problem)
    rng = random.Random(seed)
    size = len(per_problem)
    means = sorted(sum(rng.choices(per_problem, k=size)) / size for _ in range(resamples))
    lo = means[int((1 - level) / 2 * (resamples - 1))]
    hi = means[int((1 + level) / 2 * (resamples - 1))]
    return PassAtK(k=k, value=value, ci=(lo, hi), problems=size)


def paired_difference(
    a: Sequence[float], b: Sequence[float], *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """Mean of b − a over the same problems, with a paired bootstrap CI (problems resampled)."""
    if len(a) != len(b) or not a:
        raise ValueError("a paired comparison needs the same, non-empty set of problems")
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    size = len(diffs)
    means = sorted(sum(rng.choices(diffs, k=size)) / size for _ in range(resamples))
    lo = means[int((1 - level) / 2 * (resamples - 1))]
    hi = means[int((1 + level) / 2 * (resamples - 1))]
    return sum(diffs) / size, (lo, hi)
