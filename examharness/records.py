"""The run folder's file formats: what was asked, what came back, how it was graded and scored.

Each model here *is* the format documentation of one file of ``results/<run-id>/``; reading and
writing them (atomically, with FILE:LINE errors) is :mod:`examharness.results`.

  ``run.json``            :class:`RunConfig` — written once at start, updated at the end.
  ``items.jsonl``         :class:`ItemRecord` — one line appended and flushed per finished item.
  ``grades.jsonl``        :class:`GradedItem` — written by ``score``.
  ``human_grades.jsonl``  :class:`GradedItem` — appended by ``grade import``; applied on top.
  ``grades.stamp.json``   :class:`GradesStamp` — written by ``score``: what the grades were made from.
  ``scores.json``         :class:`RunScores` — written by ``score``; what every view reads.

Every file carries ``schema_version`` (:data:`SchemaVersion`); a version this code does not know
is refused with a clear message, never guessed at.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from examharness.backends.base import Message, StageParams, Usage
from examharness.code.models import CodeSample, PassCount
from examharness.code.scores import SectionPassAtK
from examharness.scoring import PercentileRange, ScoreIntervals
from examharness.shards import Shard

SCHEMA_VERSION: Literal[1] = 1
SchemaVersion = Literal[1]
RUN_FILE = "run.json"
ITEMS_FILE = "items.jsonl"
GRADES_FILE = "grades.jsonl"
HUMAN_GRADES_FILE = "human_grades.jsonl"
GRADES_STAMP_FILE = "grades.stamp.json"
SCORES_FILE = "scores.json"
CONTAMINATION_FILE = "contamination.json"

ItemStatus = Literal["ok", "empty", "error"]
GradeStatus = Literal[
    "correct", "incorrect", "unparseable", "empty", "refused", "error", "graded", "ungraded", "grading_error",
]  # fmt: skip
GradeSource = Literal["auto", "grader", "human"]

NEEDS_GRADE: frozenset[GradeStatus] = frozenset({"ungraded", "grading_error"})
"""Free-response answers without points yet: a grader model or a human still has to grade them."""
UNPAIRED: frozenset[GradeStatus] = frozenset({"error", *NEEDS_GRADE})
"""Items that say nothing about the model (no answer or no grade): left out of paired comparisons."""
HEALTH: tuple[GradeStatus, ...] = ("unparseable", "empty", "refused", "error", "ungraded", "grading_error")
"""Statuses a report flags, in the order it lists them."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SectionSampling(Model):
    """The resolved sampling plan for one section (defaults < exam < CLI)."""

    mode: Literal["letter_if_needed", "two_stage", "single"]
    temperature: float
    max_tokens: int
    answer_temperature: float = 0.0
    answer_max_tokens: int = 5
    samples: int = 1
    """Code sections: programs sampled per item (request ``i`` is sent with seed ``seed + i``)."""


class Endpoint(Model):
    """One endpoint of a pool: its base URL and, optionally, its own concurrency limit."""

    url: str
    max_concurrency: int | None = None


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

    schema_version: SchemaVersion = SCHEMA_VERSION
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
    edition: int | None = None
    """``--edition``: the scale edition (test or table year) to score with; None = newest."""
    batch: bool = False
    """``--batch`` (or ``batch export``): requests go as batches; ``batch.json`` says which."""
    exams: list[ExamRef]
    endpoints: list[Endpoint] = []
    """A run on an endpoint pool (``--base-url`` given several times): its endpoints; ``base_url``
    is then the pool's cache identity, the sorted URLs joined by spaces."""
    shard: Shard | None = None
    """``run --shard I/N``: the slice of the items this run asks (:mod:`examharness.shards`)."""
    merged_from: list[str] = []
    """``merge``: the run ids of the shard runs this run was joined from."""
    summary: dict[str, Any] = {}


class StageRecord(Model):
    """One request and its reply. ``messages`` is exactly what was sent."""

    stage: Literal["explanation", "answer", "response"]
    messages: list[Message]
    params: StageParams
    reply: str | None = None
    finish_reason: str | None = None
    usage: Usage = Usage()
    latency_s: float = 0.0
    cached: bool = False
    attempts: int = 1
    _request_key: str | None = PrivateAttr(default=None)
    """The request cache's key of this stage when the runner looked it up there, kept so that
    caching the reply does not compute it again (a hash of the whole prompt); never written."""


class ItemRecord(Model):
    schema_version: SchemaVersion = SCHEMA_VERSION
    exam_id: str
    section_id: str
    item_id: str
    item_type: str
    status: ItemStatus
    stages: list[StageRecord] = []
    error: str | None = None
    code: list[CodeSample] = []
    """Code items: per sample, the extraction rule and the sandbox's verdict."""
    finished_at: str = Field(default_factory=now)

    @property
    def final_reply(self) -> str | None:
        return self.stages[-1].reply if self.stages else None

    @property
    def key(self) -> tuple[str, str]:
        return (self.exam_id, self.item_id)


class StageName(Model):
    stage: Literal["explanation", "answer", "response"]


