"""``examharness scaling``: read a loss run and a family run, fit the small members, predict the rest.

Members at or below the compute cut-off are fitted; members above it are predicted, with a
bootstrap band, and where a held-out member was measured its actual value and the prediction
error are reported. The default cut-off holds out the largest member.

Capability follows the report's restriction: P is the set of problems that every fitted member
solved at least once in its samples (a zero pass rate has an infinite log); the problems left out
are listed. A held-out member's actual value is taken over the same P; a problem it never solved
is counted at half a success (pass rate 1/(2n)), and how many were is reported as ``floored``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
from pydantic import BaseModel, Field

from examharness.errors import InputError
from examharness.familyrun import PASS_RATES_FILE, FamilyPassRates, MemberPassRates
from examharness.jsonfiles import read_model
from examharness.loss import LOSS_SUMMARY_FILE, LossSummary, read_loss_records
from examharness.records import SCHEMA_VERSION, Model, SchemaVersion
from examharness.scaling import (
    Array,
    Band,
    CapabilityLaw,
    LossLaw,
    bootstrap_bands,
    fit_capability_law,
    fit_loss_law,
    mean_neg_log_pass,
)

M = TypeVar("M", bound=BaseModel)
LossMetric = Literal["nats_per_token", "bits_per_byte"]


class Point(Model):
    member: str
    label: str | None = None
    compute: float
    value: float


class Prediction(Model):
    member: str
    label: str | None = None
    compute: float
    predicted: float
    band: Band | None
    actual: float | None
    error: float | None
    """actual − predicted."""
    relative_error: float | None


class LossScaling(Model):
    metric: LossMetric
    law: LossLaw
    fitted: list[Point]
    predictions: list[Prediction]
    texts: int
    texts_dropped: int
    """Texts left out because some member has no loss for them (an error record)."""


class CapabilityScaling(Model):
    law: CapabilityLaw
    exam: str | None
    problems: list[str]
    excluded: list[str]
    """Problems some fitted member never solved: outside P, as the report's restriction asks."""
    fitted: list[Point]
    predictions: list[Prediction]
    floored: dict[str, int] = Field(default_factory=dict)


class AccuracyBar(Model):
    member: str
    label: str | None = None
    compute: float | None
    accuracy: float


class ScalingReport(Model):
    schema_version: SchemaVersion = SCHEMA_VERSION
    cutoff: float
    bootstrap: int
    loss: LossScaling | None = None
    capability: CapabilityScaling | None = None
    accuracy: dict[str, list[AccuracyBar]] = Field(default_factory=dict)
    """Mean pass rate per exam and member (the report's Figure 3)."""


def _read(path: Path, model: type[M], what: str) -> M:
    if not path.is_file():
        raise InputError.one(path.parent, None, "(folder)", f"not {what} (no {path.name})")
    return read_model(path, model)


def default_cutoff(computes: list[float]) -> float:
    """Hold out the largest member: the cut-off is the second-largest compute."""
    distinct = sorted(set(computes))
    if len(distinct) < 2:
        raise InputError.one("command line", None, "--cutoff", "a fit needs members of at least two computes")
    return distinct[-2]


def _split(
    points: list[tuple[str, float]], cutoff: float, need: int, what: str
) -> tuple[list[int], list[int]]:
    fit = [i for i, (_, c) in enumerate(points) if c <= cutoff]
    held = [i for i, (_, c) in enumerate(points) if c > cutoff]
    if len({points[i][1] for i in fit}) < need:
        raise InputError.one(
            "command line",
            None,
            "--cutoff",
            f"the {what} fit needs members of at least {need} computes at or below {cutoff:g}",
        )
    return fit, held


def _safe(fn: Callable[[], Array]) -> Array:
    try:
        return fn()
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return np.array([math.nan])


def _prediction(
    name: str, label: str | None, compute: float, predicted: float, band: Band | None, actual: float | None
) -> Prediction:
    error = None if actual is None else actual - predicted
    rel = None if error is None or not actual else error / abs(actual)
    return Prediction(
        member=name, label=label, compute=compute, predicted=predicted, band=band,
        actual=actual, error=error, relative_error=rel,
    )


