"""A batch session: what ``run --batch``, ``batch export``, ``batch import`` and ``batch cancel``
do in a run folder.

Each is a loop of rounds (:mod:`examharness.batch.replay`): record every item the known results
finish, then send the requests still missing as one batch (several beyond one file's limits) —
the first stages, then the second stages their replies call for — until nothing is missing.
Online, a batch goes to the provider (:mod:`examharness.batch.engine`) and comes back in the same
session; offline, ``export`` writes it to a file and stops, and ``import`` brings the results in
and records what they finish.

Results known from earlier sessions are read from the run folder. With ``--retry-errors`` (and
always offline, where exporting a run means exporting what it still lacks) failed entries and
empty replies of earlier batches are forgotten, so their items are sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from examharness.backends.base import ChatBackend
from examharness.backends.openai_compat import OpenAIBackend
from examharness.batch.engine import BatchEngine
from examharness.batch.lines import RequestLine, read_results
from examharness.batch.replay import Passes, ReplayBackend
from examharness.batch.state import BatchFolder, BatchJob, BatchState
from examharness.cache import AsyncCache
from examharness.errors import InputError, RunAborted
from examharness.jsonfiles import write_text
from examharness.plan import RunOptions
from examharness.prompts import Renderer
from examharness.results import RunFolder
from examharness.runner import Counters, ProgressFn, RetryPolicy, WorkItem, unfinished

MAX_BATCHES = 8
"""A bound on the rounds; two stages need two (three after a killed session's open batch)."""


@contextlib.contextmanager
def offline_backend(
    model: str | None, base_url: str | None
) -> Iterator[tuple[ChatBackend, Literal["openai"]]]:
    """The backend an export or import names requests with: nothing is sent, so no key is needed."""
    if model is None:
        raise InputError.one("command line", None, "--model", "batch export needs --model NAME")
    yield OpenAIBackend(model=model, base_url=base_url, api_key=None), "openai"


async def run_batch(
    work: list[WorkItem], *, opts: RunOptions, run_dir: Path, backend: ChatBackend, cache: AsyncCache | None,
    renderer: Renderer, counters: Counters, on_progress: ProgressFn | None,
) -> None:  # fmt: skip
    """Finish every unfinished item of ``work`` through batches (see the module doc)."""
    if opts.model is None or not isinstance(backend, OpenAIBackend):
        raise InputError.one("command line", None, "--batch", "batch runs need --model NAME (the embedded "
                             "local model has no batch engine)")  # fmt: skip
    folder = BatchFolder(RunFolder(run_dir))
    state = folder.read()
    offline = opts.batch_export is not None or opts.batch_import is not None
    redo = opts.retry_errors or offline
    todo = unfinished(work, RunFolder(run_dir), resume=opts.resume is not None, retry_errors=redo)
    replay = ReplayBackend(backend, opts.seed)
    importing = _import(folder, state, opts.batch_import) if opts.batch_import is not None else None
    engine = BatchEngine(backend, folder, state, on_progress=on_progress, poll_interval=opts.poll_interval,
                         retry=RetryPolicy(max_attempts=opts.max_attempts, timeout=opts.timeout))  # fmt: skip
    for job in state.jobs:
        if job.status == "collected":
            await engine.download(job)  # only a result file that is no longer in the folder
            replay.add(folder.outcomes(job), forget_failures=redo and job is not importing)
    passes = Passes(replay, run_dir=run_dir, cache=cache, renderer=renderer, seed=opts.seed,
                    concurrency=opts.workers, counters=counters, on_progress=on_progress)  # fmt: skip
    for _ in range(MAX_BATCHES):
        todo = await passes.settle(todo)
        if not replay.pending or importing is not None:
            break
        if opts.batch_export is not None:
            _export(folder, state, list(replay.pending.values()), opts.batch_export)
            break
        jobs = state.open_jobs() or engine.prepare(list(replay.pending.values()))
        await engine.finish_all(jobs)
        for job in jobs:
            replay.add(folder.outcomes(job))
    else:
        raise RunAborted(f"requests still unanswered after {MAX_BATCHES} batches")
    state.waiting = dict(passes.waiting)
    folder.write(state)


def _export(folder: BatchFolder, state: BatchState, lines: list[RequestLine], out: Path) -> None:
    job = BatchJob(name=state.next_name(), requests=len(lines), status="exported")
    data = folder.write_input(job, lines)
    write_text(out, data.decode())
    state.jobs.append(job)
    folder.write(state)


def _import(folder: BatchFolder, state: BatchState, path: Path) -> BatchJob:
    """Check a results file against the newest exported job and store it as that job's output."""
    job = state.exported_job()
    if job is None:
        raise InputError.one(path, None, "run", f"no exported requests wait for results in {folder.path}: "
                             f"run `examharness batch export {folder.path} --out FILE` first")  # fmt: skip
    read_results(path, {r.custom_id for r in folder.requests(job)})
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError.one(path, None, "(file)", f"cannot read: {err.strerror or err}") from None
    folder.write_result(job.output_file, data)
    job.status, job.batch_status = "collected", "completed"
    folder.write(state)
    return job


def cancel_batches(run_dir: Path, *, timeout: float | None = None) -> list[tuple[str, str]]:
    """Cancel the run's submitted batches; ``(batch id, status)`` for each. Nothing in the run
    folder changes, so it may be called while another process polls them (that process, or the
    next ``run --resume``, records what the batches did not answer as ``error`` items)."""
    from examharness.backends.select import open_backend

    folder = RunFolder.open(run_dir)
    cfg = folder.read_config()
    state = BatchFolder(folder).read()
    jobs = [j for j in state.jobs if j.status == "submitted"]
    if not jobs:
        return []
    with open_backend(cfg.model, cfg.base_url, cfg.api_key_env, timeout) as (backend, _):
        assert isinstance(backend, OpenAIBackend)
        engine = BatchEngine(backend, BatchFolder(folder), state, retry=RetryPolicy(timeout=timeout),
                             poll_interval=0.0, on_progress=None)  # fmt: skip

        async def go() -> list[tuple[str, str]]:
            try:
                return [(j.batch_id or "", await engine.cancel(j)) for j in jobs]
            finally:
                await backend.aclose()

        return asyncio.run(go())
