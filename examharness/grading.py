"""From stored replies to graded items: answer extraction for choice and numeric items,
rubric grading (grader model or human) for free response and essays.

Statuses are kept apart on purpose: ``error`` (the request failed), ``empty``, ``refused`` and
``unparseable`` are never folded into ``incorrect``; reports show them as extraction health.
Nothing here calls a model except :func:`grade_with_model`, through an injected ``ask``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from examharness.code.grade import grade_code
from examharness.exam import (
    CodeItem,
    EssayItem,
    Exam,
    FreeResponseItem,
    Item,
    LoadedExam,
    MCItem,
    MultiSelectItem,
    NumericItem,
    Section,
)
from examharness.extract.model import Extraction
from examharness.memo import ResultMemo
from examharness.records import NEEDS_GRADE, GradedItem, ItemRecord, RunConfig
from examharness.rubric import grade_response, grader_messages, grader_vars

Ask = Callable[[list[dict[str, Any]], int], Awaitable[str]]


def _base(record: ItemRecord, item: Item) -> dict[str, Any]:
    return {
        "exam_id": record.exam_id, "section_id": record.section_id, "item_id": item.id,
        "item_type": item.type, "max_points": item.max_points,
    }  # fmt: skip


def _choice_extraction(record: ItemRecord, item: MCItem | MultiSelectItem) -> Extraction:
    """Prefer the answer stage (the letter sampled at temperature 0); fall back to the explanation,
    but not to a loose reading of an explanation cut off at ``max_tokens``."""
    from examharness.extract.choice import extract_choice  # compiled on first use: not for memo hits

    multi = isinstance(item, MultiSelectItem)
    explanation = record.stages[0]
    if len(record.stages) > 1:  # the letter first: the explanation is read only when it is not one
        second = extract_choice(record.stages[1].reply or "", item.options, multi=multi)
        if second.status == "answered":
            return second.model_copy(update={"how": f"answer-stage:{second.how}"})
    first = extract_choice(explanation.reply or "", item.options, multi=multi)
    if len(record.stages) == 1:
        return first
    if explanation.finish_reason == "length" and first.status == "answered" and first.tier != "strict":
        return Extraction(status="unparseable", how="explanation-cut-off")
    return first.model_copy(update={"how": f"explanation:{first.how}"})


_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_STATED = re.compile(r"(?i)answer is(?: therefore)?:?\s*([^\n]+?)\s*\.?\s*$", re.MULTILINE)


def _norm(value: str | float) -> str:
    return re.sub(r"[\s$]", "", str(value)).rstrip(".")


def short_answer(reply: str) -> str | None:
    """A non-numeric final answer (an interval, an expression): the last ``\\boxed{}`` or the
    text after the last "answer is", normalised (no spaces, no ``$``) for exact comparison."""
    boxed = _BOXED.findall(reply)
    if boxed:
        return _norm(boxed[-1])
    stated = _STATED.findall(reply)
    if not stated:
        return None
    last: str = stated[-1]
    if last.startswith("[") and last.endswith("]"):
        last = last[1:-1]
    return _norm(last)


def _correct_choice(item: MCItem | MultiSelectItem, answer: str) -> bool:
    if isinstance(item, MCItem):
        return answer == item.answer
    return answer == "".join(sorted(set(item.answer)))


def grade_auto(record: ItemRecord, item: Item) -> GradedItem:
    """Grade a choice or numeric item from its reply (pure; free response is ``ungraded`` here)."""
    base = _base(record, item)
    if record.status == "error":
        return GradedItem(**base, status="error", points=0.0, how="request failed", rationale=record.error)
    if isinstance(item, CodeItem):
        return GradedItem(**grade_code(record.code, base, record.status))
    if isinstance(item, FreeResponseItem | EssayItem):
        status = "empty" if record.status == "empty" else "ungraded"
        points = 0.0 if status == "empty" else None
        return GradedItem(**base, status=status, points=points, how="no reply" if points == 0 else "")
    if isinstance(item, NumericItem):
        from examharness.extract.numeric import extract_numeric, numeric_matches  # as in _choice_extraction

        text = record.stages[-1].reply or "" if len(record.stages) > 1 else record.stages[0].reply or ""
        ext = extract_numeric(text)
        if ext.status != "answered" and len(record.stages) > 1:
            ext = extract_numeric(record.stages[0].reply or "")
        correct = ext.answer is not None and numeric_matches(ext.answer, item.answer, item.tolerance)
        short = short_answer(text)
        if not correct and short is not None and short in {_norm(a) for a in item.answer}:
            ext = Extraction(status="answered", answer=short, how="short-answer", tier="strict")
            correct = True
    else:
        ext = _choice_extraction(record, item)
        correct = ext.answer is not None and _correct_choice(item, ext.answer)
    if ext.status != "answered":
        return GradedItem(**base, status=ext.status, points=0.0, how=ext.how)
    return GradedItem(
        **base, status="correct" if correct else "incorrect", points=1.0 if correct else 0.0,
        answer=ext.answer, how=ext.how, tier=ext.tier,
    )  # fmt: skip


async def grade_with_model(
    record: ItemRecord,
    item: FreeResponseItem | EssayItem,
    *,
    ask: Ask,
    grader: str,
    prompts_dir: Path,
    threshold: float,
) -> GradedItem:
    """Rubric grading by a grader model: two reads, a third to adjudicate (see ``rubric``)."""
    base = _base(record, item)
    if isinstance(item, EssayItem):
        lo, hi, step = item.scale.min, item.scale.max, item.scale.step
        reference = None
    else:
        lo, hi, step, reference = 0.0, item.max_points, 0.5, item.reference
    variables = grader_vars(
        prompt=item.prompt, rubric=item.rubric, response=record.stages[0].reply or "",
        lo=lo, hi=hi, step=step, max_points=item.max_points, reference=reference,
    )  # fmt: skip
    messages = grader_messages(prompts_dir, **variables)
    grade = await grade_response(
        messages=messages, ask=ask, lo=lo, hi=hi, step=step, adjudication_threshold=threshold
    )
    return GradedItem(
        **base, status=grade.status, points=grade.points, rationale=grade.rationale,
        how="rubric", source="grader", grader=grader, reads=[r.score for r in grade.reads],
        adjudicated=grade.adjudicated,
    )  # fmt: skip


def item_index(exam: Exam) -> dict[str, tuple[Section, Item]]:
    return {item.id: (section, item) for section, item in exam.items()}


def planned_items(exam: Exam, n_items: int) -> list[tuple[Section, Item]]:
    """The items a run asked (``--limit N`` asks the first N, in file order): only these are scored."""
    return exam.items()[:n_items]


def grade_run(
    cfg: RunConfig, records: Iterable[ItemRecord], exams: dict[str, LoadedExam], *,
    previous: dict[tuple[str, str], GradedItem], human: dict[tuple[str, str], GradedItem],
    memo: ResultMemo | None = None,
) -> list[GradedItem]:  # fmt: skip
    """Auto-grade every planned item of the run (an item with no record is an ``error``, "not
    run"; a shard run plans only its shard's items); keep ``previous`` grader-model grades of
    answers still ungraded; ``human`` grades (by ``(exam_id, item_id)``) override everything.
    ``memo`` serves grades of replies graded before (:mod:`examharness.memo`).

    ``records`` may be a stream (:meth:`~examharness.results.RunFolder.stream_items`): they are
    graded a block at a time and only the grades are kept; an item's later record is its latest."""
    planned = _planned(cfg, exams)
    wanted = {(e, item.id): item for e, _, item in planned}
    auto: dict[tuple[str, str], GradedItem] = {}
    stream = iter(records)
    while block := list(itertools.islice(stream, _GRADE_BLOCK)):
        pairs = [(r, wanted[r.key]) for r in block if r.key in wanted]
        grades = memo.grade_all(pairs, grade_auto) if memo is not None else [grade_auto(*p) for p in pairs]
        auto.update((r.key, g) for (r, _), g in zip(pairs, grades, strict=True))
    return _assemble(planned, auto, previous=previous, human=human)


def grades_from_memo(
    cfg: RunConfig, exams: dict[str, LoadedExam], keys: dict[tuple[str, str], str | None],
    memo: ResultMemo, *, human: dict[tuple[str, str], GradedItem],
) -> list[GradedItem] | None:  # fmt: skip
    """What :func:`grade_run` gives, from the memo alone, when a run session just recorded every
    planned item (so its records are each item's latest) under grade ``keys`` the memo holds;
    None when any item lacks one (recorded before, graded otherwise, or not in the memo): then
    the records must be read."""
    planned = _planned(cfg, exams)
    wanted = [keys.get((e, item.id)) for e, _, item in planned]
    if not planned or any(k is None for k in wanted):
        return None
    known = memo.known_grades([k for k in wanted if k is not None])
    if len(known) != len(set(wanted)):
        return None
    auto = {(e, item.id): known[k] for (e, _, item), k in zip(planned, wanted, strict=True) if k is not None}
    return _assemble(planned, auto, previous={}, human=human)


def _planned(cfg: RunConfig, exams: dict[str, LoadedExam]) -> list[tuple[str, Section, Item]]:
    return [(ref.id, section, item) for ref in cfg.exams
            for section, item in planned_items(exams[ref.id].exam, ref.n_items)
            if cfg.shard is None or cfg.shard.holds(ref.id, section.id, item.id)]  # fmt: skip


def _assemble(
    planned: list[tuple[str, Section, Item]], auto: dict[tuple[str, str], GradedItem], *,
    previous: dict[tuple[str, str], GradedItem], human: dict[tuple[str, str], GradedItem],
) -> list[GradedItem]:  # fmt: skip
    graded: list[GradedItem] = []
    for exam_id, section, item in planned:
        key = (exam_id, item.id)
        g = auto.get(key)
        if g is None:
            g = GradedItem(
                exam_id=exam_id, section_id=section.id, item_id=item.id, item_type=item.type,
                status="error", points=0.0, max_points=item.max_points, how="not run",
                rationale="no record: the run did not finish; use run --resume",
            )  # fmt: skip
        elif g.status == "ungraded" and (old := previous.get(key)) is not None and old.source == "grader":
            g = old
        graded.append(g)
    return [human.get((g.exam_id, g.item_id), g) for g in graded]


_GRADE_BLOCK = 2000
"""Records graded (and their memo entries looked up) at once."""


def needs_rubric(graded: Sequence[GradedItem]) -> list[GradedItem]:
    return [g for g in graded if g.status in NEEDS_GRADE]
