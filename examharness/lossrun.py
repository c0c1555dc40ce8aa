"""The Python API behind ``examharness loss``: a loss run folder over the members of a family.

Members are measured one after another (each may be a different server, or the embedded model,
which is started with ``logits_all`` so it can score prompt tokens); the texts of one member go out
``concurrency`` at a time. ``resume`` continues a killed run: finished (member, text) records are
kept and only the missing ones are asked (``retry_errors`` also re-asks the ``error`` ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from examharness import __version__
from examharness.backends.logprobs import CompletionsLogprobs
from examharness.cache import RequestCache, default_cache_path
from examharness.errors import InputError
from examharness.family import FamilyMember, load_family, recorded_members
from examharness.jsonfiles import JsonlAppender, read_model, write_model
from examharness.loss import (
    LOSS_ITEMS_FILE,
    LOSS_RUN_FILE,
    LOSS_SUMMARY_FILE,
    LossRunConfig,
    LossSummary,
    measure_member,
    read_loss_records,
    summarise,
)
from examharness.losstexts import HeldOutText, load_texts, texts_hash
from examharness.records import now
from examharness.runner import Counters, ProgressFn, RetryPolicy


class LossOptions(BaseModel):
    texts: list[Path] = []
    family: Path | None = None
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    use_cache: bool = True
    cache_path: Path | None = None
    out: Path = Path("results")
    resume: Path | None = None
    retry_errors: bool = False
    timeout: float | None = None
    max_attempts: int = 6
    seed: int = 0
    bos_text: str = ""
    """Text prepended to every text sent (see ``--bos-text``); the embedded model uses its own."""


def _members(opts: LossOptions) -> tuple[str | None, list[FamilyMember]]:
    if opts.family is not None:
        if opts.model is not None or opts.base_url is not None:
            raise InputError.one("command line", None, "--family", "give --family or --model, not both")
        family = load_family(opts.family)
        return family.name, recorded_members(family)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", opts.model or "local").strip("-") or "model"
    member = FamilyMember(
        name=name, model=opts.model, base_url=opts.base_url, api_key_env=opts.api_key_env, compute=None
    )
    return None, [member]


@contextlib.contextmanager
def logprob_backend(
    member: FamilyMember, timeout: float | None, bos_text: str = ""
) -> Iterator[CompletionsLogprobs]:
    """The member's completions endpoint, or the embedded model started with ``logits_all``."""
    if member.model is None:
        from examharness.backends.local import LOCAL_BOS_TEXT, local_server

        with local_server(logits_all=True) as server:
            backend = CompletionsLogprobs(
                model=server.model,
                base_url=server.base_url,
                api_key=None,
                timeout=timeout or 600,
                max_concurrency=1,
                bos_text=LOCAL_BOS_TEXT,
            )
            backend.base_url = None  # a fresh port each run: keep it out of cache keys
            yield backend
        return
    base_url = member.base_url or os.environ.get("OPENAI_BASE_URL")
    api_key = os.environ.get(member.api_key_env)
    if api_key is None and base_url is None:
        raise InputError.one(
            f"member {member.name}",
            None,
            "api_key_env",
            f"environment variable {member.api_key_env} is not set",
        )
    yield CompletionsLogprobs(
        model=member.model, base_url=base_url, api_key=api_key, timeout=timeout or 120, bos_text=bos_text
    )


def _prepare(opts: LossOptions) -> tuple[Path, LossRunConfig, bool]:
    if opts.resume is not None:
        cfg_path = opts.resume / LOSS_RUN_FILE
        if not cfg_path.exists():
            raise InputError.one(opts.resume, None, "--resume", f"not a loss run folder (no {LOSS_RUN_FILE})")
        cfg = read_model(cfg_path, LossRunConfig)
        return opts.resume, cfg, True
    family, members = _members(opts)
    texts = load_texts(opts.texts)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-loss-{family or members[0].name}-{secrets.token_hex(3)}"
    cfg = LossRunConfig(
        run_id=run_id,
        examharness_version=__version__,
        family=family,
        members=members,
        text_paths=[str(p.resolve()) for p in opts.texts],
        texts_hash=texts_hash(texts),
        n_texts=len(texts),
        concurrency=opts.concurrency,
        bos_text=opts.bos_text,
    )
    return opts.out / run_id, cfg, False


def measure_loss(opts: LossOptions, on_progress: ProgressFn | None = None) -> tuple[Path, LossSummary]:
    """Run (or resume) a loss measurement; returns the run folder and its summary."""
    run_dir, cfg, resumed = _prepare(opts)
    opts = opts.model_copy(update={"bos_text": cfg.bos_text})
    texts = load_texts([Path(p) for p in cfg.text_paths])
    if texts_hash(texts) != cfg.texts_hash:
        raise InputError.one(run_dir, None, "--resume", "the texts changed since the run started")
    done = {(r.member, r.text_id): r.status for r in read_loss_records(run_dir)} if resumed else {}
    run_dir.mkdir(parents=True, exist_ok=resumed)
    write_model(run_dir / LOSS_RUN_FILE, cfg)
    todo = {
        m.name: [
            t
            for t in texts
            if (s := done.get((m.name, t.id))) is None or (opts.retry_errors and s == "error")
        ]
        for m in cfg.members
    }
    counters = Counters(total=sum(len(v) for v in todo.values()))
    cache = RequestCache(opts.cache_path or default_cache_path()) if opts.use_cache else None
    out = JsonlAppender(run_dir / LOSS_ITEMS_FILE)
    try:
        for member in cfg.members:
            if todo[member.name]:
                _measure(member, todo[member.name], opts, cache, out, counters, on_progress)
    finally:
        out.close()
        if cache is not None:
            cache.close()
    summary = summarise(cfg, read_loss_records(run_dir))
    write_model(run_dir / LOSS_SUMMARY_FILE, summary)
    totals = {
        "texts": len(texts),
        "requests_sent": counters.requests,
        "cache_hits": counters.cached,
        "error": sum(m.error for m in summary.members),
    }
    write_model(run_dir / LOSS_RUN_FILE, cfg.model_copy(update={"finished_at": now(), "summary": totals}))
    return run_dir, summary


def _measure(
    member: FamilyMember,
    texts: list[HeldOutText],
    opts: LossOptions,
    cache: RequestCache | None,
    out: JsonlAppender,
    counters: Counters,
    on_progress: ProgressFn | None,
) -> None:
    with logprob_backend(member, opts.timeout, opts.bos_text) as backend:

        async def go() -> None:
            try:
                await measure_member(
                    member,
                    backend,
                    texts,
                    cache=cache,
                    out=out,
                    concurrency=opts.concurrency,
                    retry=RetryPolicy(max_attempts=opts.max_attempts),
                    counters=counters,
                    seed=opts.seed,
                    on_progress=on_progress,
                )
            finally:
                await backend.aclose()

        asyncio.run(go())
