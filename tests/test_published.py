"""Published results: the GPT-4 report's Table 1 file, percentile parsing, exam-name matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examharness.errors import InputError
from examharness.published import (
    PublishedScore,
    exam_key,
    find_exam,
    list_published,
    load_published,
    parse_percentile,
)

SHARED = Path(__file__).parents[1].parent / "shared"
REFERENCE = SHARED / "reference" / "gpt4_exam_table.json"
RUN_COLUMNS = {"GPT-4": "gpt4", "GPT-4 (no vision)": "gpt4_no_vision", "GPT-3.5": "gpt35"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("~90th", (90.0, 90.0)),
        ("~83rd", (83.0, 83.0)),
        ("~62nd", (62.0, 62.0)),
        ("86th - 100th", (86.0, 100.0)),
        ("0th - 7th", (0.0, 7.0)),
        ("31st - 33rd", (31.0, 33.0)),
        ("below 5th", (None, 5.0)),
        (None, (None, None)),
    ],
)
def test_parse_percentile(text: str | None, expected: tuple[float | None, float | None]) -> None:
    assert parse_percentile(text) == expected


@pytest.mark.parametrize("text", ["90", "top 10%", "", "~90", "above 95th"])
def test_parse_percentile_rejects_unknown_forms(text: str) -> None:
    with pytest.raises(ValueError, match="unrecognised percentile"):
        parse_percentile(text)


def test_score_bounds_must_match_their_string() -> None:
    with pytest.raises(ValueError, match=r"gives low=86\.0"):
        PublishedScore(score="5", percentile="86th - 100th", percentile_low=85, percentile_high=100)


def test_gpt4_report_ships_and_loads() -> None:
    assert "gpt-4-technical-report" in list_published()
    pub = load_published("gpt-4-technical-report")
    assert pub.id == "gpt-4-technical-report"
    assert [r.label for r in pub.runs] == ["GPT-4", "GPT-4 (no vision)", "GPT-3.5"]
    assert len(pub.exams) == 34
    assert len(pub.plotted_exams()) == 26
    assert pub.figure is not None and pub.figure.baseline == "GPT-3.5"
    assert "arXiv:2303.08774" in pub.source
    assert pub.table_caption is not None and pub.table_caption.startswith("Table 1.")
    unplotted = {e.exam for e in pub.exams if e.short_label is None}
    cells = [cell for e in pub.exams if e.exam in unplotted for cell in e.scores.values()]
    assert len(cells) == 8 * 3
    assert all(cell.percentile is None for cell in cells)


def test_codeforces_below_5th_keeps_no_lower_bound() -> None:
    row = find_exam(load_published("gpt-4-technical-report"), "Codeforces Rating")
    assert row is not None
    cell = row.scores["GPT-3.5"]
    assert (cell.score, cell.percentile, cell.percentile_low, cell.percentile_high) == (
        "260",
        "below 5th",
        None,
        5.0,
    )


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared reference table not present")
def test_every_cell_matches_the_reference_table() -> None:
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    pub = load_published("gpt-4-technical-report")
    assert [e.exam for e in pub.exams] == [r["exam"] for r in reference["rows"]]
    for row, ref in zip(pub.exams, reference["rows"], strict=True):
        assert row.short_label == ref["figure4_label"]
        for run, column in RUN_COLUMNS.items():
            cell, ref_cell = row.scores[run], ref[column]
            assert (cell.score, cell.percentile) == (ref_cell["score"], ref_cell["percentile"])
            assert cell.percentile_low == ref_cell["percentile_lower_bound"], (row.exam, run)


def test_load_by_path(tmp_path: Path) -> None:
    source = load_published("gpt-4-technical-report")
    path = tmp_path / "mine.json"
    path.write_text(source.model_dump_json(), encoding="utf-8")
    assert load_published(path) == source
    assert load_published(str(path)) == source


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(InputError, match=r"known: .*gpt-4-technical-report"):
        load_published("gpt-5-report")


def test_bad_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n "id": "x",\n oops\n}', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.json:3: \(file\): invalid JSON"):
        load_published(path)


def test_invalid_cell_names_the_field(tmp_path: Path) -> None:
    raw = json.loads(load_published("gpt-4-technical-report").model_dump_json())
    raw["exams"][0]["scores"]["GPT-4"]["percentile_low"] = 91
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(InputError, match=r"edited\.json: exams\.0\.scores\.GPT-4: .*gives low=90"):
        load_published(path)


def test_missing_cell_is_an_error(tmp_path: Path) -> None:
    raw = json.loads(load_published("gpt-4-technical-report").model_dump_json())
    del raw["exams"][3]["scores"]["GPT-3.5"]
    path = tmp_path / "short.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(InputError, match="'SAT Math' has cells"):
        load_published(path)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("sat-math", "satmath"),
        ("SAT Math", "satmath"),
        ("SAT_Math", "satmath"),
        ("AMC 10", "amc10"),
        ("Reading & Writing", "readingandwriting"),
    ],
)
def test_exam_key(name: str, key: str) -> None:
    assert exam_key(name) == key


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("sat-math", "SAT Math"),
        ("SAT Math", "SAT Math"),
        ("sat-ebrw", "SAT Evidence-Based Reading & Writing"),
        ("SAT Evidence-Based Reading and Writing", "SAT Evidence-Based Reading & Writing"),
        ("gre-quantitative", "Graduate Record Examination (GRE) Quantitative"),
        ("Graduate Record Examination (GRE) Verbal", "Graduate Record Examination (GRE) Verbal"),
        ("ube", "Uniform Bar Exam (MBE+MEE+MPT)"),
        ("uniform-bar-exam", "Uniform Bar Exam (MBE+MEE+MPT)"),
        ("amc10", "AMC 10"),
        ("ap-calculus-bc", "AP Calculus BC"),
        ("AP English Language and Composition", "AP English Language and Composition"),
        ("ap-english-literature", "AP English Literature and Composition"),
        ("codeforces", "Codeforces Rating"),
        ("mksap", "Medical Knowledge Self-Assessment Program"),
        ("mmlu", None),
        ("AP Physics 1", None),
    ],
)
def test_find_exam(name: str, row: str | None) -> None:
    found = find_exam(load_published("gpt-4-technical-report"), name)
    assert (found.exam if found else None) == row
