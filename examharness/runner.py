"""Run exam items against a chat backend: bounded concurrency, retries, cache, resume.

Where retries happen: :func:`ask_stage` — 429 waits for ``Retry-After`` (capped), other retryable
failures (5xx, timeouts, dropped connections) back off exponentially with full jitter, up to
``RetryPolicy.max_attempts``. An item whose request still fails is recorded with status ``error``
and the reason; it is never given an answer. Every finished item is appended to ``items.jsonl``
at once, so a killed run loses only the requests in flight, and :func:`run` with ``resume=True``
skips every item already recorded (``retry_errors`` also redoes the ``error`` ones).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from examharness.backends.base import BackendError, ChatBackend, ChatReply, Message, StageParams
from examharness.cache import RequestCache, request_key
from examharness.code.execute import Executor
from examharness.code.sandbox import SandboxError
from examharness.exam import CodeItem, Item, LoadedExam, MCItem, MultiSelectItem, Section
from examharness.extract import extract_choice, extract_numeric
from examharness.prompts import ANSWER_STOP, Renderer, answer_followup
from examharness.records import ItemRecord, SectionSampling, StageRecord
from examharness.results import RunFolder

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, err: BackendError, rng: random.Random) -> float:
        if err.retry_after is not None:
            return min(max(err.retry_after, 0.0), self.max_retry_after)
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class WorkItem:
    loaded: LoadedExam
    section: Section
    index: int
    sampling: SectionSampling

    @property
    def item_id(self) -> str:
        return self.section.items[self.index].id


@dataclass
class Counters:
    """Live totals the progress display reads."""

    total: int = 0
    done: int = 0
    ok: int = 0
    empty: int = 0
    errors: int = 0
    requests: int = 0
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started: float = field(default_factory=time.monotonic)

    def as_summary(self) -> dict[str, Any]:
        return {
            "items": self.total, "ok": self.ok, "empty": self.empty, "error": self.errors,
            "requests_sent": self.requests, "cache_hits": self.cached, "retries": self.retries,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "elapsed_s": round(time.monotonic() - self.started, 3),
        }  # fmt: skip


@dataclass
class RunContext:
    backend: ChatBackend
    cache: RequestCache | None
    renderer: Renderer
    seed: int
    retry: RetryPolicy
    counters: Counters
    rng: random.Random


async def ask_stage(ctx: RunContext, stage: str, messages: list[Message], params: StageParams) -> StageRecord:
    """One stage: from the cache, or from the backend with retries. Raises on final failure."""
    key = None
    if ctx.cache is not None:
        key = request_key(
            model=ctx.backend.model, base_url=ctx.backend.base_url, stage=stage,
            messages=messages, params=params,
        )  # fmt: skip
        hit = ctx.cache.get(key)
        if hit is not None:
            ctx.counters.cached += 1
            return _stage_record(stage, messages, params, hit, 0.0, cached=True, attempts=0)

    async def send() -> ChatReply:
        return await ctx.backend.complete(messages, params)

    reply, attempt, latency = await with_retries(send, ctx.retry, ctx.counters, ctx.rng)
    ctx.counters.prompt_tokens += reply.usage.prompt_tokens
    ctx.counters.completion_tokens += reply.usage.completion_tokens
    if ctx.cache is not None and key is not None and reply.text.strip():
        ctx.cache.put(key, reply)  # an empty reply is recorded, not cached: a rerun asks again
    return _stage_record(stage, messages, params, reply, latency, cached=False, attempts=attempt)


async def with_retries(
    send: Callable[[], Awaitable[T]], retry: RetryPolicy, counters: Counters, rng: random.Random
) -> tuple[T, int, float]:
    """The one retry loop: ``send()`` until it succeeds or fails for good.

    Returns (result, attempts, latency of the successful attempt); raises :class:`RequestFailed`
    when the error is not retryable or the attempts run out. Every request path that talks to
    a model (chat stages, prompt log-probabilities) goes through here.
    """
    attempt = 0
    while True:
        attempt += 1
        counters.requests += 1
        started = time.monotonic()
        try:
            result = await send()
        except BackendError as err:
            if not err.retryable or attempt >= retry.max_attempts:
                raise RequestFailed(f"{err} (after {attempt} attempt{'s' if attempt > 1 else ''})") from err
            counters.retries += 1
            await asyncio.sleep(retry.delay(attempt, err, rng))
            continue
        except Exception as err:  # a backend bug must cost one item, not the run
            raise RequestFailed(f"unexpected {type(err).__name__}: {err}") from err
        return result, attempt, time.monotonic() - started


class RequestFailed(Exception):
    pass


def _stage_record(
    stage: str, messages: list[Message], params: StageParams, reply: ChatReply,
    latency: float, *, cached: bool, attempts: int,
) -> StageRecord:  # fmt: skip
    return StageRecord(
        stage=stage,
        messages=messages, params=params, reply=reply.text, finish_reason=reply.finish_reason,
        usage=reply.usage, latency_s=round(latency, 4), cached=cached, attempts=attempts,
    )  # fmt: skip


def needs_letter(mode: str, explanation: StageRecord, item: Item) -> bool:
    """Whether to ask for the letter after the explanation. ``two_stage``: always.
    ``letter_if_needed``: when the explanation was cut off at ``max_tokens`` (``finish_reason``
    ``length``: whatever it reached is not a conclusion), states no answer, or only a loose
    rule found one (a mark or mention, not an answer statement)."""
    if mode == "two_stage" or explanation.finish_reason == "length":
        return True
    reply = explanation.reply or ""
    if isinstance(item, MCItem | MultiSelectItem):
        found = extract_choice(reply, item.options, multi=isinstance(item, MultiSelectItem))
    else:
        found = extract_numeric(reply)
    return found.status != "answered" or found.tier != "strict"


async def run_item(ctx: RunContext, work: WorkItem) -> ItemRecord:
    """All stages of one item: for multiple choice an explanation, then (per the section's mode)
    a request for the letter given that explanation."""
    item = work.section.items[work.index]
    s = work.sampling
    if isinstance(item, CodeItem):
        return await _sample_code(ctx, work)
    base = ItemRecord(
        exam_id=work.loaded.exam.id, section_id=work.section.id, item_id=item.id,
        item_type=item.type, status="ok",
    )  # fmt: skip
    messages = ctx.renderer.render(work.loaded, work.section, work.index)
    choice = item.type in ("mc", "multi_select", "numeric") and work.section.kind == "multiple_choice"
    explained = choice and s.mode != "single"
    first = "explanation" if explained else "response"
    stages: list[StageRecord] = []
    try:
        params = StageParams(temperature=s.temperature, max_tokens=s.max_tokens, seed=ctx.seed)
        stages.append(await ask_stage(ctx, first, messages, params))
        explanation = stages[-1].reply or ""
        if explained and explanation.strip() and needs_letter(s.mode, stages[-1], item):
            numeric = item.type == "numeric"
            follow = messages + answer_followup(explanation, numeric=numeric, renderer=ctx.renderer)
            params2 = StageParams(temperature=s.answer_temperature, max_tokens=s.answer_max_tokens,
                                  seed=ctx.seed, stop=[ANSWER_STOP])  # fmt: skip
            stages.append(await ask_stage(ctx, "answer", follow, params2))
    except RequestFailed as err:
        return base.model_copy(update={"status": "error", "stages": stages, "error": str(err)})
    status = "ok" if (stages[0].reply or "").strip() else "empty"
    return base.model_copy(update={"status": status, "stages": stages})


async def _sample_code(ctx: RunContext, work: WorkItem) -> ItemRecord:
    """``samples`` requests for one code item (request ``i`` with seed ``seed + i``, so samples
    differ where the server honours seeds, and each has its own cache entry). Not yet executed."""
    item = work.section.items[work.index]
    s = work.sampling
    base = ItemRecord(
        exam_id=work.loaded.exam.id, section_id=work.section.id, item_id=item.id,
        item_type=item.type, status="ok",
    )  # fmt: skip
    messages = ctx.renderer.render(work.loaded, work.section, work.index)
    stages: list[StageRecord] = []
    try:
        for i in range(s.samples):
            params = StageParams(temperature=s.temperature, max_tokens=s.max_tokens, seed=ctx.seed + i)
            stages.append(await ask_stage(ctx, "response", messages, params))
    except RequestFailed as err:
        return base.model_copy(update={"status": "error", "stages": stages, "error": str(err)})
    status = "ok" if any((st.reply or "").strip() for st in stages) else "empty"
    return base.model_copy(update={"status": status, "stages": stages})


async def _execute(executor: Executor, work: WorkItem, record: ItemRecord) -> ItemRecord:
    item = work.section.items[work.index]
    assert isinstance(item, CodeItem)
    samples = await executor.samples(item, [st.reply or "" for st in record.stages])
    return record.model_copy(update={"code": samples})


ProgressFn = Callable[[Counters], None]


async def pool(items: Sequence[T], work: Callable[[T], Awaitable[None]], limit: int) -> None:
    """The one worker pool (for runs and for grading): ``work`` on every item, in order, with at
    most ``limit`` in flight. ``work`` records its own failures; an exception stops the pool."""
    queue: asyncio.Queue[T] = asyncio.Queue()
    for x in items:
        queue.put_nowait(x)

    async def worker() -> None:
        while True:
            try:
                x = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await work(x)

    await asyncio.gather(*(worker() for _ in range(max(1, min(limit, len(items))))))


async def run(
    work: list[WorkItem],
    *,
    run_dir: Path,
    backend: ChatBackend,
    cache: RequestCache | None,
    renderer: Renderer,
    concurrency: int,
    seed: int,
    retry: RetryPolicy = RetryPolicy(),
    resume: bool = False,
    retry_errors: bool = False,
    on_progress: ProgressFn | None = None,
) -> Counters:
    """Run every work item not already finished in ``run_dir``; append one record per item."""
    done = {}
    if resume:
        done = {r.key: r.status for r in RunFolder(run_dir).read_items()}
    todo = [
        w for w in work
        if (key := (w.loaded.exam.id, w.item_id)) not in done or (retry_errors and done[key] == "error")
    ]  # fmt: skip
    counters = Counters(total=len(todo))
    ctx = RunContext(backend, cache, renderer, seed, retry, counters, random.Random(seed))
    out = RunFolder(run_dir).append_items()
    executor = Executor() if any(isinstance(w.section.items[w.index], CodeItem) for w in todo) else None
    executing: set[asyncio.Task[None]] = set()

    def finish(record: ItemRecord) -> None:
        out.append(record)
        counters.done += 1
        counters.ok += record.status == "ok"
        counters.empty += record.status == "empty"
        counters.errors += record.status == "error"
        if on_progress is not None:
            on_progress(counters)

    async def execute_then_finish(w: WorkItem, record: ItemRecord) -> None:
        assert executor is not None
        try:
            finish(await _execute(executor, w, record))
        except (SandboxError, OSError) as err:  # no verdict: an error item, retryable, never a fail
            finish(record.model_copy(update={"status": "error", "error": f"sandbox failed: {err}"}))

    async def one(w: WorkItem) -> None:
        record = await run_item(ctx, w)
        if executor is not None and record.status != "error" and record.item_type == "code":
            # Programs run on worker threads; this worker goes on to its next request.
            task = asyncio.create_task(execute_then_finish(w, record))
            executing.add(task)
            task.add_done_callback(executing.discard)
        else:
            finish(record)

    try:
        await pool(todo, one, min(concurrency, backend.max_concurrency or concurrency))
        while executing:
            await asyncio.gather(*executing)
    finally:
        out.close()
        if executor is not None:
            executor.close()
    return counters
