"""grade export/import: the human grading round trip on a real run folder."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from runs import ExamSpec, answer_key, first_right, run_on, write_exam

from examharness.api import score_run
from examharness.cli import main
from examharness.errors import InputError
from examharness.human import COLUMNS, export_grades, import_grades
from examharness.jsonfiles import read_jsonl
from examharness.records import HUMAN_GRADES_FILE, GradedItem
from examharness.results import RunFolder
from examharness.testing import ScriptedServer

FR_REPLY = "The journey takes 85 minutes, because 9:40 to 11:05 is 1 h 25 min."


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ScriptedServer, Path]]:
    """A scored run (2/4 MC right, 2 free-response + 1 essay ungraded), server still up."""
    exam = write_exam(tmp_path / "exams", ExamSpec("gamma", "Gamma Exam", n_mc=4, n_fr=2, n_essay=1,
                                                   scale=None))  # fmt: skip
    key = answer_key([exam], first_right("gamma", 2), {"gamma:fr1": FR_REPLY})
    with ScriptedServer(responder=key, model="m") as srv:
        yield srv, run_on(srv, tmp_path, [exam], "m")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_round_trip_changes_scores_without_any_request(
    served: tuple[ScriptedServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv, run = served
    sent = len(srv.requests)
    before = score_run(run, n_boot=0).exams[0]
    assert (before.raw, before.items.ungraded) == (2.0, 3)
    sheet = tmp_path / "grades.csv"
    assert main(["grade", "export", str(run), "--out", str(sheet)]) == 0
    rows = _read(sheet)
    assert list(rows[0]) == COLUMNS
    assert [(r["item_id"], r["scale_min"], r["scale_max"], r["scale_step"]) for r in rows] == [
        ("fr1", "0", "2", "0.5"), ("fr2", "0", "2", "0.5"), ("es1", "0", "6", "0.5"),
    ]  # fmt: skip
    assert rows[0]["response"] == FR_REPLY and rows[0]["rubric"].startswith("2: complete")
    assert rows[0]["reference"] == "A complete explanation." and rows[2]["reference"] == ""
    assert all(r["points"] == r["grader"] == r["comment"] == "" for r in rows)
    rows[0].update(points="1.5", grader="alice", comment="right answer, thin working")
    rows[1].update(points="2")
    rows[2].update(points="4.5", grader="carol")
    _write(sheet, rows)
    assert main(["grade", "import", str(run), str(sheet), "--grader", "bob"]) == 0
    assert "imported 3 grades" in capsys.readouterr().out
    stored = read_jsonl(run / HUMAN_GRADES_FILE, GradedItem).records
    assert [(g.item_id, g.points, g.source, g.grader, g.status) for g in stored] == [
        ("fr1", 1.5, "human", "alice", "graded"), ("fr2", 2.0, "human", "bob", "graded"),
        ("es1", 4.5, "human", "carol", "graded"),
    ]  # fmt: skip
    assert stored[0].rationale == "right answer, thin working" and stored[1].rationale is None
    assert main(["score", str(run), "--bootstrap", "0"]) == 0
    after = RunFolder(run).read_scores().exams[0]
    assert after.raw == 2.0 + 1.5 + 2.0 + 4.5
    assert (after.items.graded, after.items.ungraded, after.provisional) == (3, 0, [])
    assert len(srv.requests) == sent  # scoring with human grades asked no model
    assert export_grades(run, tmp_path / "again.csv") == 0
    assert export_grades(run, tmp_path / "all.csv", all_items=True) == 3


def test_bad_rows_are_all_reported_and_nothing_is_written(
    served: tuple[ScriptedServer, Path], tmp_path: Path
) -> None:
    _, run = served
    sheet = tmp_path / "g.csv"
    export_grades(run, sheet)
    good = _read(sheet)
    rows = [
        {**good[0], "points": "1", "grader": "ann"},  # row 2: good
        {**good[1], "points": "abc", "grader": "ann"},  # row 3
        {**good[1], "points": "1.25", "grader": "ann"},  # row 4
        {**good[2], "points": "6.5", "grader": "ann"},  # row 5
        {**good[0], "item_id": "q1", "points": "1", "grader": "ann"},  # row 6: not a rubric item
        {**good[0], "item_id": "nope", "points": "1", "grader": "ann"},  # row 7
        {**good[0], "points": "2"},  # row 8: no grader
        {**good[1], "points": ""},  # row 9: blank, skipped
    ]
    _write(sheet, rows)
    with pytest.raises(InputError) as err:
        import_grades(run, sheet, grader=None)
    assert [(p.line, p.field) for p in err.value.problems] == [
        (3, "points"), (4, "points"), (5, "points"), (6, "item_id"), (7, "item_id"), (8, "grader"),
    ]  # fmt: skip
    lines = str(err.value).splitlines()
    assert lines[1] == f"{sheet}:4: points: 1.25 is not a multiple of 0.5 (scale 0-2)"
    assert lines[2] == f"{sheet}:5: points: 6.5 is outside the scale 0-6"
    assert lines[0] == f"{sheet}:3: points: 'abc' is not a number"
    assert not (run / HUMAN_GRADES_FILE).exists()


def test_missing_columns_and_cli_exit_code(
    served: tuple[ScriptedServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = served
    sheet = tmp_path / "g.csv"
    sheet.write_text("exam_id,item_id\ngamma,fr1\n", encoding="utf-8")
    assert main(["grade", "import", str(run), str(sheet), "--grader", "x"]) == 1
    assert capsys.readouterr().err.strip() == f"{sheet}:1: columns: missing column(s) points"