class ItemOutcome(Model):
    """What a run's summary needs of an item record: read without the prompts and replies, which
    are nearly all of a large run's ``items.jsonl``."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    exam_id: str
    item_id: str
    status: ItemStatus
    error: str | None = None
    stages: list[StageName] = []

    @property
    def key(self) -> tuple[str, str]:
        return (self.exam_id, self.item_id)


class GradedItem(Model):
    schema_version: SchemaVersion = SCHEMA_VERSION
    exam_id: str
    section_id: str
    item_id: str
    item_type: str
    status: GradeStatus
    points: float | None = None
    max_points: float
    answer: str | None = None
    how: str = ""
    """The rule that read the answer (``answer-is``, ``answer-stage:bare-letter``, ``rubric``, ...)."""
    tier: Literal["strict", "loose"] | None = None
    """``strict``: the reply stated its answer; ``loose``: inferred from a mark or the option text."""
    rationale: str | None = None
    source: GradeSource = "auto"
    """Who set ``points``: the automatic grader, a grader model, or a human."""
    grader: str | None = None
    """The grader model's name or the human grader's name (None for ``auto``)."""
    reads: list[float | None] = []
    adjudicated: bool = False
    passes: PassCount | None = None
    """Code items: samples run and samples that passed every test (pass@k is computed from these)."""

    @property
    def graded_by(self) -> str:
        return self.source if self.grader is None else f"{self.source}: {self.grader}"


class FileStamp(Model):
    """A file as the file system describes it: any append, rewrite or replacement changes it."""

    size: int
    mtime_ns: int
    inode: int


class GradesStamp(Model):
    """What ``grades.jsonl`` was graded from, so that ``score`` can keep grades that are still
    current instead of reading every item record and grading it again
    (:mod:`examharness.gradestamp`). Any difference means the grades are made again."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    code: str
    """Fingerprint of the source of the code that grades."""
    run: str
    """SHA-256 of ``run.json`` (the exams, items planned and shard the grades cover)."""
    exams: dict[str, str]
    """Exam id -> SHA-256 of the exam file the grades were made with (answer keys)."""
    items: FileStamp | None
    human: FileStamp | None
    grades: FileStamp | None
    """``grades.jsonl`` as ``score`` wrote it: a file changed by anything else is not trusted."""


def split_legacy_source(data: dict[str, Any]) -> None:
    """A :class:`GradedItem` line written before the typed source said ``"grader:NAME"`` or
    ``"human:NAME"``: applied by the readers of grade files to a line that does not validate as
    it is (a Python validator on the model would cost every line of a large run its time)."""
    source = data.get("source")
    if isinstance(source, str) and ":" in source:
        kind, _, name = source.partition(":")
        data["source"], data["grader"] = kind, data.get("grader") or name


class ItemCounts(Model):
    """How many items ended in each status: the health line of a report."""

    total: int = 0
    correct: int = 0
    incorrect: int = 0
    unparseable: int = 0
    empty: int = 0
    refused: int = 0
    error: int = 0
    graded: int = 0
    ungraded: int = 0
    grading_error: int = 0

    @classmethod
    def of(cls, graded: Iterable[GradedItem]) -> ItemCounts:
        by_status: Counter[str] = Counter(g.status for g in graded)
        return cls(total=sum(by_status.values()), **by_status)

    def status(self, status: GradeStatus) -> int:
        n: int = getattr(self, status)
        return n

    @property
    def needs_grade(self) -> int:
        return sum(self.status(s) for s in NEEDS_GRADE)


class Agreement(Model):
    """How often two reads of the same answer agree: exactly, or within one rubric step."""

    n: int
    exact: float
    adjacent: float


class SubScore(Model):
    raw: float
    max_raw: float
    scaled: float | None
    percentile: PercentileRange | None
    n_items: int


class ContaminationScore(Model):
    """The report's rule (Section 4): score the clean subset too and report the lower of the two."""

    contaminated: list[str]
    share: float
    clean: SubScore | None
    reported: str
    rule: str = "lower of the full and the clean-subset score (GPT-4 report, Section 4)"


class SectionScore(Model):
    id: str
    raw: float
    max_raw: float
    weight: float
    items: ItemCounts


class Reported(Model):
    """The score to state: the full score, or the clean-subset score when it is lower."""

    basis: str
    raw: float
    max_raw: float
    scaled: float | None
    percentile: PercentileRange | None


class EditionUsed(Model):
    """The scale edition a score was computed with; every report names it."""

    year: int | None
    """Test or table year; None when the scale file states no edition."""
    label: str | None
    source: str


class ExamScore(Model):
    exam: str
    title: str
    language: str = "en"
    """The exam's language (BCP-47), for per-language views of translated exams."""
    published_label: str | None = None
    """The exam's ``published_label``: the published row charts put it beside."""
    raw: float
    max_raw: float
    accuracy: float
    scale: str | None
    edition: EditionUsed | None = None
    """The scale edition used (None: no scale)."""
    scaled: float | None
    composite: float | None = None
    percentile: PercentileRange | None
    ci: ScoreIntervals
    items: ItemCounts
    sections: list[SectionScore]
    approximation: str | None = None
    provisional: list[str] = []
    contamination: ContaminationScore | None = None
    agreement: Agreement | None = None
    content_hash: str = ""
    reported: Reported | None = None
    """Filled by ``score``: what charts and comparisons show (see :class:`ContaminationScore`)."""
    pass_at_k: list[SectionPassAtK] | None = None
    """Exams with code sections: pass@k per section with bootstrap CIs (``examharness.code``)."""

    def headline(self) -> Reported:
        full = Reported(
            basis="full", raw=self.raw, max_raw=self.max_raw, scaled=self.scaled, percentile=self.percentile
        )
        return self.reported or full


class RunScores(Model):
    """``scores.json``: every exam of a run, graded and scored; reports and charts read only this."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    run_id: str
    model: str
    scored_at: str
    exams: list[ExamScore]
