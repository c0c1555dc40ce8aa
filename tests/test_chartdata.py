"""chart command: series from real run folders and published results, ordering, output files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from runs import ExamSpec, first_right, make_run, write_exam
from test_chart import REPORT_FIGURE4_ORDER

from examharness.chartdata import chart_data_for
from examharness.cli import main
from examharness.results import RunFolder


def _chart_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["chart", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_published_only_reproduces_figure_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fig4.png"
    data = _chart_json(["--published", "gpt-4-technical-report", "--out", str(out)], capsys)
    assert data["exams"] == REPORT_FIGURE4_ORDER and len(REPORT_FIGURE4_ORDER) == 26
    assert data["baseline"] == "GPT-3.5"
    assert data["title"] == "Exam results (ordered by GPT-3.5 performance)"
    assert out.read_bytes().startswith(b"\x89PNG") and out.stat().st_size > 20_000
    picked = _chart_json(["--published", "gpt-4-technical-report", "--published-runs", "GPT-4,GPT-3.5"],
                         capsys)  # fmt: skip
    assert [s["label"] for s in picked["series"]] == ["GPT-4", "GPT-3.5"]  # type: ignore[attr-defined]
    assert picked["exams"] == REPORT_FIGURE4_ORDER


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two private exams; run 1 (model 'base') is weak on B, run 2 (also 'base') weak on A."""
    tmp = tmp_path_factory.mktemp("chart")
    folder = tmp / "exams"
    exams = [write_exam(folder, ExamSpec("hid-a", "Hidden Exam A")),
             write_exam(folder, ExamSpec("hid-b", "Hidden Exam B")),
             write_exam(folder, ExamSpec("verbal", "GRE Verbal"))]  # fmt: skip
    one = make_run(tmp, exams, model="base", right=first_right("hid-a", 9) | first_right("hid-b", 4)
                   | first_right("verbal", 7))  # fmt: skip
    two = make_run(tmp, exams, model="base", right=first_right("hid-a", 5) | first_right("hid-b", 10)
                   | first_right("verbal", 8))  # fmt: skip
    return [one, two]


def test_runs_are_ordered_by_the_baseline_percentile(
    hidden: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = hidden
    lows = {e.title: e.percentile.low for e in RunFolder(one).read_scores().exams if e.percentile}
    assert lows["Hidden Exam B"] < lows["GRE Verbal"] < lows["Hidden Exam A"]
    out = tmp_path / "runs.svg"
    data = _chart_json([str(one), str(two), "--out", str(out)], capsys)
    assert data["exams"] == ["Hidden Exam B", "GRE Verbal", "Hidden Exam A"]
    labels = [f"base ({one.name})", f"base ({two.name})"]
    series = data["series"]
    assert isinstance(series, list)
    assert [s["label"] for s in series] == labels and data["baseline"] == labels[0]
    assert series[0]["values"] == {t: lows[t] for t in data["exams"]}
    assert out.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    flipped = _chart_json([str(one), str(two), "--baseline", str(two)], capsys)
    assert flipped["baseline"] == labels[1]
    assert flipped["exams"][0] == "Hidden Exam A"  # type: ignore[index]


def test_runs_beside_the_published_figure(hidden: list[Path]) -> None:
    data = chart_data_for(hidden[:1], published="gpt-4-technical-report", published_runs=["GPT-4"])
    assert data.baseline == "base"
    assert [s.label for s in data.series] == ["base", "GPT-4"]
    assert "GRE Verbal" in data.exams and len(data.exams) == 28  # 26 published + 2 private
    shared = chart_data_for(hidden[:1], published="gpt-4-technical-report", shared_only=True,
                            baseline="GPT-3.5")  # fmt: skip
    assert shared.exams == ["GRE Verbal"]
    assert shared.title == "Exam results (ordered by GPT-3.5 performance)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--published", "gpt-4-technical-report"], "--out: give --out"),
        (["--json"], "runs: give run folders"),
        (["--published", "gpt-4-technical-report", "--json", "--baseline", "nobody"], "--baseline"),
        (["--published", "gpt-4-technical-report", "--out", "x.jpg"], "must end in .png or .svg"),
    ],
)
def test_bad_arguments_exit_1(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chart", *argv]) == 1
    assert message in capsys.readouterr().err


def test_runs_beside_the_full_published_figure_keep_the_report_order(hidden: list[Path]) -> None:
    alone = chart_data_for([], published="gpt-4-technical-report")
    beside = chart_data_for(hidden[:1], published="gpt-4-technical-report")
    assert beside.baseline == "GPT-3.5"
    published_order = [e for e in beside.exams if e in alone.exams]
    assert published_order == alone.exams
    assert beside.exams[: len(alone.exams)] == alone.exams  # the run's private exams come after
    assert len(beside.exams) == len(alone.exams) + 2


def test_exams_sharing_a_title_stay_apart() -> None:
    from examharness.chartdata import run_series
    from examharness.records import ExamScore, RunScores
    from examharness.scoring import PercentileRange, ScoreIntervals

    def exam(exam_id: str, low: float) -> ExamScore:
        return ExamScore(
            exam=exam_id, title="Same Title", raw=1, max_raw=2, accuracy=0.5, scale="s", scaled=1,
            percentile=PercentileRange(low=low, high=low), ci=ScoreIntervals(level=0.95, resamples=0),
            items={}, sections=[],
        )  # fmt: skip

    run = RunScores(run_id="r", model="m", scored_at="t", exams=[exam("a", 25), exam("b", 63)])
    assert run_series([run])[0].values == {"Same Title (a)": 25, "Same Title (b)": 63}


def test_published_label_puts_an_exam_in_its_row(tmp_path: Path) -> None:
    """An exam whose title is nobody's row still lands in the row its ``published_label`` names."""
    path = write_exam(tmp_path / "exams", ExamSpec("mine", "My practice test", scale="sat_math"))
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**doc, "published_label": "SAT Math"}, sort_keys=False), encoding="utf-8")
    run = make_run(tmp_path, [path], model="mine", right=first_right("mine", 7))
    assert RunFolder(run).read_scores().exams[0].published_label == "SAT Math"
    data = chart_data_for([run], published="gpt-4-technical-report")
    values = next(s for s in data.series if s.label == "mine").values
    assert values["SAT Math"] is not None and "My practice test" not in data.exams


def test_a_chart_with_no_bars_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exams without a percentile give nothing to draw: refuse rather than write an empty chart."""
    path = write_exam(tmp_path / "exams", ExamSpec("plain", "Plain", scale=None))
    run = make_run(tmp_path, [path], model="m", right=first_right("plain", 5))
    out = tmp_path / "fig.png"
    assert main(["chart", str(run), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "nothing to draw" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
