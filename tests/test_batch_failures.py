"""Batch runs that go wrong: failed entries, an expired batch, a refused upload; and code items,
whose samples are one batch entry each. Real CLI or real API, real openai client, loopback server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Recorder, cli_env, examharness, write_mc_exam

from examharness.api import RunOptions, run_exams
from examharness.batch.lines import EntryId
from examharness.cli import main
from examharness.errors import EXIT_ABORTED, EXIT_ITEM_ERRORS
from examharness.results import RunFolder
from examharness.testing import ScriptedServer, last_user_message
from examharness.testing.batch_api import BatchAPI

FAST = ["--poll-interval", "0.02", "--bootstrap", "0"]


def statuses(run_dir: Path) -> dict[str, tuple[str, str | None]]:
    return {r.item_id: (r.status, r.error) for r in RunFolder(run_dir).read_items()}


def first_session(exam: Path, base_url: str, tmp_path: Path, env: dict[str, str],
                  ) -> tuple[Path, subprocess.CompletedProcess[str]]:  # fmt: skip
    """A batch run that ends with error items (exit 2): its folder and the finished process."""
    args = ["run", str(exam), "--model", "scripted", "--base-url", base_url, "--batch", *FAST]
    done = examharness(*args, "--out", str(tmp_path / "results"), env=env)
    assert done.returncode == EXIT_ITEM_ERRORS, done.stderr
    return Path(done.stdout.strip().splitlines()[-1]), done


def sent_items(batches: BatchAPI, n: int) -> set[str]:
    return {EntryId.parse(line["custom_id"]).item_id for line in batches.batch_lines(batches.created[n])}


def test_failed_entries_become_errors_and_retry_errors_resends_just_them(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 10, mode="single")
    failing = {"q002", "q007"}
    batches = BatchAPI(fail=lambda cid: EntryId.parse(cid).item_id in failing)
    env = cli_env(tmp_path)
    with ScriptedServer(responder=Recorder(exam), batches=batches) as srv:
        run_dir, done = first_session(exam.path, srv.base_url, tmp_path, env)
        found = statuses(run_dir)
        assert {k for k, (status, _) in found.items() if status == "error"} == failing
        assert all("HTTP 500: Scripted entry failure." in (found[k][1] or "") for k in failing)
        assert "2 × http_500: HTTP 500: Scripted entry failure." in done.stderr

        failing.clear()
        again = examharness("run", "--resume", str(run_dir), "--retry-errors", *FAST, env=env)
        assert again.returncode == 0, again.stderr
    assert len(batches.created) == 2
    assert sent_items(batches, 1) == {"q002", "q007"}
    assert {status for status, _ in statuses(run_dir).values()} == {"ok"}


def test_expired_batch_unanswered_entries_are_errors(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 8, mode="single")
    batches = BatchAPI(expire=frozenset({0}), answered_before_expiry=3)
    env = cli_env(tmp_path)
    with ScriptedServer(responder=Recorder(exam), batches=batches) as srv:
        run_dir, done = first_session(exam.path, srv.base_url, tmp_path, env)
        found = statuses(run_dir)
        errors = {k for k, (status, _) in found.items() if status == "error"}
        assert len(errors) == 5 and len(found) == 8
        assert all(f"batch {batches.created[0]} expired" in (found[k][1] or "") for k in errors)
        assert "5 × batch_expired" in done.stderr

        again = examharness("run", "--resume", str(run_dir), "--retry-errors", *FAST, env=env)
        assert again.returncode == 0, again.stderr
    assert sent_items(batches, 1) == errors
    assert {status for status, _ in statuses(run_dir).values()} == {"ok"}


def test_retry_after_a_failed_second_stage_resends_only_the_second_stage(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 6, mode="two_stage")
    failing = {"q001/answer"}
    batches = BatchAPI(fail=lambda cid: any(cid.endswith(f"{f}/0") for f in failing))
    env = cli_env(tmp_path)
    with ScriptedServer(responder=Recorder(exam), batches=batches) as srv:
        args = ["run", str(exam.path), "--model", "scripted", "--base-url", srv.base_url, "--batch", *FAST]
        done = examharness(*args, "--out", str(tmp_path / "results"), "--no-cache", env=env)
        assert done.returncode == EXIT_ITEM_ERRORS, done.stderr
        run_dir = Path(done.stdout.strip().splitlines()[-1])
        failing.clear()
        again = examharness("run", "--resume", str(run_dir), "--retry-errors", "--no-cache", *FAST, env=env)
        assert again.returncode == 0, again.stderr
    assert [line["custom_id"] for line in batches.batch_lines(batches.created[2])] == ["small/q001/answer/0"]
    record = next(r for r in RunFolder(run_dir).read_items() if r.item_id == "q001")
    assert [s.stage for s in record.stages] == ["explanation", "answer"] and record.status == "ok"


def test_refused_upload_aborts_with_one_line_and_no_key(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 3)
    env = cli_env(tmp_path) | {"SCRIPTED_KEY": "sk-scripted-secret-0123456789"}
    with ScriptedServer(responder=Recorder(exam), batches=BatchAPI(reject=401)) as srv:
        done = examharness("run", str(exam.path), "--model", "scripted", "--base-url", srv.base_url,
                           "--api-key-env", "SCRIPTED_KEY", "--batch", "--out", str(tmp_path / "results"),
                           *FAST, env=env)  # fmt: skip
    assert done.returncode == EXIT_ABORTED
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "HTTP 401" in done.stderr and "resume with" in done.stderr
    (run_dir,) = (tmp_path / "results").iterdir()
    stored = "".join(p.read_text() for p in run_dir.rglob("*") if p.is_file())
    assert "sk-scripted-secret-0123456789" not in done.stderr + stored


TESTS = "def check(candidate):\n    assert candidate(3) == 6\n"


def test_code_samples_are_one_entry_each(tmp_path: Path) -> None:
    items = [{"id": m.lower(), "type": "code", "entry_point": "double", "tests": TESTS, "time_limit_s": 5,
              "prompt": f"{m}: write double(x) returning twice x."}
             for m in ("P-right", "P-wrong")]  # fmt: skip
    exam = {"id": "code", "title": "Code", "source": "examharness tests", "license": "MIT",
            "sections": [{"id": "code", "kind": "code", "items": items}]}  # fmt: skip
    path = tmp_path / "code.yaml"
    path.write_text("# Written for examharness's tests.\n" + yaml.safe_dump(exam), encoding="utf-8")

    def respond(request: dict[str, Any]) -> str:
        right = "P-right:" in last_user_message(request)
        return f"```python\ndef double(x):\n    return {'2 * x' if right else 'x + 2'}\n```"

    batches = BatchAPI()
    with ScriptedServer(responder=respond, batches=batches) as srv:
        opts = RunOptions(paths=[path], model="scripted", base_url=srv.base_url, out=tmp_path / "results",
                          use_cache=False, samples=3, seed=7, batch=True, poll_interval=0.01)  # fmt: skip
        run_dir, _ = run_exams(opts)
    (only,) = batches.created
    lines = batches.batch_lines(only)
    assert sorted(line["custom_id"] for line in lines) == [
        f"code/{item}/response/{i}" for item in ("p-right", "p-wrong") for i in range(3)
    ]
    assert {line["body"]["seed"] for line in lines} == {7, 8, 9}
    records = {r.item_id: r for r in RunFolder(run_dir).read_items()}
    assert [s.params.seed for s in records["p-right"].stages] == [7, 8, 9]
    outcomes = {k: [c.result.outcome if c.result else c.status for c in r.code] for k, r in records.items()}
    assert outcomes == {"p-right": ["pass"] * 3, "p-wrong": ["fail"] * 3}


def test_batch_cancel_while_polling_makes_the_unanswered_items_errors(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 5, mode="single")
    batches = BatchAPI(polls_per_status=100_000)
    env = cli_env(tmp_path)
    out = tmp_path / "results"
    with ScriptedServer(responder=Recorder(exam), batches=batches) as srv:
        args = ["run", str(exam.path), "--model", "scripted", "--base-url", srv.base_url, "--batch", "--out"]
        command = [sys.executable, "-m", "examharness.cli", *args, str(out), *FAST]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            deadline = time.monotonic() + 60
            while not batches.created and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.02)
            assert batches.created, "no batch was created"
            (run_dir,) = out.iterdir()
            cancel = examharness("batch", "cancel", str(run_dir), env=env)
            assert cancel.returncode == 0, cancel.stderr
            assert cancel.stdout.strip() == f"{batches.created[0]}: cancelled"
            _, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == EXIT_ITEM_ERRORS, stderr
    assert "5 × batch_cancelled" in stderr
    assert {status for status, _ in statuses(run_dir).values()} == {"error"}
    assert len(batches.created) == 1


def test_batch_that_fails_validation_makes_errors_naming_why(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 4, mode="single")
    batches = BatchAPI(invalid=frozenset({0}))
    with ScriptedServer(responder=Recorder(exam), batches=batches) as srv:
        opts = RunOptions(paths=[exam.path], model="scripted", base_url=srv.base_url, out=tmp_path / "r",
                          use_cache=False, batch=True, poll_interval=0.01)  # fmt: skip
        run_dir, _ = run_exams(opts)
        found = statuses(run_dir)
        assert {status for status, _ in found.values()} == {"error"}
        reason = f"batch {batches.created[0]} failed before this request was answered (invalid_model: "
        assert all(reason in (error or "") for _, error in found.values())
        again, _ = run_exams(opts.model_copy(update={"resume": run_dir, "retry_errors": True}))
    assert {status for status, _ in statuses(again).values()} == {"ok"}
    assert len(batches.created) == 2


@pytest.mark.parametrize(("args", "field"), [
    (["--batch"], "--batch"),
    (["--batch", "--model", "m", "--poll-interval", "0"], "--poll-interval"),
])  # fmt: skip
def test_bad_batch_flags_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], field: str
) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 2)
    assert main(["run", str(exam.path), "--out", str(tmp_path / "results"), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"command line: {field}: ")
    assert not (tmp_path / "results").exists()