def loss_scaling(
    run_dir: Path, cutoff: float | None, metric: LossMetric, *, n_boot: int, seed: int
) -> LossScaling:
    summary = _read(run_dir / LOSS_SUMMARY_FILE, LossSummary, "a loss run folder")
    members = [m for m in summary.members if m.ok > 0]
    if any(m.compute is None for m in members):
        raise InputError.one(run_dir, None, "compute", "a loss run for a fit needs --family with compute")
    ok = {(r.member, r.text_id): r for r in read_loss_records(run_dir) if r.status == "ok"}
    texts = sorted({t for _, t in ok})
    common = [t for t in texts if all((m.member, t) in ok for m in members)]
    if not common:
        raise InputError.one(run_dir, None, "loss", "no text has a loss for every member")
    nll = np.array([[ok[(m.member, t)].nll_nats or 0.0 for t in common] for m in members])
    if metric == "bits_per_byte":
        denom = np.array([[ok[(m.member, t)].n_bytes * math.log(2) for t in common] for m in members])
    else:
        denom = np.array([[ok[(m.member, t)].scored_tokens for t in common] for m in members], dtype=float)
    compute = np.array([m.compute.flops for m in members if m.compute is not None])
    cut = cutoff if cutoff is not None else default_cutoff(compute.tolist())
    fit_i, held_i = _split(
        [(m.member, float(c)) for m, c in zip(members, compute, strict=True)], cut, 3, "loss"
    )
    values = nll.sum(axis=1) / denom.sum(axis=1)
    law = fit_loss_law(compute[fit_i], values[fit_i])
    targets = compute[held_i]

    def refit(mi: Array, ti: Array) -> Array:
        rows = np.array(fit_i)[mi]
        v = nll[np.ix_(rows, ti)].sum(axis=1) / denom[np.ix_(rows, ti)].sum(axis=1)
        return _safe(lambda: np.array([fit_loss_law(compute[rows], v)(float(c)) for c in targets]))

    bands = bootstrap_bands(refit, len(fit_i), len(common), 3, n_boot=n_boot, seed=seed) if held_i else None
    return LossScaling(
        metric=metric,
        law=law,
        texts=len(common),
        texts_dropped=len(texts) - len(common),
        fitted=[
            Point(
                member=members[i].member,
                label=members[i].label,
                compute=float(compute[i]),
                value=float(values[i]),
            )
            for i in fit_i
        ],
        predictions=[
            _prediction(
                members[i].member,
                members[i].label,
                float(compute[i]),
                law(float(compute[i])),
                bands[j] if bands else None,
                float(values[i]),
            )
            for j, i in enumerate(held_i)
        ],
    )


def _rate_matrix(members: list[MemberPassRates], exam: str | None) -> tuple[list[str], Array, Array]:
    """Problem ids and members × problems pass rates and sample counts (NaN where unrated)."""

    def pid(e: str, i: str) -> str:
        return f"{e}/{i}"

    ids = sorted(
        {pid(p.exam_id, p.item_id) for m in members for p in m.problems if exam in (None, p.exam_id)}
    )
    if not ids:
        raise InputError.one("pass_rates.json", None, "--exam", f"no problems for exam {exam!r}")
    rates = np.full((len(members), len(ids)), np.nan)
    counts = np.zeros((len(members), len(ids)))
    where = {p: j for j, p in enumerate(ids)}
    for i, m in enumerate(members):
        for p in m.problems:
            j = where.get(pid(p.exam_id, p.item_id))
            if j is not None and p.pass_rate is not None:
                rates[i, j], counts[i, j] = p.pass_rate, p.n
    return ids, rates, counts


