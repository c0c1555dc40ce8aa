"""Reading a run folder's JSONL files fast, with the same results as a careful read.

``RunFolder.read_items(messages=False)`` (what grading reads) cuts the prompts from each line's
bytes before validation: whatever a line holds (replies and prompts that spell the keys the cut
looks for, another key order, damage), the result is the full record with its ``messages``
emptied, or the same one-line error as a full read. Lines are validated a block at a time; grade
files of the old ``"source": "grader:NAME"`` form are still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runs import ExamSpec, first_right, make_run, write_exam

from examharness.backends.base import StageParams
from examharness.errors import InputError
from examharness.records import (
    GRADES_FILE,
    HUMAN_GRADES_FILE,
    ITEMS_FILE,
    GradedItem,
    ItemRecord,
    StageRecord,
)
from examharness.results import RunFolder

HOSTILE = ['"messages":[]', ',"params":{"temperature":1}', '{"stage":"answer"}', '\\"', "\\", '"]', "Ω ☃"]


def _stage(stage: str, prompt: str, reply: str) -> StageRecord:
    messages = [{"role": "system", "content": "x"}, {"role": "user", "content": prompt}]
    return StageRecord(stage=stage, messages=messages, params=StageParams(temperature=0.0, max_tokens=5),
                       reply=reply)  # fmt: skip


def _record(i: int, text: str) -> ItemRecord:
    return ItemRecord(exam_id="e", section_id="s", item_id=f"q{i}", item_type="mc", status="ok", stages=[
        _stage("explanation", f"prompt {text}", f"reply {text} The answer is [A]"),
        _stage("answer", text, text + "A"),
    ])  # fmt: skip


def _emptied(records: list[ItemRecord]) -> list[dict[str, object]]:
    return [r.model_copy(update={"stages": [s.model_copy(update={"messages": []}) for s in r.stages]})
            .model_dump() for r in records]  # fmt: skip


def test_lean_read_of_a_real_run_is_the_full_read_without_prompts(tmp_path: Path) -> None:
    exam = write_exam(tmp_path / "exams", ExamSpec("zeta", "Zeta Exam", n_mc=5, n_fr=1, scale=None))
    folder = RunFolder(make_run(tmp_path, [exam], model="m", right=first_right("zeta", 3)))
    full, lean = folder.read_items(), folder.read_items(messages=False)
    assert any(s.messages for r in full for s in r.stages)
    assert [r.model_dump() for r in lean] == _emptied(full)


@pytest.mark.parametrize("text", HOSTILE)
def test_replies_and_prompts_that_spell_the_keys_are_kept_whole(tmp_path: Path, text: str) -> None:
    folder = RunFolder(tmp_path)
    records = [_record(i, text) for i in range(3)]
    folder.write_items(records)
    assert [r.model_dump() for r in folder.read_items(messages=False)] == _emptied(records)


def test_another_key_order_reads_the_same(tmp_path: Path) -> None:
    """A line not laid out as examharness writes it (params before messages) is parsed in full."""
    records = [_record(i, "plain") for i in range(2)]
    lines = []
    for r in records:
        data = r.model_dump(mode="json")
        data["stages"] = [{"params": s.pop("params"), **s} for s in data["stages"]]
        lines.append(json.dumps(data))
    (tmp_path / ITEMS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert [r.model_dump() for r in RunFolder(tmp_path).read_items(messages=False)] == _emptied(records)


def test_a_damaged_line_is_named_as_by_a_full_read(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    folder.write_items([_record(i, "plain") for i in range(3)])
    path = tmp_path / ITEMS_FILE
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"status":"ok"', '"status":"maybe"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    messages = []
    for lean in (False, True):
        with pytest.raises(InputError) as err:
            folder.read_items(messages=not lean)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and f"{path}:2: status" in messages[0]


def test_two_records_on_one_line_are_a_damaged_line(tmp_path: Path) -> None:
    """Lines are validated a block at a time as one JSON array; a line holding two records would
    pass as two elements of it, so the block is read again a line at a time, which refuses it."""
    folder = RunFolder(tmp_path)
    records = [_record(i, "plain") for i in range(4)]
    folder.write_items(records)
    path = tmp_path / ITEMS_FILE
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], lines[1] + "," + lines[2], lines[3]]) + "\n", encoding="utf-8")
    for messages in (True, False):
        with pytest.raises(InputError, match=f"{path}:2: .*not valid JSON"):
            folder.read_items(messages=messages)


def test_grades_of_the_old_source_form_are_read(tmp_path: Path) -> None:
    grade = GradedItem(exam_id="e", section_id="s", item_id="q1", item_type="essay", status="graded",
                       points=4.0, max_points=6.0, how="rubric")  # fmt: skip
    new = grade.model_copy(update={"item_id": "q2", "source": "human", "grader": "ann"}).model_dump_json()
    old = json.loads(grade.model_dump_json())
    old.pop("grader")
    for name, source in ((GRADES_FILE, "grader:gpt-x"), (HUMAN_GRADES_FILE, "human:bob")):
        lines = [json.dumps({**old, "source": source}), new]
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    folder = RunFolder(tmp_path)
    for grades, who in ((folder.read_grades(), "grader: gpt-x"), (folder.read_human_grades(), "human: bob")):
        assert [g.graded_by for g in grades.values()] == [who, "human: ann"]
