"""Planning a run: its options, the sampling of each section, the work items, a resumed run's options.

Configuration is merged here and only here: the report's defaults < the exam's section
``sampling`` < options the user gave (each applied only when not ``None``). A resumed run keeps
its own model, endpoint(s), seed, vision, limit, shard and sampling (a different ``--shard`` is
refused); of the settings a session may change (concurrency, the key's variable, the prompts
folder) it takes those the user gave.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from examharness.errors import InputError
from examharness.exam import LoadedExam, Section, find_exam_files, load_exam
from examharness.prompts import template_dirs, template_hash
from examharness.records import Endpoint, ExamRef, RunConfig, SectionSampling
from examharness.runner import WorkItem
from examharness.shards import Shard

DEFAULT_CONCURRENCY = 8
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


class RunOptions(BaseModel):
    """What to run and how. ``None`` means "not given": the default for a new run, the run's own
    setting for a resumed one (:func:`resume_options`)."""

    paths: list[Path] = []
    model: str | None = None
    base_url: str | None = None
    endpoints: list[Endpoint] = []
    """Several ``--base-url``: the endpoint pool (``base_url`` is then None)."""
    api_key_env: str | None = None
    concurrency: int | None = None
    limit: int | None = None
    seed: int = 0
    vision: bool = True
    use_cache: bool = True
    cache_path: Path | None = None
    out: Path = Path("results")
    resume: Path | None = None
    retry_errors: bool = False
    mc_mode: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    max_attempts: int = 6
    prompts_dir: Path | None = None
    samples: int | None = None
    """Code sections: programs sampled per item (default 1)."""
    run_id: str | None = None
    """The run folder's name under ``out``; default a timestamp, the model and a random suffix."""
    edition: int | None = None
    """``--edition``: the scale edition (test or table year) to score with; kept in ``run.json``."""
    shard: Shard | None = None
    """``--shard I/N``: ask only this slice of the items; kept in ``run.json``."""
    batch: bool = False
    """``--batch``: send the requests as batches on the provider's batch engine; kept in ``run.json``."""
    poll_interval: float = 30.0
    """Seconds between polls of a submitted batch."""
    batch_export: Path | None = None
    """``batch export``: write the missing requests to this batch file instead of sending them."""
    batch_import: Path | None = None
    """``batch import``: record the results in this batch output file."""

    @property
    def workers(self) -> int:
        return DEFAULT_CONCURRENCY if self.concurrency is None else self.concurrency

    @property
    def batched(self) -> bool:
        """Whether the session's requests go as batches (a ``--batch`` run, an export or import)."""
        return self.batch or self.batch_export is not None or self.batch_import is not None

    @property
    def key_env(self) -> str:
        return DEFAULT_KEY_ENV if self.api_key_env is None else self.api_key_env


def resolve_sampling(section: Section, opts: RunOptions) -> SectionSampling:
    """The report's defaults (A.2/A.3), then the exam's section settings, then the CLI."""
    plan: dict[str, object]
    if section.kind == "multiple_choice":
        plan = {"mode": "letter_if_needed", "temperature": 0.3, "max_tokens": section.max_tokens or 512}
    elif section.kind == "code":  # pass@1 at temperature 0 unless samples are asked for
        plan = {"mode": "single", "temperature": 0.0, "max_tokens": section.max_tokens or 1024, "samples": 1}
    else:
        plan = {"mode": "single", "temperature": 0.6, "max_tokens": section.max_tokens or 1024}
    if section.sampling is not None:
        plan.update(section.sampling.model_dump(exclude_none=True))
    cli = {"mode": opts.mc_mode if section.kind == "multiple_choice" else None,
           "temperature": opts.temperature, "max_tokens": opts.max_tokens,
           "samples": opts.samples if section.kind == "code" else None}  # fmt: skip
    plan.update({k: v for k, v in cli.items() if v is not None})
    return SectionSampling.model_validate(plan)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:40] or "model"


def resume_options(opts: RunOptions, cfg: RunConfig) -> RunOptions:
    """The options of a resumed session: the run's own settings, with the session settings the
    user gave (not ``None``) taking the place of the run's."""
    stored = {"concurrency": cfg.concurrency, "api_key_env": cfg.api_key_env,
              "prompts_dir": Path(cfg.prompts_dir) if cfg.prompts_dir else None}  # fmt: skip
    given = {k: v for k, v in opts.model_dump(include=set(stored)).items() if v is not None}
    if opts.shard is not None and opts.shard != cfg.shard:
        run_shard = f"shard {cfg.shard}" if cfg.shard else "no shard"
        raise InputError.one(opts.resume or cfg.run_id, None, "--shard",
                             f"the run was started with {run_shard}; resume it without --shard")  # fmt: skip
    return opts.model_copy(update={
        "model": None if cfg.backend == "local" else cfg.model,
        "base_url": None if cfg.endpoints else cfg.base_url, "endpoints": cfg.endpoints,
        "seed": cfg.seed, "vision": cfg.vision, "limit": cfg.limit, "shard": cfg.shard,
        "batch": cfg.batch or opts.batch, **stored, **given,
    })  # fmt: skip


def new_run_dir(opts: RunOptions) -> Path:
    """``<out>/<UTC time>-<model>-<random>``: sorts by time, says which model, never collides."""
    if opts.run_id is not None:
        return opts.out / opts.run_id
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", opts.model or "local").strip("-")[:40] or "model"
    return opts.out / f"{stamp}-{slug}-{secrets.token_hex(3)}"


def plan_work(
    exams: list[LoadedExam], opts: RunOptions, recorded: list[ExamRef] | None = None
) -> tuple[list[WorkItem], list[ExamRef]]:
    """Work items and their exam records; a resumed run keeps the sampling it started with.
    With ``opts.shard`` only that shard's items are work; ``n_items`` still counts the planned
    (limited) items of the whole run, so shards agree with each other and with the merged run."""
    before = {ref.id: ref.sampling for ref in recorded or []}
    work: list[WorkItem] = []
    refs: list[ExamRef] = []
    for loaded in exams:
        exam = loaded.exam
        dirs = template_dirs(loaded.path, opts.prompts_dir)
        sampling = before.get(exam.id) or {s.id: resolve_sampling(s, opts) for s in exam.sections}
        items = [(s, i) for s in exam.sections for i in range(len(s.items))]
        items = items[: opts.limit] if opts.limit is not None else items
        shard = opts.shard
        work.extend(WorkItem(loaded, s, i, sampling[s.id]) for s, i in items
                    if shard is None or shard.holds(exam.id, s.id, s.items[i].id))  # fmt: skip
        refs.append(ExamRef(
            id=exam.id, title=exam.title, path=str(loaded.path.resolve()),
            content_hash=loaded.content_hash, n_items=len(items), scale=exam.scoring.scale_name,
            template_hashes={s.template_name: template_hash(s.template_name, dirs) for s in exam.sections},
            sampling=sampling,
        ))  # fmt: skip
    return work, refs


def load_exams(paths: list[Path], *, parse_cache: Path | None = None) -> list[LoadedExam]:
    files = find_exam_files(paths)
    if not files:
        raise InputError.one(" ".join(map(str, paths)) or "(none)", None, "paths", "no exam files found")
    problems = []
    exams = []
    for f in files:
        try:
            exams.append(load_exam(f, parse_cache=parse_cache))
        except InputError as err:
            problems.extend(err.problems)
    if problems:
        raise InputError(problems)
    ids = [e.exam.id for e in exams]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup:
        raise InputError.one(dup, None, "id", "two exam files share this exam id")
    return exams


