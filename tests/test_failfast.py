"""A broken backend never costs time or money: the real command line against misbehaving servers
on 127.0.0.1 (a wrong key, a missing model, nothing listening, a silent server, a server that
drips one byte a second), timed, with the exit codes the CLI documents."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from conftest import Recorder, cli_env, examharness, marker_of, write_mc_exam

from examharness.errors import EXIT_ABORTED, EXIT_ITEM_ERRORS, EXIT_OK
from examharness.jsonfiles import read_jsonl
from examharness.records import ITEMS_FILE, ItemRecord
from examharness.results import RunFolder
from examharness.testing import Fault, ScriptedServer, every_request, faults_on_first_attempts

CONCURRENCY = 8
KEY = "sk-test-0123456789abcdef"


def run_cli(exam: Path, base_url: str, tmp_path: Path, *extra: str) -> tuple[int, str, float, Path | None]:
    """``examharness run`` against ``base_url``: exit code, stderr, seconds, and the run folder."""
    env = cli_env(tmp_path) | {"OPENAI_API_KEY": KEY}
    out = tmp_path / "results"
    started = time.monotonic()
    done = examharness(
        "run", str(exam), "--model", "scripted", "--base-url", base_url, "--out", str(out),
        "--concurrency", str(CONCURRENCY), "--no-score", *extra, env=env, timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert "Traceback" not in done.stderr, done.stderr
    runs = sorted(out.glob("*/run.json"))
    return done.returncode, done.stderr, elapsed, runs[0].parent if runs else None


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("status", [401, 403, 404])
def test_permanent_refusal_stops_the_run_at_once(tmp_path: Path, status: int) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "e.yaml", 220)
    with ScriptedServer(responder=Recorder(exam), faults=every_request(Fault.reject(status))) as srv:
        code, stderr, _, run_dir = run_cli(exam.path, srv.base_url, tmp_path)
        sent = len(srv.requests)
    assert code == EXIT_ABORTED, stderr
    assert sent <= CONCURRENCY < 2 * CONCURRENCY
    line = last_line(stderr)
    assert line.startswith("run aborted: ") and f"HTTP {status}" in line
    assert run_dir is not None and f"examharness run --resume {run_dir}" in line
    summary = RunFolder(run_dir).read_config().summary
    assert summary["stopped"].startswith("aborted: ") and summary["requests_sent"] == sent
    assert read_jsonl(run_dir / ITEMS_FILE, ItemRecord).records == []  # nothing asked is marked answered


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_nothing_listening_stops_after_one_items_retry_budget(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "e.yaml", 40)
    code, stderr, elapsed, run_dir = run_cli(
        exam.path, f"http://127.0.0.1:{free_port()}/v1", tmp_path, "--max-attempts", "3"
    )
    assert code == EXIT_ABORTED, stderr
    assert "no request has been answered" in last_line(stderr)
    # At most the items in flight used their budgets, not all forty (120 requests).
    assert run_dir is not None
    assert RunFolder(run_dir).read_config().summary["requests_sent"] <= 3 * CONCURRENCY
    assert elapsed < 60


@pytest.mark.parametrize("fault", [Fault.silent(), Fault.drip(1.0)], ids=["silent", "drip"])
def test_timeout_bounds_each_attempt_end_to_end(tmp_path: Path, fault: Fault) -> None:
    """A silent server and one dripping a byte a second (the SDK's read timeout never fires) both
    cost ``--timeout`` per attempt; with nothing ever answered the run stops after one budget."""
    exam = write_mc_exam(tmp_path / "exams" / "e.yaml", 40)
    with ScriptedServer(responder=Recorder(exam), faults=every_request(fault)) as srv:
        code, stderr, elapsed, _ = run_cli(
            exam.path, srv.base_url, tmp_path, "--timeout", "1", "--max-attempts", "2"
        )
        sent = len(srv.requests)
    assert code == EXIT_ABORTED, stderr
    assert "no complete reply within 1s" in last_line(stderr)
    assert elapsed < 60 and sent <= 2 * CONCURRENCY  # one dripped reply alone takes minutes


def test_a_dripping_first_attempt_is_retried_within_the_deadline(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "e.yaml", 8)
    drip_first = faults_on_first_attempts(1.0, 0, [Fault.drip(1.0)])
    with ScriptedServer(responder=Recorder(exam), faults=drip_first) as srv:
        code, stderr, elapsed, run_dir = run_cli(
            exam.path, srv.base_url, tmp_path, "--timeout", "1", "--max-attempts", "3"
        )
    assert code == EXIT_OK, stderr
    assert elapsed < 60
    assert run_dir is not None
    records = read_jsonl(run_dir / ITEMS_FILE, ItemRecord).records
    assert len(records) == exam.n_items and {r.stages[0].attempts for r in records} == {2}


def test_items_that_end_as_error_give_their_own_exit_code_and_reasons(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "e.yaml", 12)

    def policy(index: int, request: dict[str, object], attempt: int) -> Fault | None:
        return Fault.server_error(503) if marker_of(request) in ("QID-002", "QID-007") else None

    with ScriptedServer(responder=Recorder(exam), faults=policy) as srv:
        code, stderr, _, run_dir = run_cli(exam.path, srv.base_url, tmp_path, "--max-attempts", "2")
    assert code == EXIT_ITEM_ERRORS, stderr
    reasons = [line for line in stderr.splitlines() if line.startswith("  2 × http_503: HTTP 503")]
    assert len(reasons) == 1 and reasons[0].endswith("Scripted server error."), stderr
    assert run_dir is not None and f"examharness run --resume {run_dir} --retry-errors" in stderr
    summary = RunFolder(run_dir).read_config().summary
    assert (summary["ok"], summary["error"], summary["stopped"]) == (10, 2, None)
