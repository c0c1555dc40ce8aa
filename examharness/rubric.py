"""Rubric grading of free responses and essays by a grader model, with the model call injected.

Official essay scoring (GRE, SAT, AP) has each response scored by two independent readers; when
their scores differ by more than a set amount a third reader adjudicates. This module follows that
rule with a grader model: reads are independent calls that differ only in the read index (used as
the seed), sent at temperature 0. Rule used here:

* two reads within ``adjudication_threshold`` of each other: the score is their mean;
* otherwise a third, equally independent read decides: the score is the mean of the third read and
  whichever of the first two is closer to it (if it lies exactly midway, the third read alone).

A grader reply without a parseable on-scale ``SCORE:`` line is a *grading error* (points ``None``),
never zero points: a broken grader must not look like a weak answer. Exceptions raised by ``ask``
(a failed request) propagate to the caller, which records and retries them.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from examharness.backends.base import Message
from examharness.prompts import make_env, render_messages

Ask = Callable[[list[Message], int], Awaitable[str]]
"""Send messages to the grader model at temperature 0 with this read index as seed; return text."""

_SCORE = re.compile(
    r"^[\s*#>_]*score[\s*_]*[:=][\s*_]*(?P<n>[-+]?\d+(?:\.\d+)?)(?:\s*/\s*(?P<of>\d+(?:\.\d+)?))?"
    r"[\s*_.]*$",
    re.IGNORECASE | re.MULTILINE,
)
_EPS = 1e-9


class Read(BaseModel):
    """One independent read of a response by the grader model."""

    model_config = ConfigDict(frozen=True)

    index: int
    """Read index, also sent as the seed (0 and 1: first reads; 2: adjudication)."""
    score: float | None
    """The score from the reply's last ``SCORE:`` line; ``None`` if missing or off the scale."""
    rationale: str
    raw_reply: str


class RubricGrade(BaseModel):
    """The grade of one response: final points, every read, and whether a third read decided."""

    model_config = ConfigDict(frozen=True)

    points: float | None
    reads: list[Read]
    adjudicated: bool
    status: Literal["graded", "grading_error"]
    rationale: str


class Agreement(BaseModel):
    """How often paired scores agree: exactly, and within one scale step (adjacent includes exact).
    With ``n == 0`` both rates are 0.0; check ``n`` before reading them."""

    model_config = ConfigDict(frozen=True)

    n: int
    exact: float
    adjacent: float


def _fmt(x: float) -> str:
    return f"{x:g}"


def grader_vars(*, prompt: str, rubric: str, response: str, lo: float, hi: float, step: float,
                max_points: float, reference: str | None = None) -> dict[str, Any]:
    """Every variable ``prompts/grader.j2`` needs, with numbers written as on a rubric (``6``)."""
    return {"prompt": prompt, "rubric": rubric, "reference": reference, "response": response,
            "scale_min": _fmt(lo), "scale_max": _fmt(hi), "scale_step": _fmt(step),
            "max_points": _fmt(max_points)}


def grader_messages(template_dir: Path, **variables: Any) -> list[Message]:
    """Render ``grader.j2`` into chat messages in the one prompt environment: its roles come from
    the template, so a response containing ``=== system ===`` cannot forge grader instructions."""
    dirs = [template_dir]
    return render_messages("grader", dirs, variables, make_env(dirs))


def on_scale(score: float, lo: float, hi: float, step: float) -> bool:
    """Whether ``score`` is one of lo, lo+step, ..., hi."""
    if not lo - _EPS <= score <= hi + _EPS:
        return False
    steps = (score - lo) / step
    return math.isclose(steps, round(steps), abs_tol=1e-6)


def parse_grade(reply: str, lo: float, hi: float, step: float) -> float | None:
    """The score on the reply's last ``SCORE: <number>`` line (``SCORE: 4/6`` allowed when the
    denominator is the top of the scale); ``None`` when there is none or it is off the scale."""
    matches = list(_SCORE.finditer(reply))
    if not matches:
        return None
    last = matches[-1]
    if last.group("of") is not None and not math.isclose(float(last.group("of")), hi):
        return None
    score = float(last.group("n"))
    return score if on_scale(score, lo, hi, step) else None


def _read(index: int, reply: str, lo: float, hi: float, step: float) -> Read:
    matches = list(_SCORE.finditer(reply))
    rationale = reply[: matches[-1].start()].strip() if matches else reply.strip()
    return Read(index=index, score=parse_grade(reply, lo, hi, step), rationale=rationale,
                raw_reply=reply)


def _combined_rationale(reads: list[Read]) -> str:
    return "\n\n".join(f"Read {r.index + 1} (score {r.score if r.score is not None else 'none'}):"
                       f"\n{r.rationale}" for r in reads)


def _error(reads: list[Read], adjudicated: bool) -> RubricGrade:
    bad = ", ".join(str(r.index + 1) for r in reads if r.score is None)
    return RubricGrade(points=None, reads=reads, adjudicated=adjudicated, status="grading_error",
                       rationale=f"grader reply {bad} had no on-scale SCORE line\n\n"
                                 + _combined_rationale(reads))


def adjudicate(first: float, second: float, third: float) -> float:
    """Mean of the third read and the closer of the first two (the third alone on a tie)."""
    d1, d2 = abs(third - first), abs(third - second)
    if math.isclose(d1, d2):
        return third
    return (third + (first if d1 < d2 else second)) / 2


async def grade_response(*, messages: list[Message], ask: Ask, lo: float, hi: float, step: float,
                         adjudication_threshold: float) -> RubricGrade:
    """Grade one response: two independent reads, and a third when they disagree too much."""
    results = await asyncio.gather(ask(messages, 0), ask(messages, 1), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]  # both reads ran their course: no request is left behind in flight
    replies = [r for r in results if isinstance(r, str)]
    reads = [_read(i, reply, lo, hi, step) for i, reply in enumerate(replies)]
    first, second = reads[0].score, reads[1].score
    if first is None or second is None:
        return _error(reads, adjudicated=False)
    if abs(first - second) <= adjudication_threshold + _EPS:
        return RubricGrade(points=(first + second) / 2, reads=reads, adjudicated=False,
                           status="graded", rationale=_combined_rationale(reads))
    reads.append(_read(2, await ask(messages, 2), lo, hi, step))
    third = reads[2].score
    if third is None:
        return _error(reads, adjudicated=True)
    return RubricGrade(points=adjudicate(first, second, third), reads=reads, adjudicated=True,
                       status="graded", rationale=_combined_rationale(reads))


def agreement(pairs: list[tuple[float, float]], step: float) -> Agreement:
    """Exact and adjacent (within one ``step``) agreement rates of paired scores, e.g. two reads
    of the same essays or grader vs human."""
    n = len(pairs)
    if n == 0:
        return Agreement(n=0, exact=0.0, adjacent=0.0)
    exact = sum(abs(a - b) <= _EPS for a, b in pairs)
    adjacent = sum(abs(a - b) <= step + _EPS for a, b in pairs)
    return Agreement(n=n, exact=exact / n, adjacent=adjacent / n)
