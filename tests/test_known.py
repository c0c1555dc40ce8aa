"""The scripted model that knows an exam's answers: its score is the one it was told to earn."""

from __future__ import annotations

import shutil
from pathlib import Path

from runs import run_on

from examharness.results import RunFolder
from examharness.testing import ScriptedServer
from examharness.testing.known import known_answers

DEMO = Path(__file__).resolve().parents[1] / "exams" / "demo"


def test_known_answers_earn_the_expected_demo_score(tmp_path: Path) -> None:
    """Demo: 4 multiple-choice points (one multi-select), every 2nd wrong -> 2 of 12 points.

    The made-up demo scale maps 2/12 to 20 + 60 x 1/6 = 30 (rounded to 10), which its table
    puts at 8 % below and 25 % at or below.
    """
    exams = tmp_path / "exams"
    shutil.copytree(DEMO, exams / "demo")
    known = known_answers([exams], wrong_every=2)
    assert known.expected_correct == {"demo": 2}
    with ScriptedServer(responder=known.responder()) as server:
        run = run_on(server, tmp_path, [exams / "demo" / "demo.yaml"], "scripted")
    (exam,) = RunFolder(run).read_scores().exams
    assert (exam.raw, exam.max_raw, exam.items.correct, exam.items.incorrect) == (2, 12, 2, 2)
    assert exam.scaled == 30 and exam.percentile is not None
    assert (exam.percentile.low, exam.percentile.high) == (8, 25)
