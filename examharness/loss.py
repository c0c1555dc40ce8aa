"""``examharness loss``: negative log-likelihood of held-out text, per member of a model family.

For each (member, text) one completions request echoes the text with prompt log-probabilities
(:mod:`examharness.backends.logprobs`); the text's loss is −Σ log p over the tokens the server
scored (the first token has no context and no log-probability; servers that prepend a BOS token
score every real token). A member's loss is the token-weighted mean, in nats per token, and in
bits per UTF-8 byte (−Σ log₂ p / bytes), which is comparable across tokenizers.

Requests go through the runner's retry loop (:func:`examharness.runner.with_retries`) and the
request cache, so a failed request is an ``error`` record (counted, retried by ``--resume
--retry-errors``), a rerun costs nothing, and a killed run resumes from ``loss.jsonl``.

``results/<run-id>/``: ``loss_run.json`` (:class:`LossRunConfig`), ``loss.jsonl`` (one
:class:`LossRecord` per member and text, appended as each finishes) and ``loss.json``
(:class:`LossSummary`, what ``examharness scaling`` reads).
"""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path
from typing import Literal

from pydantic import Field

from examharness.backends.base import BackendError, StageParams
from examharness.backends.logprobs import UNSUPPORTED, CompletionsLogprobs, PromptLogprobs
from examharness.cache import RequestCache, request_key
from examharness.errors import InputError
from examharness.family import FamilyMember, ResolvedCompute
from examharness.jsonfiles import JsonlAppender, read_jsonl
from examharness.losstexts import HeldOutText
from examharness.records import SCHEMA_VERSION, Model, SchemaVersion, now
from examharness.runner import Counters, ProgressFn, RequestFailed, RetryPolicy, with_retries

LOSS_RUN_FILE = "loss_run.json"
LOSS_ITEMS_FILE = "loss.jsonl"
LOSS_SUMMARY_FILE = "loss.json"
PARAMS = StageParams(temperature=0.0, max_tokens=1)


class LossRecord(Model):
    """One text's loss under one member; ``error`` records carry the reason and no numbers."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    member: str
    text_id: str
    status: Literal["ok", "error"]
    n_bytes: int
    tokens: int = 0
    scored_tokens: int = 0
    """Tokens with a log-probability (all but a first token the server could not score)."""
    nll_nats: float | None = None
    """−Σ log p over the scored tokens, natural log."""
    error: str | None = None
    cached: bool = False
    attempts: int = 0
    finished_at: str = Field(default_factory=now)


class LossRunConfig(Model):
    schema_version: SchemaVersion = SCHEMA_VERSION
    run_id: str
    created_at: str = Field(default_factory=now)
    finished_at: str | None = None
    examharness_version: str
    family: str | None
    members: list[FamilyMember]
    text_paths: list[str]
    texts_hash: str
    n_texts: int
    concurrency: int
    bos_text: str = ""
    summary: dict[str, int] = Field(default_factory=dict)


class MemberLoss(Model):
    member: str
    label: str | None = None
    compute: ResolvedCompute | None
    texts: int
    ok: int
    error: int
    tokens: int
    scored_tokens: int
    n_bytes: int
    nll_nats: float
    nats_per_token: float | None
    bits_per_byte: float | None


class LossSummary(Model):
    schema_version: SchemaVersion = SCHEMA_VERSION
    run_id: str
    family: str | None
    members: list[MemberLoss]


def read_loss_records(run_dir: Path) -> list[LossRecord]:
    """The latest record per (member, text): a retried text's newer record replaces the older."""
    latest: dict[tuple[str, str], LossRecord] = {}
    lines = read_jsonl(run_dir / LOSS_ITEMS_FILE, LossRecord)
    lines.check(f"remove it and `examharness loss --resume {run_dir}` measures its text again")
    for rec in lines.records:
        latest[(rec.member, rec.text_id)] = rec
    return list(latest.values())


