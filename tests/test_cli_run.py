"""``examharness run`` as a real subprocess: killed with SIGKILL mid-run and resumed, plus the
command line's handling of bad input (one message line, exit 1, never a traceback)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import Recorder, cli_env, examharness, write_mc_exam

from examharness.jsonfiles import read_jsonl
from examharness.records import ITEMS_FILE, ItemRecord
from examharness.testing import ScriptedServer, prompt_hash

CONCURRENCY = 4
N_ITEMS = 200


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def final_prompt(record: ItemRecord) -> str:
    return prompt_hash({"messages": record.stages[-1].messages})


def test_kill_and_resume(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "long.yaml", N_ITEMS)
    env = cli_env(tmp_path)
    cache = tmp_path / "cache" / "requests.sqlite"
    out = tmp_path / "results"
    with ScriptedServer(responder=Recorder(exam), latency=0.05) as srv:
        common = ["--model", "scripted", "--cache", str(cache), "--no-score"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "examharness.cli", "run", str(exam.path), "--base-url",
             srv.base_url, "--concurrency", str(CONCURRENCY), "--out", str(out), *common],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            items = None
            while time.monotonic() < deadline and proc.poll() is None:
                runs = list(out.glob("*/" + ITEMS_FILE))
                if runs and count_lines(runs[0]) >= 40:
                    items = runs[0]
                    break
                time.sleep(0.01)
            assert items is not None, "the run recorded no items in time"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, stderr
        run_dir = items.parent
        before = read_jsonl(items, ItemRecord).records
        assert 40 <= len(before) < N_ITEMS

        done = examharness("run", "--resume", str(run_dir), "--cache", str(cache),
                           "--bootstrap", "0", env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == str(run_dir)
        successes = srv.successful_by_prompt()

    after = read_jsonl(items, ItemRecord).records
    assert after[: len(before)] == before
    assert Counter(r.item_id for r in after) == {f"q{i:03d}": 1 for i in range(N_ITEMS)}
    assert {r.status for r in after} == {"ok"}

    # Only requests in flight at the kill may have been sent twice; finished items never.
    assert len(successes) == N_ITEMS
    assert set(successes.values()) <= {1, 2}
    assert sum(n == 2 for n in successes.values()) <= CONCURRENCY
    assert all(successes[final_prompt(r)] == 1 for r in before)
    assert (run_dir / "scores.json").is_file()


@pytest.mark.parametrize("args", [
    ["run", "--concurrency", "0", "exam.yaml"],
    ["run", "--resume", "no-such-run"],
    ["run"],
    ["run", "no-such-exam.yaml", "--model", "m"],
    ["run", "exam.yaml", "--model", "m", "--api-key-env", "EXAMHARNESS_UNSET_KEY"],
])  # fmt: skip
def test_bad_run_input_is_one_line(tmp_path: Path, args: list[str]) -> None:
    write_mc_exam(tmp_path / "exam.yaml", 2)
    env = cli_env(tmp_path)
    env.pop("EXAMHARNESS_UNSET_KEY", None)
    done = subprocess.run([sys.executable, "-m", "examharness.cli", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


@pytest.mark.parametrize("args", [
    ["run", "--bogus"],
    ["run", "--concurrency", "many", "exam.yaml"],
    ["run", "--mc-mode", "three_stage", "exam.yaml"],
    ["validate"],
    ["validate", "--bogus", "exam.yaml"],
    ["frobnicate"],
])  # fmt: skip
def test_bad_flags_exit_1_with_one_message(tmp_path: Path, args: list[str]) -> None:
    """argparse shows the usage, then exactly one ``command line: ...`` message line."""
    done = examharness(*args, env=cli_env(tmp_path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    messages = [line for line in done.stderr.splitlines() if line.startswith("command line:")]
    assert len(messages) == 1, done.stderr
    assert done.stderr.rstrip().endswith(messages[0])


def test_help_works(tmp_path: Path) -> None:
    done = examharness("--help", env=cli_env(tmp_path))
    assert done.returncode == 0 and done.stderr == ""
    assert "run" in done.stdout and "validate" in done.stdout
    run_help = examharness("run", "--help", env=cli_env(tmp_path))
    assert run_help.returncode == 0 and "--resume" in run_help.stdout