def capability_scaling(
    family_dir: Path, cutoff: float | None, exam: str | None, *, n_boot: int, seed: int
) -> CapabilityScaling:
    data = _read(family_dir / PASS_RATES_FILE, FamilyPassRates, "a family run folder")
    members = [m for m in data.members if m.compute is not None]
    compute = np.array([m.compute.flops for m in members if m.compute is not None])
    cut = cutoff if cutoff is not None else default_cutoff(compute.tolist())
    fit_i, held_i = _split(
        [(m.member, float(c)) for m, c in zip(members, compute, strict=True)], cut, 2, "capability"
    )
    ids, rates, counts = _rate_matrix(members, exam)
    fit_rates = rates[fit_i]
    keep = np.all(np.nan_to_num(fit_rates, nan=0.0) > 0, axis=0)
    if not keep.any():
        raise InputError.one(family_dir, None, "problems", "no problem was solved by every fitted member")
    kept = [p for p, k in zip(ids, keep, strict=True) if k]
    sub = rates[:, keep]
    values = mean_neg_log_pass(fit_rates[:, keep])
    law = fit_capability_law(compute[fit_i], values)
    targets = compute[held_i]

    def refit(mi: Array, pi: Array) -> Array:
        rows = np.array(fit_i)[mi]
        v = mean_neg_log_pass(sub[np.ix_(rows, pi)])
        if np.any(v <= 0):
            return np.array([math.nan])
        return _safe(lambda: np.array([fit_capability_law(compute[rows], v)(float(c)) for c in targets]))

    bands = bootstrap_bands(refit, len(fit_i), len(kept), 2, n_boot=n_boot, seed=seed) if held_i else None
    predictions, floored = [], {}
    for j, i in enumerate(held_i):
        m = members[i]
        actual = None
        row, n = sub[i], counts[i, keep]
        if not np.isnan(row).any():
            zeros = row == 0
            floored[m.member] = int(zeros.sum())
            actual = float(-np.mean(np.log(np.where(zeros, 0.5 / np.maximum(n, 1), row))))
        predictions.append(
            _prediction(
                m.member,
                m.label,
                float(compute[i]),
                law(float(compute[i])),
                bands[j] if bands else None,
                actual,
            )
        )
    return CapabilityScaling(
        law=law,
        exam=exam,
        problems=kept,
        excluded=[p for p, k in zip(ids, keep, strict=True) if not k],
        fitted=[
            Point(member=members[i].member, label=members[i].label, compute=float(compute[i]), value=float(v))
            for i, v in zip(fit_i, values, strict=True)
        ],
        predictions=predictions,
        floored=floored,
    )


def accuracy_bars(family_dir: Path) -> dict[str, list[AccuracyBar]]:
    """Mean pass rate per exam for every member, in order of compute (Figure 3)."""
    data = _read(family_dir / PASS_RATES_FILE, FamilyPassRates, "a family run folder")
    ordered = sorted(data.members, key=lambda m: m.compute.flops if m.compute else math.inf)
    exams = sorted({e for m in data.members for e in m.accuracy})
    return {
        e: [
            AccuracyBar(
                member=m.member,
                label=m.label,
                compute=m.compute.flops if m.compute else None,
                accuracy=m.accuracy[e],
            )
            for m in ordered
            if e in m.accuracy
        ]
        for e in exams
    }


def scaling_report(
    *,
    loss_dir: Path | None,
    family_dir: Path | None,
    cutoff: float | None,
    exam: str | None,
    metric: LossMetric = "nats_per_token",
    n_boot: int = 1000,
    seed: int = 0,
) -> ScalingReport:
    if loss_dir is None and family_dir is None:
        raise InputError.one(
            "command line", None, "--loss/--capability", "give a loss run, a family run or both"
        )
    loss = loss_scaling(loss_dir, cutoff, metric, n_boot=n_boot, seed=seed) if loss_dir else None
    cap = capability_scaling(family_dir, cutoff, exam, n_boot=n_boot, seed=seed) if family_dir else None
    used = [s for s in (loss, cap) if s is not None]
    cuts = [max(p.compute for p in s.fitted) for s in used]
    return ScalingReport(
        cutoff=cutoff if cutoff is not None else max(cuts),
        bootstrap=n_boot,
        loss=loss,
        capability=cap,
        accuracy=accuracy_bars(family_dir) if family_dir else {},
    )
