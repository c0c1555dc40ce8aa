"""``scales check --published gpt-4-technical-report`` (scalecheck.py): the report's own Table 10
section scores through our report-era scales, row by row against its Table 9/Table 1 results.

The rows below are computed, not looked up: the check reads Table 10's percentages, our scale
files (exams/scales) and the report's printed results, and these tests pin what comes out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examharness.cli import main
from examharness.errors import InputError
from examharness.scalecheck import (
    PublishedSection,
    check_published,
    load_section_scores,
    percentile_matches,
    section_raws,
)
from examharness.scoring import PercentileRange

SCALES = Path(__file__).parents[1] / "exams" / "scales"
REPORT_METHOD = Path(__file__).parents[2] / "shared" / "reference" / "gpt4_report_method.md"

MATCHING = {
    "SAT Evidence-Based Reading & Writing": (710, "sat_ebrw", 2022),
    "SAT Math": (710, "sat_math", 2022),
    "Graduate Record Examination (GRE) Verbal": (169, "gre_verbal", 2023),
    "AP Biology": (5, "ap_biology", 2022),
    "AP Psychology": (5, "ap_psychology", 2022),
    "AP Statistics": (5, "ap_statistics", 2022),
    "AP US History": (5, "ap_us_history", 2022),
}
# exam -> (our scaled score, scaled matches, our table puts the report's score where it does, reason)
NOT_MATCHING = {
    "LSAT": (159, False, False, "missing edition"),
    "Graduate Record Examination (GRE) Quantitative": (163, True, False, "missing edition"),
    "Graduate Record Examination (GRE) Writing": (4, True, False, "missing edition"),
    "AP Calculus BC": (3, False, True, "AP composite weights unknown"),
    "AP Chemistry": (4, True, False, "source precision"),
    "AP English Language and Composition": (3, False, True, "AP composite weights unknown"),
    "AP Macroeconomics": (4, False, True, "AP composite weights unknown"),
    "AMC 10": (30, True, False, "missing edition"),
    "AMC 12": (60, True, False, "missing edition"),
}


@pytest.fixture(scope="module")
def rows() -> dict[str, object]:
    result = check_published("gpt-4-technical-report", [SCALES])
    return {r.exam: r for r in result.rows}


def test_every_row_is_pinned(rows: dict[str, object]) -> None:
    assert set(rows) == set(MATCHING) | set(NOT_MATCHING)


@pytest.mark.parametrize("exam", sorted(MATCHING))
def test_rows_that_match(rows: dict[str, object], exam: str) -> None:
    row = rows[exam]
    scaled, scale, edition = MATCHING[exam]
    assert (row.scaled, row.scale, row.edition) == (scaled, scale, edition)  # type: ignore[attr-defined]
    assert row.match and row.scaled_match and row.percentile_match and row.table_match  # type: ignore[attr-defined]
    assert row.reason is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("exam", sorted(NOT_MATCHING))
def test_rows_that_do_not_match_say_why(rows: dict[str, object], exam: str) -> None:
    row = rows[exam]
    scaled, scaled_ok, table_ok, reason = NOT_MATCHING[exam]
    assert row.scaled == scaled and row.scaled_match is scaled_ok  # type: ignore[attr-defined]
    assert row.table_match is table_ok and not row.match  # type: ignore[attr-defined]
    assert row.reason is not None and row.reason.startswith(reason)  # type: ignore[attr-defined]


@pytest.mark.skipif(not REPORT_METHOD.is_file(), reason="../shared/reference not present")
def test_section_percentages_are_table_10s() -> None:
    """Every percentage in the shipped file appears in Table 10's GPT-4 column of the reference."""
    table10 = REPORT_METHOD.read_text().split("**Table 10")[1].split("DERIVED observations")[0]
    cells = {line.split("|")[1].strip(): line.split("|")[4].strip()
             for line in table10.splitlines() if line.startswith("| ") and "%" in line}
    data = load_section_scores("gpt-4-technical-report")
    for exam in data.exams:
        for s in exam.sections:
            assert cells[s.name] == f"{s.percent:.2f}%", s.name


@pytest.mark.parametrize(
    ("low", "high", "printed", "expected"),
    [
        (85.2, 100, "85th - 100th", True),   # truncated to whole percents
        (43.6, 59.1, "43rd - 59th", True),
        (72.1, 88.6, "71st - 88th", False),
        (63, 66, "~63rd", True),             # "~N": either end (the table's own figure)
        (63, 66, "~66th", True),
        (63, 66, "~80th", False),
        (99, 99, "~99th", True),
        (0, 3, "below 5th", False),
        (10, 20, None, False),
    ],
)
def test_percentile_match_rule(low: float, high: float, printed: str | None, expected: bool) -> None:
    assert percentile_matches(PercentileRange(low=low, high=high), printed) is expected


def test_section_points_snap_to_whole_counts() -> None:
    mc = PublishedSection(id="math", name="SAT Math (MCQ)", questions=58, percent=87.93)
    frq = PublishedSection(id="frq", name="FRQ", questions=5, percent=95.45, applies_to=["saq", "dbq"])
    raws = section_raws([mc, frq])
    assert raws[0].points == 51 and raws[0].max_points == 58
    assert [r.section_id for r in raws[1:]] == ["saq", "dbq"]
    assert raws[1].points == pytest.approx(4.7725)


def test_cli_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scales", "check", "--published", "gpt-4-technical-report"]) == 0
    out = capsys.readouterr().out
    assert "7 of 16 rows match" in out and "why not: missing edition" in out
    assert main(["scales", "check", "--published", "gpt-4-technical-report", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sum(r["match"] for r in data["rows"]) == 7
    assert main(["scales", "check", "--published", "gpt-4-technical-report", "--json",
                 "--edition", "2023"]) == 0
    newest = {r["exam"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert newest["AP Biology"]["edition"] == 2023 and not newest["AP Biology"]["match"]


def test_unknown_name_and_bad_file_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scales", "check", "--published", "nope"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no section scores of that name; known: gpt-4-technical-report" in err[0]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 1, "id": "x", "title": "t", "source": "s", "run": "r",
                               "edition": 2022, "exams": [{"exam": "e", "scale": "lsat"}]}))
    with pytest.raises(InputError) as info:
        load_section_scores(bad)
    assert [str(p) for p in info.value.problems] == [
        f"{bad}: exams.0.sections: Field required", f"{bad}: exams.0.published: Field required"]
