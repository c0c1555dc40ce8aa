"""One batch on a provider's batch engine: upload, create, poll, download — through the openai SDK.

Each step stores what it learned in ``batch.json`` before the next one starts (the file id after
the upload, the batch id after the create, before the first poll), so a killed session resumes a
job where it stopped and never submits it twice. Every call goes through the runner's one retry
loop: a permanent refusal (a wrong key) aborts the run with one line, and so does a call whose
attempts run out — the job is stored, and ``run --resume`` picks it up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import openai

from examharness.backends.openai_compat import OpenAIBackend, classify
from examharness.batch.lines import CHAT_URL, RequestLine
from examharness.batch.state import BatchFolder, BatchJob, BatchState
from examharness.errors import RunAborted
from examharness.runner import Counters, ProgressFn, RequestFailed, RetryPolicy, with_retries

T = TypeVar("T")
DONE = frozenset({"completed", "expired", "failed", "cancelled"})
"""Final batch statuses: nothing more will come."""


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

    def prepare(self, lines: list[RequestLine]) -> BatchJob:
        """A new job with its input file written and stored, nothing sent yet."""
        job = BatchJob(name=self._state.next_name(), requests=len(lines), status="prepared")
        self._folder.write_input(job, lines)
        self._state.jobs.append(job)
        self._save()
        return job

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
        assert job.batch_id is not None
        batch_id, client = job.batch_id, self._backend.client
        while True:
            batch = await self._call(lambda: client.batches.retrieve(batch_id))
            counts = batch.request_counts
            if counts is not None:
                self.counters.total, self.counters.errors = counts.total, counts.failed
                self.counters.done = counts.completed + counts.failed
                if self._on_progress is not None:
                    self._on_progress(self.counters)
            if batch.status in DONE:
                break
            await asyncio.sleep(self._interval)
        job.batch_status, job.output_file_id, job.error_file_id = (
            batch.status,
            batch.output_file_id,
            batch.error_file_id,
        )
        self._save()

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

    def _save(self) -> None:
        self._folder.write(self._state)
