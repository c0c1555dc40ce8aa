"""``examharness import humaneval|leetcode``: the packaged data file, any file in its format,
bad rows reported with file, row and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from examharness.errors import InputError
from examharness.exam import CodeItem, load_exam
from examharness.importers.humaneval import import_humaneval, packaged_humaneval

ROW = {
    "task_id": "LC/1", "prompt": "def add(a, b):\n    \"\"\"Add.\"\"\"\n", "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
    "canonical_solution": "    return a + b\n",
}  # fmt: skip


def write_rows(path: Path, rows: list[object]) -> Path:
    lines = [(r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_packaged_humaneval_is_read_in_place() -> None:
    assert packaged_humaneval().name == "HumanEval.jsonl.gz"
    exam = import_humaneval()
    items = [item for _, item in exam.items()]
    assert len(items) == 164 and all(isinstance(i, CodeItem) for i in items)
    first = items[0]
    assert isinstance(first, CodeItem)
    assert (first.id, first.entry_point) == ("HumanEval-0", "has_close_elements")
    assert first.preamble == first.prompt and "def check(candidate)" in first.tests


def test_cli_writes_a_loadable_exam(tmp_path: Path) -> None:
    out = tmp_path / "humaneval.yaml"
    done = subprocess.run([sys.executable, "-m", "examharness.cli", "import", "humaneval", "--out", str(out)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("# HumanEval (Chen et al., 2021")
    assert "canonical" not in load_exam(out).exam.model_dump_json().replace("canonical solutions", "")


def test_leetcode_layout_has_a_section_per_difficulty(tmp_path: Path) -> None:
    levels = ["hard", "easy", "easy", "medium"]
    rows = [{**ROW, "task_id": f"LC/{i}", "difficulty": d} for i, d in enumerate(levels)]
    exam = import_humaneval(write_rows(tmp_path / "lc.jsonl", rows), exam_id="leetcode", leetcode=True)
    assert [(s.id, len(s.items)) for s in exam.sections] == [("easy", 2), ("medium", 1), ("hard", 1)]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("{not json", "(row)"),
        ({**ROW, "entry_point": ""}, "entry_point"),
        ({k: v for k, v in ROW.items() if k != "test"}, "test"),
        ({**ROW, "entry_point": "not an identifier"}, "entry_point"),
        ([1, 2], "(row)"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path: Path, row: object, field: str) -> None:
    path = write_rows(tmp_path / "bad.jsonl", [ROW, row])
    with pytest.raises(InputError) as err:
        import_humaneval(path)
    assert str(err.value).startswith(f"{path}:2: {field}:")
    skipped: list[str] = []
    exam = import_humaneval(path, skip_bad=True, warn=skipped.append)
    assert len(exam.sections[0].items) == 1 and skipped[-1] == "warning: skipped 1 bad row(s) of 2"


def test_leetcode_needs_a_difficulty(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"lc.jsonl:1: difficulty:"):
        import_humaneval(write_rows(tmp_path / "lc.jsonl", [ROW]), leetcode=True)
