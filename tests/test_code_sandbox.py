"""The sandbox against hostile programs: each ends as a contained, reported failure.

Every hostile program here is bounded even if the sandbox failed (the fork bomb forks at most
300 times, the file write stops at 1 GB, the loops end with the wall clock), so a regression
shows up as a failed test, never as a machine taken down.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from examharness.code import sandbox
from examharness.code.sandbox import UID_BASE, ExecResult, Limits, SandboxError, detect_isolation, run_program

TESTS = "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(5) == 6\n"
FAST = Limits(cpu_s=2, wall_s=6, memory_mb=256, file_mb=8, processes=16)


def run(body: str, limits: Limits = FAST) -> ExecResult:
    """``body`` runs inside ``f`` (the entry point) when the tests call it."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    program = f"import os, sys, time, signal, socket\n\ndef f(x):\n{indented}\n    return x + 1\n"
    return run_program(program, TESTS, "f", limits=limits)


def sandbox_processes() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and UID_BASE <= entry.stat().st_uid < UID_BASE + 64:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_correct_and_wrong_programs() -> None:
    assert run("pass").outcome == "pass"
    wrong = run_program("def f(x):\n    return x\n", TESTS, "f", limits=FAST)
    assert (wrong.outcome, wrong.failed_test) == ("fail", "assert candidate(1) == 2")
    assert wrong.isolation == detect_isolation()


def test_exiting_early_is_never_a_pass() -> None:
    program = "import os\nos._exit(0)\ndef f(x):\n    return x + 1\n"
    assert run_program(program, TESTS, "f", limits=FAST).outcome == "crash"
    assert run("sys.exit(0)").outcome == "fail"


def test_forged_result_lines_are_ignored() -> None:
    result = run('print("0" * 32 + \' {"outcome": "pass", "test": null, "detail": null}\')\nos._exit(0)')
    assert result.outcome == "crash"


def test_infinite_loop_is_a_timeout() -> None:
    assert run("while True:\n    pass").outcome == "timeout"
    sleeper = run("time.sleep(60)", Limits(cpu_s=2, wall_s=2))
    assert (sleeper.outcome, sleeper.detail) == ("timeout", "wall-clock limit")


def test_memory_hog_is_a_memory_failure() -> None:
    result = run("blocks = []\nfor _ in range(64):\n    blocks.append(bytearray(64 * 1024 * 1024))")
    assert result.outcome == "memory"


def test_fork_bomb_is_bounded_and_leaves_nothing() -> None:
    body = """
n = 0
for _ in range(300):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    n += 1
raise RuntimeError(f"forked {n}")
"""
    result = run(body)
    assert result.outcome == "fail" and result.detail is not None
    forked = int(result.detail.split()[-1])
    assert forked < FAST.processes, result.detail
    assert sandbox_processes() == []


def test_gigabyte_file_write_is_stopped() -> None:
    body = """
with open("big.bin", "wb") as f:
    for _ in range(1024):
        f.write(b"x" * (1024 * 1024))
"""
    result = run(body)
    assert result.outcome == "fail"
    assert result.detail is not None and ("File too large" in result.detail or "No space" in result.detail)


def test_files_outside_the_working_folder_cannot_be_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("run folder content")
    secret.chmod(0o644)
    result = run(f"print(open({str(secret)!r}).read())")
    assert result.outcome == "fail"
    if detect_isolation() != "rlimits":
        assert result.detail is not None and "No such file" in result.detail
        home = run("print(os.listdir('/root'))")
        assert home.outcome == "fail"
        visible = run("top = os.listdir('/')\nassert not {'etc', 'home', 'tmp', 'work'} & set(top), top")
        assert visible.outcome == "pass", visible


@pytest.mark.skipif(detect_isolation() == "rlimits", reason="no network namespace without bubblewrap")
def test_network_connection_to_a_local_listener_fails() -> None:
    accepted: list[object] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(8)
        port = server.getsockname()[1]

        def accept() -> None:
            with contextlib.suppress(OSError):
                accepted.append(server.accept())

        thread = threading.Thread(target=accept)
        thread.start()
        result = run(f"socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hi')")
        server.close()
        thread.join()
    assert result.outcome == "fail" and "Connection refused" in (result.detail or "")
    assert accepted == []


def test_killing_the_parent_fails(tmp_path: Path) -> None:
    me = os.getpid()
    result = run(f"os.kill({me}, signal.SIGKILL)")
    assert result.outcome == "fail"
    assert run("os.kill(os.getppid(), signal.SIGKILL)").outcome in ("fail", "crash")
    assert run("os.kill(-1, signal.SIGKILL)").outcome in ("fail", "crash")
    assert os.getpid() == me  # still here


def test_deleting_the_working_folder_harms_nothing(tmp_path: Path) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("x")
    body = f"""
import shutil
for name in os.listdir("."):
    shutil.rmtree(name, ignore_errors=True)
shutil.rmtree("/prog", ignore_errors=True)
shutil.rmtree({str(tmp_path)!r}, ignore_errors=True)
"""
    assert run(body).outcome == "pass"
    assert keep.read_text() == "x"


def test_the_run_goes_on_after_hostile_programs() -> None:
    assert run("pass").outcome == "pass"
    assert sandbox_processes() == []


@pytest.mark.skipif(detect_isolation() == "rlimits", reason="needs bubblewrap")
def test_a_sandbox_that_cannot_start_is_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    real = sandbox._command

    def broken(*args: Any, **kwargs: Any) -> list[str]:
        command = real(*args, **kwargs)
        at = command.index("bwrap") + 1
        return [*command[:at], "--no-such-option", *command[at:]]

    monkeypatch.setattr(sandbox, "_command", broken)
    with pytest.raises(SandboxError, match="bwrap"):
        run("pass")
