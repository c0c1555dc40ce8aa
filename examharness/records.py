"""The run folder's files: what was asked, what came back, how it was graded.

``results/<run-id>/``
  ``run.json``     :class:`RunConfig` — written once at start, updated at the end.
  ``items.jsonl``  :class:`ItemRecord` — one line appended and flushed per finished item (a
                   ``kill -9`` cannot lose a flushed line; the file is fsynced when the run ends).
  ``grades.jsonl`` :class:`GradedItem` — written by ``score``; human grades in ``human_grades.jsonl``.
  ``scores.json``  :class:`RunScores` — written by ``score``; what reports and charts read.

Each model carries ``schema_version`` first; readers refuse versions they do not know.
A killed run's last line may be cut short: :func:`read_item_records` ignores a torn final line,
so resuming re-asks at most the items in flight.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
ITEMS_FILE = "items.jsonl"
GRADES_FILE = "grades.jsonl"
HUMAN_GRADES_FILE = "human_grades.jsonl"
SCORES_FILE = "scores.json"
CONTAMINATION_FILE = "contamination.json"

M = TypeVar("M", bound=BaseModel)

ItemStatus = Literal["ok", "empty", "error"]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StageParams(Model):
    """Generation parameters of one request: part of the cache key."""

    temperature: float
    max_tokens: int
    seed: int | None = None
    stop: list[str] | None = None


class SectionSampling(Model):
    """The resolved sampling plan for one section (defaults < exam < CLI)."""

    mode: Literal["letter_if_needed", "two_stage", "single"]
    temperature: float
    max_tokens: int
    answer_temperature: float = 0.0
    answer_max_tokens: int = 5


class ExamRef(Model):
    id: str
    title: str
    path: str
    content_hash: str
    template_hashes: dict[str, str]
    n_items: int
    scale: str | None = None
    sampling: dict[str, SectionSampling] = {}


class RunConfig(Model):
    """Everything needed to reproduce or compare a run. The API key is never stored."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    created_at: str = Field(default_factory=now)
    finished_at: str | None = None
    examharness_version: str
    packages: dict[str, str] = {}
    model: str
    base_url: str | None
    backend: Literal["openai", "local"]
    seed: int
    vision: bool
    concurrency: int
    limit: int | None = None
    api_key_env: str = "OPENAI_API_KEY"
    """The name of the variable that held the key (never the key), so ``--resume`` can find it."""
    prompts_dir: str | None = None
    exams: list[ExamRef]
    summary: dict[str, Any] = {}


class Usage(Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class StageRecord(Model):
    """One request and its reply. ``messages`` is exactly what was sent."""

    stage: Literal["explanation", "answer", "response"]
    messages: list[dict[str, Any]]
    params: StageParams
    reply: str | None = None
    finish_reason: str | None = None
    usage: Usage = Usage()
    latency_s: float = 0.0
    cached: bool = False
    attempts: int = 1


class ItemRecord(Model):
    schema_version: int = SCHEMA_VERSION
    exam_id: str
    section_id: str
    item_id: str
    item_type: str
    status: ItemStatus
    stages: list[StageRecord] = []
    error: str | None = None
    finished_at: str = Field(default_factory=now)

    @property
    def final_reply(self) -> str | None:
        return self.stages[-1].reply if self.stages else None

    @property
    def key(self) -> tuple[str, str]:
        return (self.exam_id, self.item_id)


GradeStatus = Literal[
    "correct",
    "incorrect",
    "unparseable",
    "empty",
    "refused",
    "error",
    "graded",
    "ungraded",
    "grading_error",
]


class GradedItem(Model):
    schema_version: int = SCHEMA_VERSION
    exam_id: str
    section_id: str
    item_id: str
    item_type: str
    status: GradeStatus
    points: float | None = None
    max_points: float
    answer: str | None = None
    how: str = ""
    rationale: str | None = None
    source: str = "auto"
    reads: list[float | None] = []
    adjudicated: bool = False


def write_json(path: Path, model: BaseModel) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of either."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(model.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _drop_torn_tail(path: Path) -> None:
    """Cut a killed writer's unfinished last line, so the next record starts on a line of its own."""
    if not path.exists():
        return
    with path.open("rb+") as f:
        size = end = f.seek(0, os.SEEK_END)
        while end > 0:
            start = max(end - 65536, 0)
            f.seek(start)
            cut = f.read(end - start).rfind(b"\n")
            if cut >= 0:
                if start + cut + 1 < size:
                    f.truncate(start + cut + 1)
                return
            end = start
        f.truncate(0)


class JsonlAppender:
    """Appends one JSON line per record and hands it to the OS before returning.

    Flushing (not fsyncing) each line keeps the runner fast; it survives the process being killed.
    ``close`` fsyncs, so a finished run also survives power loss.
    """

    def __init__(self, path: Path) -> None:
        _drop_torn_tail(path)
        self._f = path.open("a", encoding="utf-8")

    def append(self, model: BaseModel) -> None:
        self._f.write(model.model_dump_json() + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


def read_jsonl(path: Path, model: type[M]) -> list[M]:
    """Read records, skipping a torn last line left by a killed process."""
    if not path.exists():
        return []
    out: list[M] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(model.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValueError):
            if n == len(lines):
                break
            raise
    return out


def read_item_records(run_dir: Path) -> list[ItemRecord]:
    """The latest record per item (a retried item's newer record replaces the older)."""
    latest: dict[tuple[str, str], ItemRecord] = {}
    for rec in read_jsonl(run_dir / ITEMS_FILE, ItemRecord):
        latest[rec.key] = rec
    return list(latest.values())


def read_run_config(run_dir: Path) -> RunConfig:
    return RunConfig.model_validate_json((run_dir / RUN_FILE).read_text(encoding="utf-8"))
