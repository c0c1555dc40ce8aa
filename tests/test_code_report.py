"""pass@k in the views: ``report`` (text and JSON), ``compare`` paired per problem, the HTML
report, and ``pass_rates.json`` for the scaling fit — two real runs of a small code exam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from examharness.api import RunOptions, run_exams, score_run
from examharness.code.scores import PASS_RATES_FILE
from examharness.compare import compare_runs, print_comparison
from examharness.htmlreport import write_html_report
from examharness.report import print_report
from examharness.results import RunFolder
from examharness.testing import ScriptedServer, last_user_message

TESTS = "def check(candidate):\n    assert candidate(2) == {double}\n    assert candidate(5) == {five}\n"
PROBLEMS = {
    "sq": ("square", 4, 25, "x * x"), "cube": ("cube", 8, 125, "x ** 3"), "inc": ("inc", 3, 6, "x + 1"),
}  # fmt: skip
SAMPLES = 4


def write_exam(path: Path) -> None:
    items = [
        {"id": pid, "type": "code", "entry_point": name, "prompt": f"[{pid}] def {name}(x): ...",
         "tests": TESTS.format(double=two, five=five)}
        for pid, (name, two, five, _) in PROBLEMS.items()
    ]  # fmt: skip
    exam = {"id": "tiny-code", "title": "Tiny code exam", "source": "examharness tests", "license": "MIT",
            "sections": [{"id": "easy", "kind": "code", "items": items[:2]},
                         {"id": "hard", "kind": "code", "items": items[2:]}]}  # fmt: skip
    path.write_text("# Written for examharness's tests.\n" + yaml.safe_dump(exam), encoding="utf-8")


def model(passing: dict[str, int]) -> Any:
    """Problem -> how many of the samples (seeds 0..) are right; the rest return 0."""

    def respond(request: dict[str, Any]) -> str:
        pid = next(p for p in PROBLEMS if f"[{p}]" in last_user_message(request))
        name, _, _, expr = PROBLEMS[pid]
        body = expr if request["seed"] < passing[pid] else "0"
        return f"```python\ndef {name}(x):\n    return {body}\n```"

    return respond


def run(tmp_path: Path, name: str, passing: dict[str, int]) -> Path:
    exam = tmp_path / "tiny.yaml"
    if not exam.exists():
        write_exam(exam)
    with ScriptedServer(responder=model(passing), model=name) as srv:
        opts = RunOptions(paths=[exam], model=name, base_url=srv.base_url, out=tmp_path / "results",
                          cache_path=tmp_path / f"{name}.sqlite", samples=SAMPLES)  # fmt: skip
        run_dir, _ = run_exams(opts)
    score_run(run_dir, n_boot=200)
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("code-report")
    weak = run(tmp, "weak", {"sq": 1, "cube": 0, "inc": 2})
    return weak, run(tmp, "strong", {"sq": 4, "cube": 2, "inc": 4})


def test_pass_at_k_in_scores_and_report(runs: tuple[Path, Path]) -> None:
    weak, _ = runs
    scores = json.loads((weak / "scores.json").read_text())["exams"][0]
    by_section = {s["section"]: s for s in scores["pass_at_k"]}
    assert list(by_section) == ["easy", "hard", "all"]
    easy = {v["k"]: v for v in by_section["easy"]["values"]}
    assert list(easy) == [1]  # 4 samples: pass@10 is not defined
    assert easy[1]["value"] == pytest.approx((1 / 4 + 0) / 2)
    assert by_section["all"]["values"][0]["value"] == pytest.approx((1 / 4 + 0 + 2 / 4) / 3)
    lo, hi = easy[1]["ci"]
    assert lo <= easy[1]["value"] <= hi
    assert scores["items"]["correct"] == 2 and scores["items"]["incorrect"] == 1
    console = Console(record=True, width=200)

    print_report(RunFolder(weak).read_scores(), console=console)
    text = console.export_text()
    assert "pass@1 0.125" in text and "pass@1 0.250" in text


def test_pass_rates_file_for_the_scaling_fit(runs: tuple[Path, Path]) -> None:
    rates = RunFolder(runs[0]).read_pass_rates()
    assert rates is not None and (runs[0] / PASS_RATES_FILE).is_file()
    got = {p.item_id: (p.n, p.passed, p.pass_rate) for p in rates.problems}
    assert got == {"sq": (4, 1, 0.25), "cube": (4, 0, 0.0), "inc": (4, 2, 0.5)}
    assert rates.model == "weak"


def test_compare_pairs_problems(runs: tuple[Path, Path]) -> None:
    result = compare_runs(list(runs), n_boot=300)
    pair = result.exams[0].pairs[0]
    (delta,) = pair.pass_at_k
    assert delta.k == 1 and delta.problems == 3
    assert (delta.a, delta.b) == (pytest.approx(0.75 / 3), pytest.approx(2.5 / 3))
    assert delta.mean_diff == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    assert delta.ci is not None and delta.ci[0] <= delta.mean_diff <= delta.ci[1]
    assert pair.flipped.a_wrong_b_right == ["cube"]
    console = Console(record=True, width=200)
    print_comparison(result, console=console)
    assert "pass@1: 0.250 → 0.833" in console.export_text()


def test_html_report_shows_pass_at_k_and_verdicts(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_html_report(runs[0], out)
    page = out.read_text()
    assert "pass@1 0.125" in page
    assert "sample 2: fail (assert candidate(2) == 4)" in page
