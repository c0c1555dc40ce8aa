"""Progress for long runs: a rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from examharness.runner import Counters, ProgressFn


def _stats(c: Counters) -> str:
    elapsed = max(time.monotonic() - c.started, 1e-9)
    tokens = c.prompt_tokens + c.completion_tokens
    return (
        f"{c.done / elapsed:.1f} items/s  errors {c.errors}  empty {c.empty}  "
        f"tokens {tokens:,}  cached {c.cached}  retries {c.retries}"
    )


@contextmanager
def progress_display(console: Console | None = None, *, every_s: float = 5.0) -> Iterator[ProgressFn]:
    """Yield a callback for the runner; rich bar when stderr is a TTY, plain lines when not."""
    console = console or Console(stderr=True)
    if console.is_terminal:
        bar = Progress(
            TextColumn("[bold]run"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
        )  # fmt: skip
        task = bar.add_task("run", total=None, stats="")
        with bar:

            def update(c: Counters) -> None:
                bar.update(task, total=c.total, completed=c.done, stats=_stats(c))

            yield update
        return
    last = [0.0]

    def plain(c: Counters) -> None:
        t = time.monotonic()
        if c.done == c.total or t - last[0] >= every_s:
            last[0] = t
            print(f"[examharness] {c.done}/{c.total} items  {_stats(c)}", file=sys.stderr, flush=True)

    yield plain
