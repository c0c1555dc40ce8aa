"""Pure scoring: section raw points -> composite -> scaled -> percentile range, with bootstrap CIs.

No I/O and no model calls: every function takes numbers and a :class:`~examharness.scales.Scale`
and returns pydantic models, so the ``score`` command, reports and tests share one rule set.

Conventions, chosen once here:

* Rounding is half up (``x.5`` goes up), the way printed charts round, not Python's
  banker's rounding.
* When an exam's raw maximum differs from the scale's form (220 AGIEval SAT-Math items against the
  58-question chart) the raw score is mapped by accuracy: ``form_raw = round_half_up(accuracy x
  form_max_raw)``. The result's ``approximation`` says so in a sentence.
* A percentile is a *range* ``(low, high)``: ``low`` is the percent of takers scoring strictly
  below the score, ``high`` the percent scoring at or below it. The headline is ``low``, as the
  GPT-4 report's Figure 4 plots the lower bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from examharness.errors import InputError
from examharness.scales import (
    CompositeCutsConversion,
    Cut,
    LinearConversion,
    MeanPointsConversion,
    PercentileDistribution,
    PercentileTable,
    Scale,
    SectionTable,
    SectionTablesConversion,
    TableConversion,
)

if TYPE_CHECKING:
    import numpy as np

Interval = tuple[float, float]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SectionRaw(Frozen):
    """One section's points. ``weight`` scales it in the composite; weight 0 leaves it out."""

    section_id: str
    points: float
    max_points: float = Field(ge=0)
    weight: float = Field(default=1.0, ge=0)


class SectionItems(Frozen):
    """Per-item points of one section (what the bootstrap resamples)."""

    section_id: str
    weight: float = Field(default=1.0, ge=0)
    points: list[float]
    max_points: list[float]

    @model_validator(mode="after")
    def _same_length(self) -> SectionItems:
        if len(self.points) != len(self.max_points):
            raise ValueError("points and max_points must have one entry per item")
        return self

    def raw(self) -> SectionRaw:
        return SectionRaw(section_id=self.section_id, points=sum(self.points),
                          max_points=sum(self.max_points), weight=self.weight)


class ScaledResult(Frozen):
    scaled: float
    approximation: str | None = None
    composite: float | None = Field(default=None, description="AP composite, if the scale has one")


class PercentileRange(Frozen):
    """``low`` = % of takers strictly below the score; ``high`` = % at or below it."""

    low: float
    high: float


class ScoreIntervals(Frozen):
    """Bootstrap percentile intervals (items resampled within sections)."""

    level: float
    resamples: int
    raw: Interval | None = None
    scaled: Interval | None = None
    percentile: Interval | None = Field(default=None, description="interval of the headline (low)")


class ExamScoreCore(Frozen):
    raw: float
    max_raw: float
    accuracy: float
    scale_id: str | None
    scaled: float | None
    composite: float | None
    percentile: PercentileRange | None
    ci: ScoreIntervals
    approximation: str | None


def round_half_up(x: float, step: float = 1.0) -> float:
    """Round to a multiple of ``step``, halves up; the 1e-9 absorbs float noise (0.975 x 40)."""
    return math.floor(x / step + 0.5 + 1e-9) * step


def _num(x: float) -> str:
    return f"{x:.4g}" if x != int(x) else str(int(x))


def composite(sections: Sequence[SectionRaw]) -> tuple[float, float]:
    """Weighted (raw, max_raw) over the sections."""
    raw = sum(s.weight * s.points for s in sections)
    return raw, sum(s.weight * s.max_points for s in sections)


def _scale_error(scale: Scale, message: str) -> InputError:
    return InputError.one(f"scale {scale.id}", None, "raw_to_scaled", message)


def _accuracy(scale: Scale, raw: float, max_raw: float) -> float:
    if max_raw <= 0:
        raise _scale_error(scale, "the exam has no points to score")
    return raw / max_raw