def summarise(cfg: LossRunConfig, records: list[LossRecord]) -> LossSummary:
    out: list[MemberLoss] = []
    for m in cfg.members:
        mine = [r for r in records if r.member == m.name]
        ok = [r for r in mine if r.status == "ok"]
        nll = sum(r.nll_nats or 0.0 for r in ok)
        scored = sum(r.scored_tokens for r in ok)
        n_bytes = sum(r.n_bytes for r in ok)
        out.append(
            MemberLoss(
                member=m.name,
                label=m.label,
                compute=m.compute,
                texts=len(mine),
                ok=len(ok),
                error=sum(r.status == "error" for r in mine),
                tokens=sum(r.tokens for r in ok),
                scored_tokens=scored,
                n_bytes=n_bytes,
                nll_nats=nll,
                nats_per_token=nll / scored if scored else None,
                bits_per_byte=nll / math.log(2) / n_bytes if n_bytes else None,
            )
        )
    return LossSummary(run_id=cfg.run_id, family=cfg.family, members=out)


def text_loss(
    member: str, text: HeldOutText, lp: PromptLogprobs, *, cached: bool, attempts: int
) -> LossRecord:
    scored = [v for v in lp.logprobs if v is not None]
    return LossRecord(
        member=member,
        text_id=text.id,
        status="ok",
        n_bytes=text.n_bytes,
        tokens=lp.prompt_tokens,
        scored_tokens=len(scored),
        nll_nats=-math.fsum(scored),
        cached=cached,
        attempts=attempts,
    )


async def measure_member(
    member: FamilyMember,
    backend: CompletionsLogprobs,
    texts: list[HeldOutText],
    *,
    cache: RequestCache | None,
    out: JsonlAppender,
    concurrency: int,
    retry: RetryPolicy,
    counters: Counters,
    seed: int = 0,
    on_progress: ProgressFn | None = None,
) -> None:
    """Measure every text under one member, appending a record as each finishes.

    Raises :class:`InputError` (one line) when the backend cannot return prompt log-probabilities.
    """
    rng = random.Random(seed)
    limit = asyncio.Semaphore(min(concurrency, backend.max_concurrency or concurrency))

    async def one(text: HeldOutText) -> None:
        async with limit:
            record = await _measure_text(member, backend, text, cache, retry, counters, rng)
        out.append(record)
        counters.done += 1
        counters.ok += record.status == "ok"
        counters.errors += record.status == "error"
        if on_progress is not None:
            on_progress(counters)

    await asyncio.gather(*(one(t) for t in texts))


async def _measure_text(
    member: FamilyMember,
    backend: CompletionsLogprobs,
    text: HeldOutText,
    cache: RequestCache | None,
    retry: RetryPolicy,
    counters: Counters,
    rng: random.Random,
) -> LossRecord:
    key = request_key(
        model=backend.model,
        base_url=backend.base_url,
        stage="prompt_logprobs",
        messages=[{"prompt": backend.bos_text + text.text}],
        params=PARAMS,
    )
    hit = cache.get_payload(key) if cache is not None else None
    if hit is not None:
        counters.cached += 1
        return text_loss(member.name, text, PromptLogprobs.model_validate_json(hit), cached=True, attempts=0)
    try:
        lp, attempts, _ = await with_retries(lambda: backend.prompt_logprobs(text.text), retry, counters, rng)
    except RequestFailed as err:
        cause = err.__cause__
        if isinstance(cause, BackendError) and cause.kind == UNSUPPORTED:
            where = f"member {member.name} ({backend.model} at {member.base_url or 'the embedded server'})"
            raise InputError.one(
                where, None, "backend", str(cause).removeprefix(f"{UNSUPPORTED}: ")
            ) from None
        return LossRecord(
            member=member.name, text_id=text.id, status="error", n_bytes=text.n_bytes, error=str(err)
        )
    counters.prompt_tokens += lp.prompt_tokens
    if cache is not None:
        cache.put_payload(key, lp.model_dump_json())
    return text_loss(member.name, text, lp, cached=False, attempts=attempts)
