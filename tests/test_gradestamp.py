"""score keeps grades that are still current (grades.stamp.json) and grades again when anything
they depend on changed: the item records, an exam's answer key, human grades, the grading code,
grades.jsonl itself. Real run folders (``tests/runs.py``: the scripted server on 127.0.0.1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from runs import ExamSpec, add_human_grade, first_right, make_run, write_exam

from examharness import gradestamp
from examharness.api import score_run
from examharness.records import GRADES_FILE, GRADES_STAMP_FILE, ITEMS_FILE, ItemRecord
from examharness.results import ItemStream, RunFolder


def _age(path: Path, seconds: float = 60) -> None:
    """Date a file back, as if written a while ago (its stamp is then trusted; see RACY_NS)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


class Reads:
    """Counts the times ``items.jsonl`` is read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        real, real_stream = RunFolder.read_items, RunFolder.stream_items

        def spy(folder: RunFolder, *, messages: bool = True) -> list[ItemRecord]:
            self.n += 1
            return real(folder, messages=messages)

        def stream_spy(folder: RunFolder) -> ItemStream:
            self.n += 1
            return real_stream(folder)

        monkeypatch.setattr(RunFolder, "read_items", spy)
        monkeypatch.setattr(RunFolder, "stream_items", stream_spy)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A scored run, 4 of 6 multiple-choice items right, one free-response item ungraded, its
    grades stamped as current."""
    exam = write_exam(tmp_path / "exams", ExamSpec("delta", "Delta Exam", n_mc=6, n_fr=1, scale=None))
    run_dir = make_run(tmp_path, [exam], model="m", right=first_right("delta", 4))
    _age(run_dir / ITEMS_FILE)
    score_run(run_dir, n_boot=0, use_cache=False)
    return run_dir


def _raw(run_dir: Path) -> float:
    return score_run(run_dir, n_boot=0, use_cache=False).exams[0].raw


def test_current_grades_are_kept_without_reading_the_items(run: Path, monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:  # fmt: skip
    stamp = RunFolder(run).read_grades_stamp()
    grades = (run / GRADES_FILE).read_bytes()
    written = (run / GRADES_FILE).stat().st_mtime_ns
    (run / ITEMS_FILE).chmod(0)  # not read at all (root ignores modes; the spy below does not)
    reads = Reads(monkeypatch)
    try:
        assert _raw(run) == 4.0
    finally:
        (run / ITEMS_FILE).chmod(0o644)
    assert reads.n == 0
    assert (run / GRADES_FILE).read_bytes() == grades and (run / GRADES_FILE).stat().st_mtime_ns == written
    assert stamp is not None and RunFolder(run).read_grades_stamp() == stamp


@pytest.mark.parametrize(("before_grades", "whole_seconds", "kept"), [
    (5.0, False, True), (5.0, True, True), (1.0, False, True), (1.0, True, False), (0.01, False, False),
    (-10.0, False, False),
])  # fmt: skip
def test_items_changed_just_before_the_grades_are_not_trusted(
    run: Path, monkeypatch: pytest.MonkeyPatch, before_grades: float, whole_seconds: bool, kept: bool
) -> None:
    """A racily clean items.jsonl (changed within a time stamp tick of the grades: 100 ms, or 2 s
    on a file system that keeps whole seconds) may hide a same-size edit: graded again."""
    path = run / ITEMS_FILE
    grades_ns = (run / GRADES_FILE).stat().st_mtime_ns
    items_ns = grades_ns - int(before_grades * 1e9)
    if whole_seconds:
        items_ns -= items_ns % 1_000_000_000
    os.utime(path, ns=(items_ns, items_ns))
    folder = RunFolder(run)
    stamp = folder.read_grades_stamp()
    assert stamp is not None and stamp.grades is not None
    folder.write_grades_stamp(stamp.model_copy(update={"items": folder.file_stamp(ITEMS_FILE)}))
    reads = Reads(monkeypatch)
    assert _raw(run) == 4.0 and reads.n == (0 if kept else 1)


def _retry_right(run_dir: Path, item_id: str) -> str:
    """A newer record of ``item_id`` whose replies give the right answer (as a retried item's)."""
    lines = (run_dir / ITEMS_FILE).read_text(encoding="utf-8").splitlines()
    record = next(ItemRecord.model_validate_json(x) for x in lines if f'"item_id":"{item_id}"' in x)
    replies = {"explanation": "The answer is therefore [C]", "answer": "C"}
    stages = [s.model_copy(update={"reply": replies[s.stage]}) for s in record.stages]
    return record.model_copy(update={"stages": stages}).model_dump_json()


def test_appended_items_are_graded(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = Reads(monkeypatch)
    with (run / ITEMS_FILE).open("a", encoding="utf-8") as f:
        f.write(_retry_right(run, "q6") + "\n")  # q6's answer is C (answers cycle A-D from q1 = B)
    _age(run / ITEMS_FILE)
    assert _raw(run) == 5.0 and reads.n == 1
    assert _raw(run) == 5.0 and reads.n == 1


def test_an_item_record_edited_in_place_is_graded(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same size, a different reply: the file's modification time tells."""
    path = run / ITEMS_FILE
    text = path.read_text(encoding="utf-8")
    old = next(x for x in text.splitlines() if '"item_id":"q6"' in x)
    fixed = old.replace("therefore [D]", "therefore [C]").replace('"reply":"D"', '"reply":"C"')
    assert fixed != old and len(fixed) == len(old)  # the wrong letter D becomes the right one, C
    path.write_text(text.replace(old, fixed), encoding="utf-8")
    _age(path, 30)
    reads = Reads(monkeypatch)
    assert _raw(run) == 5.0 and reads.n == 1


def test_an_edited_answer_key_is_graded(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exam = run.parent / "exams" / "delta.yaml"
    text = exam.read_text(encoding="utf-8")
    assert "answer: B" in text  # q1, answered right
    exam.write_text(text.replace("answer: B", "answer: A", 1), encoding="utf-8")
    reads = Reads(monkeypatch)
    assert _raw(run) == 3.0 and reads.n == 1


def test_human_grades_are_applied(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = Reads(monkeypatch)
    add_human_grade(run, "delta", "fr1", 1.5)  # appends to human_grades.jsonl, then scores
    assert reads.n == 1
    assert _raw(run) == 5.5


def test_changed_grading_code_grades_again(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gradestamp, "grading_fingerprint", lambda: "another version of the code")
    reads = Reads(monkeypatch)
    assert _raw(run) == 4.0 and reads.n == 1
    assert _raw(run) == 4.0 and reads.n == 1  # stamped with the new fingerprint


@pytest.mark.parametrize("damage", ["grades", "stamp", "no stamp"])
def test_grades_or_stamp_touched_by_hand_grade_again(run: Path, monkeypatch: pytest.MonkeyPatch, damage: str
                                                     ) -> None:  # fmt: skip
    grades = run / GRADES_FILE
    if damage == "grades":
        grades.write_text(grades.read_text(encoding="utf-8").replace('"points":0.0', '"points":1.0'),
                          encoding="utf-8")  # fmt: skip
    elif damage == "stamp":
        (run / GRADES_STAMP_FILE).write_text("{not json", encoding="utf-8")
    else:
        (run / GRADES_STAMP_FILE).unlink()
    reads = Reads(monkeypatch)
    assert _raw(run) == 4.0 and reads.n == 1