def _table(scale: Scale, table: SectionTable, raw: float, max_raw: float,
           label: str = "") -> tuple[float, str | None]:
    if max_raw == table.form_max_raw and raw == int(raw):
        return table.lookup(int(raw)), None
    form_raw = int(round_half_up(_accuracy(scale, raw, max_raw) * table.form_max_raw))
    form_raw = min(max(form_raw, 0), table.form_max_raw)
    how = "mapped by accuracy" if max_raw != table.form_max_raw else "rounded half up"
    return table.lookup(form_raw), (
        f"{label}raw {_num(raw)}/{_num(max_raw)} {how} to {form_raw}/{table.form_max_raw} "
        "on the form's conversion")


def _by_section(scale: Scale, sections: Sequence[SectionRaw], wanted: Sequence[str]
                ) -> tuple[dict[str, SectionRaw], str | None]:
    """Match exam sections to the scale's sections by id.

    All ids match: use them. None match: apply the whole exam's accuracy to every scale section
    (recorded). Some match: an error, since a typo would otherwise silently change the score.
    """
    have = {s.section_id: s for s in sections}
    if set(have) == set(wanted):
        return have, None
    if set(have) & set(wanted):
        raise _scale_error(scale, f"exam sections {sorted(have)} do not match the scale's "
                                  f"sections {sorted(wanted)}")
    raw, max_raw = composite(sections)
    whole = {w: SectionRaw(section_id=w, points=raw, max_points=max_raw) for w in wanted}
    note = (f"exam sections {sorted(have)} are not the scale's sections {list(wanted)}; the whole "
            f"exam's accuracy ({_num(100 * _accuracy(scale, raw, max_raw))}%) was applied to each")
    return whole, note


def _reaches(cut: Cut, composite_value: float) -> bool:
    if cut.above is not None:
        return composite_value > cut.above
    return composite_value >= cut.threshold


def _composite_cuts(scale: Scale, conv: CompositeCutsConversion,
                    sections: Sequence[SectionRaw]) -> ScaledResult:
    matched, note = _by_section(scale, sections, list(conv.section_multipliers))
    notes = [note] if note else []
    total = 0.0
    for sid, multiplier in conv.section_multipliers.items():
        got, form_max = matched[sid], conv.form_section_max[sid]
        points = _accuracy(scale, got.points, got.max_points) * form_max
        if got.max_points != form_max and note is None:
            notes.append(f"{sid} {_num(got.points)}/{_num(got.max_points)} scaled by accuracy to "
                         f"{points:.1f}/{_num(form_max)} on the form's composite")
        total += multiplier * (points - conv.section_offsets.get(sid, 0.0))
    reached = [c.score for c in conv.cuts if _reaches(c, total)]
    score = max(reached, default=min(c.score for c in conv.cuts))
    return ScaledResult(scaled=score, composite=round(total, 4),
                        approximation="; ".join(notes) or None)


def to_scaled(scale: Scale, sections: Sequence[SectionRaw]) -> ScaledResult:
    """The exam's official-style score under ``scale`` (see the module docstring for mapping)."""
    active = [s for s in sections if s.weight > 0]
    conv = scale.raw_to_scaled
    if isinstance(conv, CompositeCutsConversion):
        return _composite_cuts(scale, conv, active)
    if isinstance(conv, SectionTablesConversion):
        matched, note = _by_section(scale, active, list(conv.sections))
        total, notes = 0.0, [note] if note else []
        for sid, table in conv.sections.items():
            value, how = _table(scale, table, matched[sid].points, matched[sid].max_points,
                                f"{sid} ")
            total += value
            notes += [how] if how and note is None else []
        return ScaledResult(scaled=total * conv.factor, approximation="; ".join(notes) or None)
    raw, max_raw = composite(active)
    if isinstance(conv, TableConversion):
        value, how = _table(scale, conv, raw, max_raw)
        return ScaledResult(scaled=value, approximation=how)
    accuracy = _accuracy(scale, raw, max_raw)
    if isinstance(conv, LinearConversion):
        value = round_half_up(conv.intercept + conv.slope * accuracy, conv.round_to)
        return ScaledResult(scaled=min(max(value, conv.min), conv.max))
    assert isinstance(conv, MeanPointsConversion)
    return ScaledResult(scaled=round_half_up(accuracy * conv.item_max, conv.round_to))


