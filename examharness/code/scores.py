"""pass@k per section and per-problem pass rates, from graded code items (pure, plus one file).

``scores.json`` carries, per exam with code sections, each section's pass@k for every k its
samples allow (1, 10, 100 up to the smallest sample count) with a bootstrap CI over problems.
``pass_rates.json`` (:class:`RunPassRates`) lists every code problem's samples and passes: the
input of the predictable-scaling fit (the report's HumanEval capability curve), written by
``score`` beside ``grades.jsonl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from examharness.code.models import PassCount
from examharness.code.passk import PassAtK, ks_for, section_pass_at_k

PASS_RATES_FILE = "pass_rates.json"


class SectionPassAtK(BaseModel):
    """One code section's (or, as ``all``, the exam's) pass@k values."""

    section: str
    problems: int
    samples: int
    """The smallest number of samples of any problem (k can be at most this)."""
    values: list[PassAtK]


class ProblemRate(BaseModel):
    """One problem's samples: ``n`` answered, ``passed`` passed (every test, for code), ``errors``
    samples with no grade (a failed request, or an ungraded free response: no sample is counted,
    the problem may have no rate yet). Run folders' ``pass_rates.json`` and family runs both
    keep these; a family run's rows name no section."""

    exam_id: str
    section_id: str | None = None
    item_id: str
    n: int
    passed: int
    errors: int = 0

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.n if self.n else None


class RunPassRates(BaseModel):
    """``pass_rates.json`` in a run folder."""

    schema_version: int = 1
    run_id: str
    model: str
    written_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    problems: list[ProblemRate]


class GradedCode(BaseModel):
    """What pass@k needs of a graded item (a :class:`~examharness.records.GradedItem` fits)."""

    exam_id: str
    section_id: str
    item_id: str
    item_type: str
    status: str
    passes: PassCount | None = None


def code_items(graded: Sequence[BaseModel]) -> list[GradedCode]:
    """The code items of a list of graded items, with what pass@k needs of each."""
    code = [g for g in graded if getattr(g, "item_type", None) == "code"]
    return [GradedCode.model_validate(g.model_dump()) for g in code]


def section_values(
    graded: Sequence[GradedCode], section_ids: Sequence[str], *, n_boot: int, seed: int
) -> list[SectionPassAtK]:
    """pass@k per code section, in exam order, and ``all`` when there are several sections."""
    groups = [(sid, [g.passes for g in graded if g.section_id == sid and g.passes is not None])
              for sid in section_ids]  # fmt: skip
    groups = [(sid, counts) for sid, counts in groups if counts]
    if len(groups) > 1:
        groups.append(("all", [c for _, counts in groups for c in counts]))
    out = []
    for sid, counts in groups:
        values = [section_pass_at_k(counts, k, resamples=max(n_boot, 1), seed=seed) for k in ks_for(counts)]
        if n_boot == 0:
            values = [v.model_copy(update={"ci": None}) for v in values]
        out.append(SectionPassAtK(section=sid, problems=len(counts), samples=min(c.n for c in counts),
                                  values=values))  # fmt: skip
    return out


def problem_rates(graded: Sequence[GradedCode]) -> list[ProblemRate]:
    rates = []
    for g in graded:
        if g.passes is not None or g.status == "error":
            n, c = (g.passes.n, g.passes.c) if g.passes is not None else (0, 0)
            rates.append(ProblemRate(exam_id=g.exam_id, section_id=g.section_id, item_id=g.item_id,
                                     n=n, passed=c, errors=int(g.status == "error")))  # fmt: skip
    return rates


def run_pass_rates(run_id: str, model: str, graded: Sequence[GradedCode]) -> RunPassRates | None:
    """``pass_rates.json`` for a run with code items; None for a run without."""
    problems = problem_rates(graded)
    return RunPassRates(run_id=run_id, model=model, problems=problems) if problems else None
