"""What a batch run keeps in its run folder, so that a killed session never pays twice.

  ``batch.json``                   :class:`BatchState` — every batch of the run and how far it got.
  ``batches/<job>.input.jsonl``    the requests as sent (or exported).
  ``batches/<job>.output.jsonl``   the provider's output file (or the imported results file).
  ``batches/<job>.errors.jsonl``   the provider's error file, when it has one.

A job's ``status`` only moves forward: ``prepared`` (input written) → ``uploaded`` (file id
stored) → ``submitted`` (batch id stored, before the first poll) → ``collected`` (result files in
the folder); an offline job goes ``exported`` → ``collected``. ``batch.json`` is rewritten
atomically at each step, so ``run --resume`` polls a submitted batch instead of sending it again
and reads a collected batch's files instead of downloading them again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from examharness.backends.base import BackendError
from examharness.batch.lines import Outcome, RequestLine, read_requests, read_results
from examharness.jsonfiles import read_model, write_model, write_text
from examharness.records import SCHEMA_VERSION, Model, SchemaVersion, now
from examharness.results import RunFolder

BATCH_FILE = "batch.json"
BATCH_DIR = "batches"
JobStatus = Literal["prepared", "uploaded", "submitted", "exported", "collected"]
OPEN = frozenset({"prepared", "uploaded", "submitted"})
"""Statuses of an online job that a session must finish before it sends anything new."""
FAILED = frozenset({"expired", "failed", "cancelled"})
"""Final batch statuses whose unanswered requests become ``error`` items."""


class BatchJob(Model):
    name: str
    """``b001``, ``b002``, …: the stem of the job's files under ``batches/``."""
    requests: int
    status: JobStatus
    created_at: str = Field(default_factory=now)
    input_file_id: str | None = None
    batch_id: str | None = None
    batch_status: str | None = None
    """The provider's last word: ``completed``, ``expired``, ``failed``, ``cancelled``, …"""
    output_file_id: str | None = None
    error_file_id: str | None = None
    failure: str | None = None
    """Why the provider failed the batch (its ``errors``), when it says."""

    @property
    def input_file(self) -> str:
        return f"{BATCH_DIR}/{self.name}.input.jsonl"

    @property
    def output_file(self) -> str:
        return f"{BATCH_DIR}/{self.name}.output.jsonl"

    @property
    def error_file(self) -> str:
        return f"{BATCH_DIR}/{self.name}.errors.jsonl"


class BatchState(Model):
    """``batch.json``: the run's batches, oldest first."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    jobs: list[BatchJob] = Field(default_factory=list)
    waiting: dict[str, int] = Field(default_factory=dict)
    """After the last pass: items still waiting for a request, by the stage they wait for."""

    def open_jobs(self) -> list[BatchJob]:
        """The online batches a killed session left unfinished."""
        return [j for j in self.jobs if j.status in OPEN]

    def exported_job(self) -> BatchJob | None:
        """The newest exported job still waiting for its results."""
        return next((j for j in reversed(self.jobs) if j.status == "exported"), None)

    def next_name(self) -> str:
        return f"b{len(self.jobs) + 1:03d}"


class BatchFolder:
    """The batch files of one run folder."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self.path = folder.path

    def read(self) -> BatchState:
        path = self.folder.file(BATCH_FILE)
        return read_model(path, BatchState) if path.exists() else BatchState()

    def write(self, state: BatchState) -> None:
        write_model(self.folder.file(BATCH_FILE), state)

    def file(self, name: str) -> Path:
        return self.folder.file(name)

    def write_input(self, job: BatchJob, lines: list[RequestLine]) -> bytes:
        """Write the job's input file; returns its bytes (what is uploaded or exported)."""
        (self.path / BATCH_DIR).mkdir(exist_ok=True)
        text = "".join(line.model_dump_json() + "\n" for line in lines)
        write_text(self.file(job.input_file), text)
        return text.encode()

    def write_result(self, name: str, data: bytes) -> None:
        (self.path / BATCH_DIR).mkdir(exist_ok=True)
        write_text(self.file(name), data.decode("utf-8", errors="replace"))

    def requests(self, job: BatchJob) -> list[RequestLine]:
        return read_requests(self.file(job.input_file))

    def outcomes(self, job: BatchJob) -> dict[str, Outcome]:
        """A collected job's results by ``custom_id``; a request without a result is an error."""
        expected = {r.custom_id for r in self.requests(job)}
        out: dict[str, Outcome] = {}
        for name in (job.output_file, job.error_file):
            if self.file(name).exists():
                out.update(read_results(self.file(name), expected, strict=job.batch_id is None))
        where = f"batch {job.batch_id}" if job.batch_id else f"the results imported for {job.name}"
        if job.batch_status in FAILED:
            what = f"{where} {job.batch_status} before this request was answered"
            what += f" ({job.failure})" if job.failure else ""
            missing: Outcome = BackendError(f"batch_{job.batch_status}", what, retryable=False)
        else:
            missing = BackendError("batch_missing", f"no result for this request in {where}", retryable=False)
        return {cid: out.get(cid, missing) for cid in expected}