def _table_range(table: PercentileTable, x: float) -> tuple[float, float]:
    """Percentile range for ``x`` on a score table, assuming the listed scores are every score
    anyone earned (a blank row is skipped, so its neighbours absorb its takers).

    Per listed score s_i: ``below`` tables give low = T(s_i), high = T(next listed) or 100 at the
    top; ``at_or_below`` tables give high = T(s_i), low = T(previous listed) or 0 at the bottom.
    Between two listed scores nobody is tied, so low = high = at-or-below(s_i). Off the ends the
    range is what the table bounds: below the lowest row (0, below(lowest)); above the highest
    row (at-or-below(highest), 100).
    """
    rows = table.reported()
    scores = [s for s, _ in rows]
    pcts = [p for _, p in rows]
    n = len(rows)
    if table.convention == "below":
        below, at_or_below = pcts, [*pcts[1:], 100.0]
    else:
        below, at_or_below = [0.0, *pcts[:-1]], pcts
    for i, s in enumerate(scores):
        if math.isclose(s, x, abs_tol=1e-9):
            return below[i], at_or_below[i]
    j = sum(1 for s in scores if s < x)
    return (at_or_below[j - 1] if j > 0 else 0.0), (below[j] if j < n else 100.0)


def _distribution_range(dist: PercentileDistribution, x: float) -> tuple[float, float]:
    """low = 100 - share of scores at or above x, high = 100 - share above x; ``min_max`` across
    distributions.

    Counted from the top, so the top score's range always ends at 100 even when the published
    shares, each rounded, do not add up to exactly 100 (the GPT-4 report prints every AP 5 as
    "…– 100th"; 2022 AP US History's shares add up to 99.9).
    """
    lows, highs = [], []
    for d in dist.distributions:
        lows.append(100 - sum(p for s, p in d.shares if s >= x - 1e-9))
        highs.append(100 - sum(p for s, p in d.shares if s > x + 1e-9))
    return min(lows), max(highs)


def percentile_range(scale: Scale, scaled: float) -> PercentileRange | None:
    """Where ``scaled`` stands among takers, or None when the scale has no percentile data."""
    pct = scale.percentile
    if pct is None:
        return None
    low, high = (_table_range(pct, scaled) if isinstance(pct, PercentileTable)
                 else _distribution_range(pct, scaled))
    return PercentileRange(low=round(min(max(low, 0.0), 100.0), 6),
                           high=round(min(max(high, 0.0), 100.0), 6))


Statistics = Callable[[list[SectionRaw]], Sequence[float | None]]
_BOOT_BLOCK = 2_000_000
"""Resampled item indices drawn at once (16 MB)."""


_SUM = {"i": "int64", "f": "float64"}


def summable(values: np.ndarray) -> np.ndarray:
    """``values`` as bytes when they are small whole numbers (a right/wrong item's points): the
    resampled sums are then the same exact integers the float sums are (every partial sum of
    whole floats below 2**53 is exact), gathered from an eighth of the memory, in half the time."""
    import numpy as np

    if values.size and bool(np.all(values == np.rint(values))) and float(np.abs(values).max()) <= 127:
        return values.astype(np.int8)
    return values


