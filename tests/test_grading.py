"""grade_auto: statuses stay apart (error, empty, unparseable, refused are never 'incorrect')."""

from __future__ import annotations

import pytest

from examharness.backends.base import StageParams
from examharness.exam import EssayItem, MCItem, MultiSelectItem, NumericItem
from examharness.grading import grade_auto, short_answer
from examharness.records import ItemRecord, StageRecord

MC = MCItem(id="m", question="q", options=["a", "b", "c", "d"], answer="C")
MULTI = MultiSelectItem(id="s", question="q", options=["a", "b", "c", "d"], answer=["A", "C"])
GRID = NumericItem(id="n", question="q", answer=["3/4"], tolerance=0.001)
INTERVAL = NumericItem(id="i", question="q", answer=["(3,4]"])
ESSAY = EssayItem(id="e", prompt="p", rubric="r")


def _record(item_type: str, *replies: str, status: str = "ok", error: str | None = None) -> ItemRecord:
    params = StageParams(temperature=0, max_tokens=5)
    stages = [
        StageRecord(stage="explanation" if len(replies) > 1 and i == 0 else "answer" if i else "response",
                    messages=[], params=params, reply=r)
        for i, r in enumerate(replies)
    ]  # fmt: skip
    return ItemRecord(exam_id="x", section_id="s", item_id="i", item_type=item_type, status=status,  # type: ignore[arg-type]
                      stages=stages, error=error)  # fmt: skip


@pytest.mark.parametrize(
    ("item", "record", "status", "answer"),
    [
        (MC, _record("mc", "The answer is therefore [C]"), "correct", "C"),
        (MC, _record("mc", "Answer: B"), "incorrect", "B"),
        (MC, _record("mc", "Long reasoning, maybe B.", "C"), "correct", "C"),
        (MC, _record("mc", "So it is [D]", "???"), "incorrect", "D"),
        (MC, _record("mc", "", status="empty"), "empty", None),
        (MC, _record("mc", "I like turtles."), "unparseable", None),
        (MC, _record("mc", "I'm sorry, but I can't help with that."), "refused", None),
        (MC, _record("mc", status="error", error="http_500 after 6 attempts"), "error", None),
        (MULTI, _record("multi_select", "The answer is A, C"), "correct", "AC"),
        (MULTI, _record("multi_select", "The answer is A"), "incorrect", "A"),
        (GRID, _record("numeric", "so x = 0.75"), "correct", "0.75"),
        (GRID, _record("numeric", "The answer is 1,250"), "incorrect", "1250"),
        (INTERVAL, _record("numeric", "The answer is $(3,4]$."), "correct", "(3,4]"),
        (ESSAY, _record("essay", "An essay."), "ungraded", None),
        (ESSAY, _record("essay", "", status="empty"), "empty", None),
    ],
)
def test_grade_auto(item: object, record: ItemRecord, status: str, answer: str | None) -> None:
    graded = grade_auto(record, item)  # type: ignore[arg-type]
    assert graded.status == status
    assert graded.answer == answer
    if status == "error":
        assert graded.rationale == "http_500 after 6 attempts"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("so the answer is $(3,4]$.", "(3,4]"),
        ("Thus \\boxed{\\frac{26}{3}}", "\\frac{26}{3}"),
        ("The answer is therefore [x + 1]", "x+1"),
        ("no final statement", None),
    ],
)
def test_short_answer(reply: str, expected: str | None) -> None:
    assert short_answer(reply) == expected
