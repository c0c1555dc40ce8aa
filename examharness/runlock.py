"""One writer per run folder: an advisory lock held for as long as a run or resume writes it.

Two ``run --resume`` of one folder at once would send every remaining item twice and append
duplicate records, so the second one must refuse before it reads anything. The lock is
``fcntl.flock`` on ``RUN_DIR/.lock``: the OS releases it when the holder exits, however it exits
(``kill -9`` included), so a stale lock can never block a resume. The file itself stays (removing
it would let a third process lock a fresh inode while the second still holds the old one); it
holds the pid of the last holder, for the refusal message only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from examharness.errors import InputError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's writer lock, or raise InputError at once if another process does."""
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise InputError.one(path, None, "lock", f"cannot create the lock file: {err.strerror}") from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise InputError.one(
                run_dir, None, "--resume",
                f"another examharness process (pid {holder}) is writing this run folder; "
                "wait for it to finish or stop it, then resume",
            ) from None  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
