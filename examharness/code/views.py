"""How pass@k reads in ``report``, the HTML report and ``compare`` (from result files alone)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel

from examharness.code.models import PassCount
from examharness.code.passk import ks_for, paired_difference, pass_at_k
from examharness.code.scores import SectionPassAtK


def pass_at_k_lines(values: Sequence[SectionPassAtK] | None) -> list[str]:
    """One line per code section, e.g. ``pass@1 0.512 [0.44, 0.59] (section problems: 164 ×1)``."""
    lines = []
    for s in values or []:
        parts = []
        for v in s.values:
            ci = f" [{v.ci[0]:.3f}, {v.ci[1]:.3f}]" if v.ci is not None else ""
            parts.append(f"pass@{v.k} {v.value:.3f}{ci}")
        lines.append(f"{'; '.join(parts)} (section {s.section}: {s.problems} problems × {s.samples} samples)")
    return lines


class PassAtKDelta(BaseModel):
    """Second run minus first on the problems both ran: mean per-problem pass@k difference."""

    k: int
    a: float
    b: float
    mean_diff: float
    ci: tuple[float, float] | None
    problems: int


def paired_pass_at_k(
    a: Mapping[str, PassCount], b: Mapping[str, PassCount], *, n_boot: int, seed: int
) -> list[PassAtKDelta]:
    """pass@k of two runs paired per problem (the same problems, each run's own samples)."""
    ids = sorted(set(a) & set(b))
    if not ids:
        return []
    out = []
    for k in ks_for([a[i] for i in ids] + [b[i] for i in ids]):
        va = [pass_at_k(a[i].n, a[i].c, k) for i in ids]
        vb = [pass_at_k(b[i].n, b[i].c, k) for i in ids]
        diff, ci = paired_difference(va, vb, resamples=max(n_boot, 1), seed=seed)
        out.append(PassAtKDelta(k=k, a=sum(va) / len(ids), b=sum(vb) / len(ids), mean_diff=diff,
                                ci=ci if n_boot else None, problems=len(ids)))  # fmt: skip
    return out


def delta_lines(deltas: Sequence[PassAtKDelta]) -> list[str]:
    lines = []
    for d in deltas:
        ci = f" [{d.ci[0]:+.3f}, {d.ci[1]:+.3f}]" if d.ci is not None else ""
        moved = f"{d.a:.3f} → {d.b:.3f}, Δ {d.mean_diff:+.3f}{ci}"
        lines.append(f"pass@{d.k}: {moved} over {d.problems} problems")
    return lines
