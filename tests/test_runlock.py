"""One writer per run folder, and Ctrl-C leaves a resumable folder: the real command line in
subprocesses against a slow scripted server."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder, cli_env, examharness, write_mc_exam

from examharness.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, InputError
from examharness.jsonfiles import read_jsonl
from examharness.records import ITEMS_FILE, ItemRecord
from examharness.results import RunFolder
from examharness.runlock import LOCK_FILE, run_folder_lock
from examharness.testing import Fault, ScriptedServer

N_ITEMS = 60


def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "examharness.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Gate:
    """Replies come ``SLOW`` seconds late while ``slow`` is set, so a run is still going when the
    test acts on it however loaded the machine is; then at full speed."""

    SLOW = 0.5

    def __init__(self) -> None:
        self.slow = True

    def __call__(self, index: int, request: dict[str, Any], attempt: int) -> Fault | None:
        return Fault.slow(self.SLOW) if self.slow else None


def answered_by_prompt(srv: ScriptedServer) -> Counter[str | None]:
    return Counter(r.prompt_hash for r in srv.requests if r.status == 200)


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@dataclass
class SlowRun:
    srv: ScriptedServer
    gate: Gate
    proc: subprocess.Popen[str]
    run_dir: Path
    env: dict[str, str]


@contextlib.contextmanager
def slow_run(tmp_path: Path) -> Iterator[SlowRun]:
    """A run in a subprocess against a slow server, once it has recorded a few items."""
    exam = write_mc_exam(tmp_path / "exams" / "e.yaml", N_ITEMS)
    env, out, gate = cli_env(tmp_path), tmp_path / "results", Gate()
    with ScriptedServer(responder=Recorder(exam), faults=gate) as srv:
        proc = start("run", str(exam.path), "--model", "m", "--base-url", srv.base_url, "--out", str(out),
                     "--concurrency", "2", "--no-cache", "--no-score", env=env)  # fmt: skip
        try:
            wait_for(lambda: any(lines(p) >= 6 for p in out.glob("*/" + ITEMS_FILE)), "some items")
            yield SlowRun(srv, gate, proc, next(out.glob("*/" + ITEMS_FILE)).parent, env)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    busy = pytest.raises(InputError, match="another examharness process")
    with run_folder_lock(tmp_path), busy, run_folder_lock(tmp_path):
        pass
    with run_folder_lock(tmp_path):  # released on exit
        assert (tmp_path / LOCK_FILE).is_file()


def test_two_simultaneous_resumes_one_refuses_and_no_item_runs_twice(tmp_path: Path) -> None:
    with slow_run(tmp_path) as run:
        run_dir, env = run.run_dir, run.env
        busy = examharness("run", "--resume", str(run_dir), "--no-cache", env=env, timeout=60)
        assert busy.returncode == EXIT_BAD_INPUT and "Traceback" not in busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1, busy.stderr
        assert "another examharness process" in busy.stderr
        run.proc.send_signal(signal.SIGKILL)
        run.proc.communicate(timeout=30)
        # Two resumes at once; the server stays slow until one of them has exited, so the winner
        # is still writing when the loser starts, however loaded the machine is.
        resume = ("run", "--resume", str(run_dir), "--no-cache", "--no-score")
        resumes = [start(*resume, env=env) for _ in range(2)]
        wait_for(lambda: any(p.poll() is not None for p in resumes), "one resume to exit", timeout=120)
        run.gate.slow = False
        results = [(p.wait(timeout=120), p.communicate()[1]) for p in resumes]
        answered = answered_by_prompt(run.srv)
    codes = sorted(code for code, _ in results)
    assert codes == [EXIT_OK, EXIT_BAD_INPUT], results
    refused = next(err for code, err in results if code == EXIT_BAD_INPUT)
    assert "another examharness process" in refused and "Traceback" not in refused
    records = read_jsonl(run_dir / ITEMS_FILE, ItemRecord).records
    assert Counter(r.item_id for r in records) == {f"q{i:03d}": 1 for i in range(N_ITEMS)}
    assert len(answered) == N_ITEMS and sum(n > 1 for n in answered.values()) <= 2  # killed in flight


def test_ctrl_c_writes_the_summary_and_prints_the_resume_command(tmp_path: Path) -> None:
    with slow_run(tmp_path) as run:
        run_dir, proc = run.run_dir, run.proc
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == EXIT_INTERRUPTED, stderr
        assert "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1] == (
            f"interrupted; run folder {run_dir}, resume with: examharness run --resume {run_dir}"
        )
        summary = RunFolder(run_dir).read_config().summary
        done = lines(run_dir / ITEMS_FILE)
        assert summary["stopped"] == "interrupted" and summary["items"] == summary["ok"] == done
        assert 6 <= done < N_ITEMS
        run.gate.slow = False
        resumed = examharness("run", "--resume", str(run_dir), "--no-cache", "--no-score", env=run.env)
    assert resumed.returncode == EXIT_OK, resumed.stderr
    assert RunFolder(run_dir).read_config().summary["ok"] == N_ITEMS
