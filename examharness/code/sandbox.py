"""Run one untrusted program against its tests in a separate, limited, isolated process.

Model output is hostile input: a reply may loop, fork, allocate, write, read, connect or kill.
Each program runs as its own process tree in a fresh temporary folder with

* **limits** (``prlimit``, applied before any untrusted byte runs): CPU seconds, address space,
  file size, process count, no core dumps, plus a wall-clock timeout after which the whole tree
  is killed;
* **isolation**, the strongest the machine allows (:func:`detect_isolation`):

  ``bwrap-setuid`` (running as root with bubblewrap): new PID, network, IPC and UTS namespaces;
  a new mount namespace in which only ``/usr``, the interpreter's own prefix (read-only), a fresh
  ``/proc``, a minimal ``/dev``, the program files (``/prog``, read-only) and a size-capped
  tmpfs working folder (``/sandbox``) exist; the program then drops to an unprivileged uid of its
  own (one per worker slot, so ``RLIMIT_NPROC``, which the kernel does not enforce for root,
  applies), with no capabilities and ``no_new_privs``. The run folder, the cache and the user's
  files are not in its file system; its network namespace has only its own loopback.

  ``bwrap-userns`` (not root, unprivileged user namespaces allowed): the same namespaces and
  mounts inside a user namespace; the process count is bounded for the user as a whole (its
  current processes plus the budget), as the kernel counts per user.

  ``rlimits`` (no bubblewrap, or it cannot create namespaces): the limits only, a new session,
  a scrubbed environment and a fresh working folder; as root the program still runs under its
  own uid. No network or file-system isolation: the result records this, and the README says so.

The result (:class:`ExecResult`) is ``pass``, ``fail`` (with the failing test line), ``timeout``,
``memory`` or ``crash``. A pass needs the in-sandbox harness's result line carrying a nonce the
program never sees in its source; a program that exits before the tests ran is a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Isolation = Literal["bwrap-setuid", "bwrap-userns", "rlimits"]
Outcome = Literal["pass", "fail", "timeout", "memory", "crash"]
CHILD = Path(__file__).with_name("_child.py")
UID_BASE = 61700
"""Sandbox uids are ``UID_BASE + slot``: unused by the system, one per concurrent program."""
OUTPUT_CAP = 64 * 1024


class SandboxError(Exception):
    """The sandbox itself could not start (bubblewrap, setpriv or prlimit failed): no verdict."""


class Limits(BaseModel):
    """Resource limits for one program (the defaults suit HumanEval-sized functions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cpu_s: int = Field(default=10, gt=0)
    wall_s: float = Field(default=20.0, gt=0)
    memory_mb: int = Field(default=512, ge=64)
    """Address space; Python itself needs about 30 MB of it."""
    file_mb: int = Field(default=16, gt=0)
    """Largest file the program may write (``RLIMIT_FSIZE``)."""
    disk_mb: int = Field(default=64, gt=0)
    """Size of the working folder's tmpfs (bubblewrap modes)."""
    processes: int = Field(default=16, gt=0)


class ExecResult(BaseModel):
    """What happened to one program; stored per sample in ``items.jsonl``."""

    model_config = ConfigDict(extra="ignore")
    outcome: Outcome
    failed_test: str | None = None
    """For ``fail``: the test line that failed (an assertion of ``check``), when known."""
    detail: str | None = None
    """The exception, signal or limit that ended the program (trimmed)."""
    duration_s: float = 0.0
    isolation: Isolation


@cache
def detect_isolation() -> Isolation:
    """The strongest isolation available here (probed once per process)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "rlimits"
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return "bwrap-setuid"
    probe = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    ok = subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0
    return "bwrap-userns" if ok else "rlimits"


def _user_processes(uid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                continue
    return count


def _prlimit(limits: Limits, nproc: int) -> list[str]:
    mb = 1024 * 1024
    return [
        "prlimit", f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}", f"--as={limits.memory_mb * mb}",
        f"--fsize={limits.file_mb * mb}", f"--nproc={nproc}", "--core=0", "--nofile=256", "--",
    ]  # fmt: skip


def _mount_args(prog: Path, limits: Limits) -> list[str]:
    """Only the interpreter and the program: /usr and the Python prefix read-only, a tmpfs cwd."""
    args = ["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev"]
    for top in ("bin", "lib", "lib64", "lib32", "sbin"):
        host = Path("/") / top
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{top}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{top}"]
    prefix = Path(sys.base_prefix).resolve()
    if not prefix.is_relative_to("/usr"):
        args += ["--ro-bind", str(prefix), str(prefix)]
    args += ["--ro-bind", str(prog), "/prog", "--perms", "1777", "--size", str(limits.disk_mb * 1024 * 1024)]
    args += ["--tmpfs", "/sandbox", "--chdir", "/sandbox"]
    return args


def _env_args() -> list[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/sandbox", "TMPDIR": "/sandbox", "LANG": "C.UTF-8"}
    return ["--clearenv"] + [a for k, v in env.items() for a in ("--setenv", k, v)]


def _command(isolation: Isolation, prog: Path, entry_point: str, limits: Limits, slot: int) -> list[str]:
    python = [str(Path(sys.base_prefix) / "bin" / Path(sys.executable).name), "-I", "-S", "-B"]
    if not Path(python[0]).exists():
        python[0] = sys.executable
    child = "/prog/child.py" if isolation != "rlimits" else str(prog / "child.py")
    program = [*python, child, entry_point]
    namespaces = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    common = ["--die-with-parent", "--new-session", *_env_args(), *_mount_args(prog, limits)]
    if isolation == "bwrap-setuid":
        uid = UID_BASE + slot
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all", "--"]  # fmt: skip
        return [*_prlimit(limits, limits.processes), "bwrap", *namespaces, *common, "--", *drop, *program]
    if isolation == "bwrap-userns":
        nproc = _user_processes(os.getuid()) + limits.processes
        wrap = ["bwrap", "--unshare-user", *namespaces, "--cap-drop", "ALL", *common, "--"]
        return [*_prlimit(limits, nproc), *wrap, *program]
    if os.geteuid() == 0:
        uid = UID_BASE + slot
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"]
        return [*_prlimit(limits, limits.processes), *drop, *program]
    return [*_prlimit(limits, _user_processes(os.getuid()) + limits.processes), *program]


def run_program(
    solution: str, tests: str, entry_point: str, *, limits: Limits, slot: int = 0,
    isolation: Isolation | None = None,
) -> ExecResult:  # fmt: skip
    """Run ``solution`` then ``tests`` (defining ``check(candidate)``) in the sandbox; blocking.

    ``slot`` (0 … workers-1) picks the sandbox uid, so concurrent programs never share a process
    budget. Call from a worker thread: it waits for the program (at most ``limits.wall_s``).
    Raises :class:`SandboxError` when the sandbox itself fails to start (there is no verdict).
    """
    isolation = isolation or detect_isolation()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="examharness-code-") as tmp:
        root = Path(tmp)
        prog = root / "prog"
        prog.mkdir()
        (prog / "solution.py").write_text(solution, encoding="utf-8")
        (prog / "tests.py").write_text(tests, encoding="utf-8")
        shutil.copyfile(CHILD, prog / "child.py")
        work = root / "work"
        work.mkdir()
        for path in (root, prog, *prog.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        if isolation == "rlimits" and os.geteuid() == 0:
            os.chown(work, UID_BASE + slot, UID_BASE + slot)
        nonce = secrets.token_hex(16)
        command = _command(isolation, prog, entry_point, limits, slot)
        returncode, timed_out = _execute(command, work, nonce, limits, root)
        out = (root / "stdout").read_bytes()[-OUTPUT_CAP:].decode("utf-8", "replace")
        err = (root / "stderr").read_bytes()[-OUTPUT_CAP:].decode("utf-8", "replace")
    if isolation != "bwrap-userns" and os.geteuid() == 0:
        _kill_uid(UID_BASE + slot)  # the slot's uid starts the next program with no process left
    duration = round(time.monotonic() - started, 3)
    return _classify(out, err, nonce, returncode, timed_out, isolation, duration)


def _execute(command: list[str], cwd: Path, nonce: str, limits: Limits, root: Path) -> tuple[int, bool]:
    """Start the tree in its own session, feed the nonce, wait up to the wall limit, kill it all."""
    with (root / "stdout").open("wb") as out, (root / "stderr").open("wb") as err:
        proc = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.PIPE, stdout=out, stderr=err,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True,
        )  # fmt: skip
        try:
            assert proc.stdin is not None
            proc.stdin.write((nonce + "\n").encode())
            proc.stdin.close()
        except OSError:
            pass  # the program closed its stdin: it just never learns the nonce
        try:
            return proc.wait(timeout=limits.wall_s), False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return proc.wait(), True
        finally:
            if proc.poll() is None:
                _kill_group(proc)
                proc.wait()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the session; bubblewrap's ``--die-with-parent`` then takes the PID namespace down."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _kill_uid(uid: int) -> None:
    """Kill and wait out every process of a sandbox uid: without namespaces a program may leave
    processes in new sessions, and with them a dying PID namespace takes a moment to empty."""
    for _ in range(100):
        pids = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:
                continue
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _classify(
    out: str, err: str, nonce: str, returncode: int, timed_out: bool, isolation: Isolation, duration: float
) -> ExecResult:
    base = {"isolation": isolation, "duration_s": duration}
    if timed_out:
        return ExecResult(outcome="timeout", detail="wall-clock limit", **base)
    for line in reversed(out.splitlines()):
        if line.startswith(nonce + " "):
            data = json.loads(line[len(nonce) + 1 :])
            test, detail = data["test"], data["detail"]
            return ExecResult(outcome=data["outcome"], failed_test=test, detail=detail, **base)
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    tail = err.strip().splitlines()[-1][:300] if err.strip() else None
    if err.lstrip().startswith(("bwrap:", "setpriv:", "prlimit:")):
        raise SandboxError(err.strip().splitlines()[0][:300])
    if "MemoryError" in err:
        return ExecResult(outcome="memory", detail=tail, **base)
    if signum in (signal.SIGXCPU, signal.SIGKILL):
        return ExecResult(outcome="timeout", detail=f"CPU limit (signal {signum})", **base)
    return ExecResult(outcome="crash", detail=tail or f"exit status {returncode}, no result", **base)