def bootstrap_ci(sections: Sequence[SectionItems], fn: Statistics, *, n: int = 1000,
                 seed: int = 0, level: float = 0.95) -> list[Interval | None]:
    """Percentile-bootstrap intervals for each statistic ``fn`` returns.

    Items are resampled with replacement within their section (stratified: each resample keeps
    every section's item count), ``fn`` maps each resample's section totals to its statistics,
    and each statistic's interval is the (1-level)/2 and (1+level)/2 quantiles of the resampled
    values (observed values, not interpolated, since scaled scores are discrete). A statistic
    that is None in any resample gets None. Deterministic for a given ``seed`` (a local numpy
    Generator; no global random state).
    """
    import numpy as np  # here, not at the top: reading a run's records needs none of numpy

    rng = np.random.default_rng(seed)
    sums: list[tuple[SectionItems, np.ndarray, np.ndarray]] = []
    for sec in sections:
        k = len(sec.points)
        points = summable(np.asarray(sec.points, float))
        max_points = summable(np.asarray(sec.max_points, float))
        p_sums, m_sums = np.zeros(n), np.zeros(n)
        # Resamples drawn a block of rows at a time (the same numbers as one n x k draw): a
        # 20,000-item section would otherwise hold three n x k arrays, about 500 MB.
        rows = max(1, _BOOT_BLOCK // max(k, 1))
        for start in range(0, n if k else 0, rows):
            idx = rng.integers(0, k, size=(min(rows, n - start), k))
            p_sums[start : start + len(idx)] = points[idx].sum(axis=1, dtype=_SUM[points.dtype.kind])
            m_sums[start : start + len(idx)] = max_points[idx].sum(axis=1, dtype=_SUM[max_points.dtype.kind])
        sums.append((sec, p_sums, m_sums))
    values: list[Sequence[float | None]] = [
        fn([SectionRaw(section_id=sec.section_id, points=float(p[r]), max_points=float(m[r]),
                       weight=sec.weight) for sec, p, m in sums])
        for r in range(n)
    ]
    alpha = (1 - level) / 2
    out: list[Interval | None] = []
    for column in zip(*values, strict=True) if values else []:
        if any(v is None for v in column):
            out.append(None)
            continue
        lo, hi = np.quantile(np.asarray(column, float), [alpha, 1 - alpha], method="inverted_cdf")
        out.append((float(lo), float(hi)))
    return out


def score_exam(scale: Scale | None, sections: Sequence[SectionItems], *, n_boot: int = 1000,
               seed: int = 0, level: float = 0.95) -> ExamScoreCore:
    """Score one run of one exam: raw, scaled, percentile range and their bootstrap intervals.

    ``sections`` carry per-item points grouped by section (ungraded items are the caller's
    choice: count them as 0 or leave them out). ``n_boot=0`` skips the intervals.
    """
    raws = [s.raw() for s in sections]
    raw, max_raw = composite(raws)
    if max_raw <= 0:
        raise InputError.one("scores", None, "sections", "no scored items: nothing to score")
    result = to_scaled(scale, raws) if scale is not None else None
    pct = percentile_range(scale, result.scaled) if scale is not None and result else None

    def stats(resample: list[SectionRaw]) -> tuple[float | None, ...]:
        r, m = composite(resample)
        acc_raw = r / m * max_raw if m > 0 else 0.0
        if scale is None:
            return acc_raw, None, None
        scaled = to_scaled(scale, resample).scaled
        rng = percentile_range(scale, scaled)
        return acc_raw, scaled, rng.low if rng is not None else None

    intervals = bootstrap_ci(sections, stats, n=n_boot, seed=seed, level=level) if n_boot else []
    ci_raw, ci_scaled, ci_pct = [*intervals, None, None, None][:3]
    return ExamScoreCore(
        raw=raw, max_raw=max_raw, accuracy=raw / max_raw, scale_id=scale.id if scale else None,
        scaled=result.scaled if result else None, composite=result.composite if result else None,
        percentile=pct, approximation=result.approximation if result else None,
        ci=ScoreIntervals(level=level, resamples=n_boot, raw=ci_raw, scaled=ci_scaled,
                          percentile=ci_pct),
    )
