"""Run a code item's sampled programs off the event loop: one worker thread per core.

The runner hands a finished item here and moves on to its next request; each program waits in
a worker thread for its sandboxed process (:func:`~examharness.code.sandbox.run_program`), so the
event loop never blocks on execution. Each worker thread owns a sandbox slot (its own uid), so
concurrent programs never share a process budget.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from examharness.code.extract import extract_code
from examharness.code.models import CodeSample
from examharness.code.sandbox import ExecResult, Isolation, Limits, run_program
from examharness.exam import CodeItem


def item_limits(item: CodeItem) -> Limits:
    """The sandbox limits for one item: its CPU and memory, a wall clock of twice the CPU + 5 s."""
    cpu = max(1, round(item.time_limit_s))
    return Limits(cpu_s=cpu, wall_s=2 * item.time_limit_s + 5, memory_mb=item.memory_mb)


class Executor:
    """Bounded concurrent execution: at most ``workers`` programs at once (default: the cores)."""

    def __init__(self, workers: int | None = None, isolation: Isolation | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.isolation = isolation
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sandbox")
        self._slots: asyncio.Queue[int] | None = None

    async def run(self, program: str, tests: str, entry_point: str, limits: Limits) -> ExecResult:
        if self._slots is None:
            self._slots = asyncio.Queue()
            for slot in range(self.workers):
                self._slots.put_nowait(slot)
        slot = await self._slots.get()
        try:
            call = partial(run_program, program, tests, entry_point, limits=limits, slot=slot,
                           isolation=self.isolation)  # fmt: skip
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        finally:
            self._slots.put_nowait(slot)

    async def samples(self, item: CodeItem, replies: list[str]) -> list[CodeSample]:
        """Extract and run every sample of one item (samples run concurrently, within the bound)."""

        async def one(i: int, reply: str) -> CodeSample:
            found = extract_code(reply, preamble=item.preamble, entry_point=item.entry_point)
            if found.program is None or found.status != "answered":
                return CodeSample(sample=i, status=found.status, how=found.how)
            result = await self.run(found.program, item.tests, item.entry_point, item_limits(item))
            return CodeSample(sample=i, status="answered", how=found.how, result=result)

        return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(replies))))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
