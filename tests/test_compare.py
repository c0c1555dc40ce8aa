"""compare: paired tests between real run folders (run against the scripted server)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from rich.console import Console
from runs import ExamSpec, add_human_grade, first_right, make_run, write_exam

from examharness.cli import main
from examharness.compare import compare_runs, mcnemar_exact, paired_bootstrap, print_comparison
from examharness.errors import InputError


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 0, 1.0),
        (1, 1, 1.0),
        (6, 0, 2 / 64),
        (0, 6, 2 / 64),
        (3, 7, 2 * (1 + 10 + 45 + 120) / 1024),
        (10, 0, 2 / 1024),
        (5, 4, 1.0),
    ],
)
def test_mcnemar_exact(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(p)


def test_mcnemar_exact_large_counts_stay_finite() -> None:
    p = mcnemar_exact(1200, 1000)
    assert 0.0 < p < 0.001 and math.isfinite(p)


def test_paired_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    diffs = [-1.0] * 6 + [0.0] * 4
    one, two = paired_bootstrap(diffs, 500, 3), paired_bootstrap(diffs, 500, 3)
    assert one == two
    assert one.mean_diff == pytest.approx(-0.6)
    assert one.ci is not None and one.ci[0] <= -0.6 <= one.ci[1] < 0
    assert paired_bootstrap(diffs, 0, 0).ci is None
    assert paired_bootstrap([], 100, 0).ci is None


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A: q1-q9 right, fr1 graded 0/2; B: q1-q3 right, fr1 2/2; C: same answers as A."""
    tmp = tmp_path_factory.mktemp("compare")
    exam = write_exam(tmp / "exams", ExamSpec("alpha", "Alpha Exam", n_mc=10, n_fr=1))
    a = make_run(tmp, [exam], model="model-a", right=first_right("alpha", 9))
    b = make_run(tmp, [exam], model="model-b", right=first_right("alpha", 3))
    c = make_run(tmp, [exam], model="model-c", right=first_right("alpha", 9))
    add_human_grade(a, "alpha", "fr1", 0.0)
    add_human_grade(b, "alpha", "fr1", 2.0)
    add_human_grade(c, "alpha", "fr1", 0.0)
    return [a, b, c]


def test_compare_two_runs_numbers(three_runs: list[Path]) -> None:
    a, b, _ = three_runs
    result = compare_runs([a, b], n_boot=1000, seed=0)
    assert result.warnings == []
    (exam,) = result.exams
    assert [r.raw for r in exam.runs] == [9.0, 5.0]
    (pair,) = exam.pairs
    assert (pair.a, pair.b) == (a.name, b.name)
    assert pair.delta_raw == -4.0
    assert pair.n_paired == 11
    assert (pair.mcnemar.b, pair.mcnemar.c) == (6, 0)
    assert pair.mcnemar.p_value == pytest.approx(0.03125)
    assert pair.flipped.a_right_b_wrong == ["q4", "q5", "q6", "q7", "q8", "q9"]
    assert pair.flipped.a_wrong_b_right == []
    # the free-response item's +2 is in the mean: (6 x -1 + 2) / 11
    assert pair.bootstrap.mean_diff == pytest.approx(-4 / 11)
    assert pair.bootstrap.ci is not None and pair.bootstrap.ci[0] < -4 / 11 < pair.bootstrap.ci[1]
    assert pair.delta_scaled is not None and pair.delta_scaled < 0
    assert pair.delta_percentile is not None and pair.delta_percentile < 0


def test_compare_three_runs_compares_each_with_the_first(three_runs: list[Path]) -> None:
    result = compare_runs(three_runs, n_boot=200)
    pairs = result.exams[0].pairs
    assert [(p.a, p.b) for p in pairs] == [(three_runs[0].name, r.name) for r in three_runs[1:]]
    same = pairs[1]
    assert (same.mcnemar.b, same.mcnemar.c, same.mcnemar.p_value) == (0, 0, 1.0)
    assert same.delta_raw == 0 and same.bootstrap.mean_diff == 0


def test_compare_json_shape_through_cli(three_runs: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b, _ = three_runs
    assert main(["compare", str(a), str(b), "--json", "--bootstrap", "100"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"runs", "exams", "warnings", "languages"}
    exam = data["exams"][0]
    assert exam["exam"] == "alpha"
    assert set(exam["runs"][0]) == {"run_id", "raw", "scaled", "percentile", "reported"}
    pair = exam["pairs"][0]
    assert {"a", "b", "delta_raw", "delta_scaled", "delta_percentile", "n_paired", "mcnemar",
            "bootstrap", "flipped"} <= set(pair)  # fmt: skip
    assert pair["mcnemar"] == {"b": 6, "c": 0, "p_value": 0.03125}
    assert len(pair["bootstrap"]["ci"]) == 2
    assert set(pair["flipped"]) == {"a_right_b_wrong", "a_wrong_b_right"}


def test_compare_warns_loudly_on_unlike_runs(three_runs: list[Path], tmp_path: Path) -> None:
    changed = write_exam(tmp_path / "exams", ExamSpec("alpha", "Alpha Exam", n_mc=12, n_fr=1))
    other = make_run(tmp_path, [changed], model="model-d", right=first_right("alpha", 9),
                     temperature=0.9)  # fmt: skip
    result = compare_runs([three_runs[0], other], n_boot=100)
    text = "\n".join(result.warnings)
    assert "content hash" in text
    assert "sampling parameters differ" in text
    assert "item sets differ (0 only in the first, 2 only in the second)" in text
    assert result.exams[0].pairs[0].n_paired == 10  # fr1 is ungraded in the new run: unpaired
    console = Console(record=True, width=200)
    print_comparison(result, console)
    out = console.export_text()
    assert out.count("WARNING") >= 3 and "not like for like" in out


def test_compare_refuses_a_folder_that_is_not_a_run(three_runs: list[Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a run folder"):
        compare_runs([three_runs[0], tmp_path])
