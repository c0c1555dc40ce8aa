"""``run --batch`` through the real command line and the real openai client, against the scripted
server's Files and Batches endpoints (:mod:`examharness.testing.batch_api`) on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder, SmallExam, cli_env, examharness, marker_of, write_mc_exam

from examharness.api import RunOptions, run_exams
from examharness.batch import engine
from examharness.batch.lines import EntryId
from examharness.batch.state import BATCH_FILE, BatchState
from examharness.jsonfiles import read_jsonl, read_model
from examharness.records import ITEMS_FILE, ItemRecord
from examharness.results import RunFolder
from examharness.testing import ScriptedServer
from examharness.testing.batch_api import BatchAPI

N_ITEMS = 24
VAGUE = {f"QID-{i:03d}" for i in range(0, N_ITEMS, 4)}
"""Items whose explanation states no answer: ``letter_if_needed`` asks them for the letter."""
FAST = ["--poll-interval", "0.02", "--bootstrap", "0"]


def two_stage_exam(tmp_path: Path) -> SmallExam:
    return write_mc_exam(tmp_path / "exams" / "small.yaml", N_ITEMS, mode="letter_if_needed")


def run_dir_of(stdout: str) -> Path:
    return Path(stdout.strip().splitlines()[-1])


def scores(run_dir: Path) -> list[dict[str, Any]]:
    """What a run scored, without what names the run."""
    data = json.loads((run_dir / "scores.json").read_text())
    return [{k: v for k, v in exam.items() if k != "ci"} for exam in data["exams"]]


def items(run_dir: Path) -> dict[str, ItemRecord]:
    return {r.item_id: r for r in RunFolder(run_dir).read_items()}


def test_batch_run_scores_equal_a_normal_run(tmp_path: Path) -> None:
    exam = two_stage_exam(tmp_path)
    env = cli_env(tmp_path)
    batches = BatchAPI(polls_per_status=2)
    with ScriptedServer(responder=Recorder(exam, vague=VAGUE), batches=batches) as srv:
        common = ["run", str(exam.path), "--model", "scripted", "--base-url", srv.base_url, *FAST]
        normal = examharness(*common, "--out", str(tmp_path / "normal"), "--no-cache", env=env)
        assert normal.returncode == 0, normal.stderr
        chat_requests = len([r for r in srv.requests if r.path.endswith("/chat/completions")])
        batched = examharness(*common, "--out", str(tmp_path / "batch"), "--batch", env=env)
        assert batched.returncode == 0, batched.stderr
        answered = [r for r in srv.requests if r.path == "batch"]
        assert len([r for r in srv.requests if r.path.endswith("/chat/completions")]) == chat_requests
    normal_dir, batch_dir = run_dir_of(normal.stdout), run_dir_of(batched.stdout)
    assert scores(batch_dir) == scores(normal_dir)
    assert scores(batch_dir)[0]["raw"] == exam.n_correct
    for d in (normal_dir, batch_dir):  # the summary counts records, not the provider's request counts
        summary = RunFolder(d).read_config().summary
        assert (summary["items"], summary["ok"], summary["letter_requests"]) == (N_ITEMS, N_ITEMS, len(VAGUE))

    # Two batches: every first stage, then the letter for the vague items only.
    created = batches.created
    assert len(created) == 2
    first, second = (batches.batch_lines(b) for b in created)
    assert {EntryId.parse(line["custom_id"]).stage for line in first} == {"explanation"}
    assert len(first) == N_ITEMS
    assert {marker_of(line["body"]) for line in second} == VAGUE
    assert len(answered) == N_ITEMS + len(VAGUE)

    # The same requests as the normal run: same messages, params, stages, usage kept.
    want, got = items(normal_dir), items(batch_dir)
    assert got.keys() == want.keys()
    for item_id, record in got.items():
        assert record.status == "ok"
        assert [(s.stage, s.messages, s.params, s.reply) for s in record.stages] == [
            (s.stage, s.messages, s.params, s.reply) for s in want[item_id].stages
        ]
        assert all(s.usage.completion_tokens > 0 and s.finish_reason == "stop" for s in record.stages)
    state = read_model(batch_dir / BATCH_FILE, BatchState)
    assert [(j.status, j.batch_status, j.batch_id) for j in state.jobs] == [
        ("collected", "completed", b) for b in created
    ]
    assert (batch_dir / state.jobs[0].output_file).is_file()


def test_batch_replies_reach_the_cache(tmp_path: Path) -> None:
    """A normal run after a batch run of the same exam sends nothing: every reply is cached."""
    exam = two_stage_exam(tmp_path)
    env = cli_env(tmp_path)
    cache = str(tmp_path / "cache.sqlite")
    with ScriptedServer(responder=Recorder(exam, vague=VAGUE), batches=BatchAPI()) as srv:
        common = ["run", str(exam.path), "--model", "scripted", "--base-url", srv.base_url, "--cache", cache]
        done = examharness(*common, "--batch", *FAST, env=env)
        assert done.returncode == 0, done.stderr
        again = examharness(*common, "--bootstrap", "0", env=env)
        assert again.returncode == 0, again.stderr
        assert not [r for r in srv.requests if r.path.endswith("/chat/completions")]
    assert "0 requests sent" in again.stderr and f"{N_ITEMS + len(VAGUE)} from cache" in again.stderr


@pytest.mark.parametrize("stage", [1, 2])
def test_kill_during_polling_then_resume_submits_nothing_twice(tmp_path: Path, stage: int) -> None:
    """``kill -9`` while the first (or the second) stage's batch is polled; the resume polls it."""
    exam = two_stage_exam(tmp_path)
    env = cli_env(tmp_path)
    out = tmp_path / "results"
    batches = BatchAPI(polls_per_status=40)
    with ScriptedServer(responder=Recorder(exam, vague=VAGUE), batches=batches) as srv:
        proc = subprocess.Popen(
            [sys.executable, "-m", "examharness.cli", "run", str(exam.path), "--model", "scripted",
             "--base-url", srv.base_url, "--out", str(out), "--batch", "--poll-interval", "0.05",
             "--no-score"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and proc.poll() is None:
                created = batches.created
                if len(created) == stage and sum(r.path.endswith(created[-1]) for r in srv.requests) >= 3:
                    break
                time.sleep(0.01)
            assert proc.poll() is None, f"the run ended before batch {stage} was polled three times"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, stderr
        (run_dir,) = out.iterdir()
        state = read_model(run_dir / BATCH_FILE, BatchState)
        assert [(j.status, j.batch_id) for j in state.jobs][-1] == ("submitted", batches.created[-1])
        recorded = len(read_jsonl(run_dir / ITEMS_FILE, ItemRecord).records)
        assert recorded == (0 if stage == 1 else N_ITEMS - len(VAGUE))

        done = examharness("run", "--resume", str(run_dir), *FAST, env=env)
        assert done.returncode == 0, done.stderr
        answered = Counter(r.prompt_hash for r in srv.requests if r.path == "batch")
    assert len(batches.created) == 2, "one batch per stage, the killed one polled, not sent again"
    assert batches.uploads == 2
    stages = [{EntryId.parse(x["custom_id"]).stage for x in batches.batch_lines(b)} for b in batches.created]
    assert stages == [{"explanation"}, {"answer"}]
    assert set(answered.values()) == {1}
    records = read_jsonl(run_dir / ITEMS_FILE, ItemRecord).records
    assert Counter(r.item_id for r in records) == {f"q{i:03d}": 1 for i in range(N_ITEMS)}
    assert {r.status for r in records} == {"ok"}
    assert (run_dir / "scores.json").is_file()


def test_collected_batch_is_not_downloaded_again(tmp_path: Path) -> None:
    """A session killed after the download (batch.json says collected, items not written yet)
    reads the files in the run folder on resume: no download, no submission. A result file that
    is gone from the folder is downloaded again, and only that."""
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 6, mode="single")
    env = cli_env(tmp_path)
    batches = BatchAPI()
    with ScriptedServer(responder=Recorder(exam), batches=batches) as srv:
        args = ["run", str(exam.path), "--model", "scripted", "--base-url", srv.base_url, "--no-cache"]
        done = examharness(*args, "--batch", *FAST, "--out", str(tmp_path / "r"), env=env)
        assert done.returncode == 0, done.stderr
        run_dir = run_dir_of(done.stdout)
        resume = ["run", "--resume", str(run_dir), "--no-cache", *FAST]
        (run_dir / ITEMS_FILE).write_text("")  # as if killed before any record was written
        seen = len(srv.requests)
        again = examharness(*resume, env=env)
        assert again.returncode == 0, again.stderr
        assert srv.requests[seen:] == []

        (run_dir / ITEMS_FILE).write_text("")
        (run_dir / read_model(run_dir / BATCH_FILE, BatchState).jobs[0].output_file).unlink()
        seen = len(srv.requests)
        third = examharness(*resume, env=env)
        assert third.returncode == 0, third.stderr
        assert [r.path for r in srv.requests[seen:]] == ["/v1/files/file-scripted-2/content"]
    assert len(batches.created) == 1
    assert len(RunFolder(run_dir).read_items()) == 6


def test_requests_beyond_one_batch_file_go_as_several_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch file holds at most MAX_REQUESTS (50,000 at OpenAI): more become several batches of
    one round, polled together."""
    monkeypatch.setattr(engine, "MAX_REQUESTS", 5)
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 12, mode="single")
    batches = BatchAPI(polls_per_status=2)
    with ScriptedServer(responder=Recorder(exam), batches=batches) as srv:
        opts = RunOptions(paths=[exam.path], model="scripted", base_url=srv.base_url, out=tmp_path / "r",
                          use_cache=False, batch=True, poll_interval=0.01)  # fmt: skip
        run_dir, counters = run_exams(opts)
    assert sorted(len(batches.batch_lines(b)) for b in batches.created) == [2, 5, 5]
    jobs = read_model(run_dir / BATCH_FILE, BatchState).jobs
    assert [(j.name, j.requests, j.status) for j in jobs] == [
        ("b001", 5, "collected"), ("b002", 5, "collected"), ("b003", 2, "collected")
    ]  # fmt: skip
    records = RunFolder(run_dir).read_items()
    assert len(records) == 12 and {r.status for r in records} == {"ok"}
    assert counters.requests == 12
