"""``batch export`` / ``batch import``: batch files answered outside examharness. The engine is a
small vLLM-style answerer here (it reads the request file and writes ``run_batch``'s output
format), speaking with the same scripted replies the loopback server gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder, SmallExam, cli_env, examharness, write_mc_exam

from examharness.cli import main
from examharness.records import ITEMS_FILE
from examharness.results import RunFolder
from examharness.testing._http import completion_body

VAGUE = {"QID-001", "QID-004"}


def answer_file(requests: Path, out: Path, recorder: Recorder, fail: frozenset[str] = frozenset()) -> int:
    """What ``vllm run_batch -i requests -o out`` writes, with the scripted replies; the custom_ids
    in ``fail`` get a 500. Returns the number of requests answered."""
    lines = [json.loads(raw) for raw in requests.read_text().splitlines() if raw.strip()]
    results = []
    for n, line in enumerate(lines):
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        if line["custom_id"] in fail:
            response = {
                "status_code": 500,
                "request_id": f"r{n}",
                "body": {"error": {"message": "engine fell over"}},
            }
        else:
            body = completion_body(n, line["body"], recorder(line["body"]))
            response = {"status_code": 200, "request_id": f"r{n}", "body": body}
        results.append(
            {"id": f"vllm-{n}", "custom_id": line["custom_id"], "response": response, "error": None}
        )
    out.write_text("".join(json.dumps(r) + "\n" for r in results))
    return len(lines)


def export_exam(tmp_path: Path, exam: SmallExam, env: dict[str, str]) -> Path:
    out = ["--results", str(tmp_path / "results"), "--out", str(tmp_path / "requests-1.jsonl")]
    done = examharness("batch", "export", str(exam.path), "--model", "served-model", *out, env=env)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def test_two_stage_exam_export_import_export_import_then_score(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 12, mode="letter_if_needed")
    recorder = Recorder(exam, vague=VAGUE)
    env = cli_env(tmp_path)
    run_dir = export_exam(tmp_path, exam, env)
    assert answer_file(tmp_path / "requests-1.jsonl", tmp_path / "results-1.jsonl", recorder) == 12

    first = examharness("batch", "import", str(run_dir), str(tmp_path / "results-1.jsonl"), env=env)
    assert first.returncode == 0, first.stderr
    assert f"2 items need a second stage: run `examharness batch export {run_dir}" in first.stderr
    assert len(RunFolder(run_dir).read_items()) == 10
    assert not (run_dir / "scores.json").exists()

    second = examharness(
        "batch", "export", str(run_dir), "--out", str(tmp_path / "requests-2.jsonl"), env=env
    )
    assert second.returncode == 0, second.stderr
    assert answer_file(tmp_path / "requests-2.jsonl", tmp_path / "results-2.jsonl", recorder) == 2
    done = examharness("batch", "import", str(run_dir), str(tmp_path / "results-2.jsonl"), "--bootstrap", "0",
                       env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = {r.item_id: r for r in RunFolder(run_dir).read_items()}
    assert len(records) == 12 and {r.status for r in records.values()} == {"ok"}
    assert [s.stage for s in records["q001"].stages] == ["explanation", "answer"]
    scores = json.loads((run_dir / "scores.json").read_text())
    assert scores["exams"][0]["raw"] == exam.n_correct

    again = examharness("batch", "export", str(run_dir), "--out", str(tmp_path / "requests-3.jsonl"), env=env)
    assert again.returncode == 0 and "nothing to export" in again.stderr


def test_failed_entries_are_errors_and_exporting_the_run_resends_them(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 6, mode="single")
    recorder = Recorder(exam)
    env = cli_env(tmp_path)
    run_dir = export_exam(tmp_path, exam, env)
    answer_file(
        tmp_path / "requests-1.jsonl",
        tmp_path / "results-1.jsonl",
        recorder,
        fail=frozenset({"small/q003/response/0"}),
    )
    results = str(tmp_path / "results-1.jsonl")
    first = examharness("batch", "import", str(run_dir), results, "--bootstrap", "0", env=env)
    assert first.returncode == 2, first.stderr
    assert {r.item_id for r in RunFolder(run_dir).read_items() if r.status == "error"} == {"q003"}

    second = examharness(
        "batch", "export", str(run_dir), "--out", str(tmp_path / "requests-2.jsonl"), env=env
    )
    assert second.returncode == 0, second.stderr
    resent = [
        json.loads(line)["custom_id"] for line in (tmp_path / "requests-2.jsonl").read_text().splitlines()
    ]
    assert resent == ["small/q003/response/0"]
    answer_file(tmp_path / "requests-2.jsonl", tmp_path / "results-2.jsonl", recorder)
    done = examharness("batch", "import", str(run_dir), str(tmp_path / "results-2.jsonl"), "--bootstrap", "0",
                       env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {r.status for r in RunFolder(run_dir).read_items()} == {"ok"}


REPLY = completion_body(0, {"messages": []}, "The answer is A")
GOOD = {"id": "x", "custom_id": "small/q000/response/0", "response": {"status_code": 200, "body": REPLY}}


def _with(**changes: Any) -> str:
    """A second line, for the next item, with ``changes``."""
    return json.dumps(GOOD | {"custom_id": "small/q001/response/0"} | changes)


@pytest.mark.parametrize(("line", "field", "message"), [
    ("{not json", "(file)", "not valid JSON"),
    (_with(custom_id="small/q999/response/0"), "custom_id", "is not a request of this batch"),
    (_with(custom_id="small/q000"), "custom_id", "is not exam/item/stage/sample"),
    (_with(custom_id="small/q000/letter/0"), "custom_id", "unknown stage"),
    (_with(response={"status_code": "two hundred"}), "response.status_code", "valid integer"),
    (_with(response={"status_code": 200, "body": {"choices": []}}), "response.body.choices",
     "not a chat completion"),
    (json.dumps(GOOD), "custom_id", "has a result on an earlier line"),
])  # fmt: skip
def test_bad_import_line_is_one_line_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, field: str, message: str
) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 3, mode="single")
    assert main(["batch", "export", str(exam.path), "--model", "m", "--results", str(tmp_path / "results"),
                 "--out", str(tmp_path / "requests.jsonl"), "--no-cache"]) == 0  # fmt: skip
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps(GOOD) + "\n" + line + "\n")
    assert main(["batch", "import", str(run_dir), str(results), "--no-cache"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"{results}:2: {field}: ") and message in err, err
    assert not (run_dir / ITEMS_FILE).exists() or not RunFolder(run_dir).read_items()


def test_import_without_an_export_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 2, mode="single")
    args = [
        "batch",
        "export",
        str(exam.path),
        "--model",
        "m",
        "--results",
        str(tmp_path / "results"),
        "--no-cache",
    ]
    assert main([*args, "--out", str(tmp_path / "requests.jsonl")]) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    answer_file(tmp_path / "requests.jsonl", tmp_path / "results.jsonl", Recorder(exam))
    assert (
        main(["batch", "import", str(run_dir), str(tmp_path / "results.jsonl"), "--no-cache", "--no-score"])
        == 0
    )
    capsys.readouterr()
    assert main(["batch", "import", str(run_dir), str(tmp_path / "results.jsonl"), "--no-cache"]) == 1
    assert "no exported requests wait for results" in capsys.readouterr().err
