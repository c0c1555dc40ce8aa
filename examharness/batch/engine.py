"""One batch on a provider's batch engine: upload, create, poll, download — through the openai SDK.

Each step stores what it learned in ``batch.json`` before the next one starts (the file id after
the upload, the batch id after the create, before the first poll), so a killed session resumes a
job where it stopped and never submits it twice. Every call goes through the runner's one retry
loop: a permanent refusal (a wrong key) aborts the run with one line, and so does a call whose
attempts run out — the job is stored, and ``run --resume`` picks it up.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import openai
from openai.types import BatchRequestCounts

from examharness.backends.openai_compat import OpenAIBackend, classify
from examharness.batch.lines import CHAT_URL, RequestLine
from examharness.batch.state import BatchFolder, BatchJob, BatchState
from examharness.errors import RunAborted
from examharness.runner import Counters, ProgressFn, RequestFailed, RetryPolicy, with_retries

T = TypeVar("T")
DONE = frozenset({"completed", "expired", "failed", "cancelled"})
"""Final batch statuses: nothing more will come."""
MAX_REQUESTS = 50_000
MAX_BYTES = 190 * 1024 * 1024
"""One batch file's limits (the OpenAI Batch API takes at most 50,000 requests and 200 MB)."""


class BatchEngine:
    def __init__(
        self, backend: OpenAIBackend, folder: BatchFolder, state: BatchState, *, retry: RetryPolicy,
        poll_interval: float, on_progress: ProgressFn | None,
    ) -> None:  # fmt: skip
        self._backend, self._folder, self._state = backend, folder, state
        self._retry, self._interval, self._on_progress = retry, poll_interval, on_progress
        self.counters = Counters()
        """API calls (uploads, polls, downloads) and the batch's progress, for the display."""
        self._rng = random.Random(0)
        self._progress: dict[str, BatchRequestCounts] = {}

    def prepare(self, lines: list[RequestLine]) -> list[BatchJob]:
        """New jobs with their input files written and stored, nothing sent yet: one, or more
        when the requests exceed a batch's limits (:data:`MAX_REQUESTS`, :data:`MAX_BYTES`)."""
        jobs = []
        for chunk in _chunks(lines):
            job = BatchJob(name=self._state.next_name(), requests=len(chunk), status="prepared")
            self._folder.write_input(job, chunk)
            self._state.jobs.append(job)
            jobs.append(job)
        self._save()
        return jobs

    async def finish_all(self, jobs: list[BatchJob]) -> None:
        """Take every job of one round to ``collected``, all at once."""
        self._progress.clear()
        await asyncio.gather(*(self.finish(job) for job in jobs))

    async def finish(self, job: BatchJob) -> None:
        """Take ``job`` from wherever it stopped to ``collected``."""
        client = self._backend.client
        if job.status == "prepared":
            data = self._folder.file(job.input_file).read_bytes()
            name = f"{self._folder.path.name}-{job.name}.jsonl"
            uploaded = await self._call(lambda: client.files.create(file=(name, data), purpose="batch"))
            job.input_file_id, job.status = uploaded.id, "uploaded"
            self._save()
        if job.status == "uploaded":
            assert job.input_file_id is not None
            file_id, meta = job.input_file_id, {"examharness_run": self._folder.path.name, "job": job.name}
            created = await self._call(
                lambda: client.batches.create(
                    input_file_id=file_id, endpoint=CHAT_URL, completion_window="24h", metadata=meta
                )
            )
            job.batch_id, job.batch_status, job.status = created.id, created.status, "submitted"
            self._save()
        if job.status == "submitted":
            await self._poll(job)
        await self.download(job)

    async def _poll(self, job: BatchJob) -> None:
        """Retrieve until the batch is done: after 0.5 s, then twice as long each time up to the
        poll interval (a small batch is collected at once, a big one not polled needlessly)."""
        assert job.batch_id is not None
        batch_id, client = job.batch_id, self._backend.client
        for n in itertools.count():
            batch = await self._call(lambda: client.batches.retrieve(batch_id))
            if batch.request_counts is not None:
                self._progress[job.name] = batch.request_counts
                self._show()
            if batch.status in DONE:
                break
            await asyncio.sleep(min(self._interval, 0.5 * 2**n))
        job.batch_status, job.output_file_id, job.error_file_id = (
            batch.status,
            batch.output_file_id,
            batch.error_file_id,
        )
        errors = batch.errors.data if batch.errors is not None else None
        if errors:
            job.failure = "; ".join(f"{e.code}: {e.message}" for e in errors[:3])[:300]
        self._save()

    async def cancel(self, job: BatchJob) -> str:
        """Ask the provider to cancel a submitted batch; returns its status. The job stays
        ``submitted``: the session polling it (or the next ``run --resume``) sees it end
        ``cancelled`` and records its unanswered requests as ``error`` items."""
        assert job.batch_id is not None
        batch_id, client = job.batch_id, self._backend.client
        return (await self._call(lambda: client.batches.cancel(batch_id))).status

    async def download(self, job: BatchJob) -> None:
        """Fetch the result files not already in the run folder; then the job is collected."""
        fetched = False
        for file_id, name in ((job.output_file_id, job.output_file), (job.error_file_id, job.error_file)):
            if file_id is not None and not self._folder.file(name).exists():
                self._folder.write_result(name, await self._content(file_id))
                fetched = True
        if fetched or job.status != "collected":
            job.status = "collected"
            self._save()

    async def _content(self, file_id: str) -> bytes:
        client = self._backend.client
        return (await self._call(lambda: client.files.content(file_id))).content

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        """One API call with the run's retries; an SDK error comes out classified and redacted."""

        async def send() -> T:
            try:
                return await make()
            except openai.OpenAIError as err:
                failure = classify(err)
                self._backend.redact.exception(failure)
                raise failure from None

        try:
            result, _, _ = await with_retries(send, self._retry, self.counters, self._rng)
        except RequestFailed as err:
            raise RunAborted(f"batch API: {err}") from None
        return result

    def _show(self) -> None:
        """The batches' request counts, summed, on the run's progress display."""
        counts = self._progress.values()
        self.counters.total = sum(c.total or 0 for c in counts)
        self.counters.errors = sum(c.failed or 0 for c in counts)
        self.counters.done = sum(c.completed or 0 for c in counts) + self.counters.errors
        if self._on_progress is not None:
            self._on_progress(self.counters)

    def _save(self) -> None:
        self._folder.write(self._state)


def _chunks(lines: list[RequestLine]) -> list[list[RequestLine]]:
    """``lines`` in order, cut into files within :data:`MAX_REQUESTS` and :data:`MAX_BYTES`."""
    chunks: list[list[RequestLine]] = [[]]
    size = 0
    for line in lines:
        n = len(line.model_dump_json().encode()) + 1
        if chunks[-1] and (len(chunks[-1]) >= MAX_REQUESTS or size + n > MAX_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += n
    return chunks
