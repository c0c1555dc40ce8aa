"""Run exam items against a chat backend: bounded concurrency, retries, cache, resume.

Where retries happen: :func:`ask_stage` — 429 waits for ``Retry-After`` (capped), other retryable
failures (5xx, timeouts, dropped connections) back off exponentially with full jitter, and an
empty reply is asked again at once, all within ``RetryPolicy.max_attempts``. Each attempt is
bounded end to end by ``RetryPolicy.timeout`` (connect to last byte), whatever the server does.
An item whose request still fails is recorded with status ``error`` and the reason; it is never
given an answer. Every finished item is appended to ``items.jsonl`` at once (and only then are
its replies written to the cache), so a killed run loses only the requests in flight, and
:func:`run` with ``resume=True`` skips every item already recorded (``retry_errors`` also redoes
the ``error`` and ``empty`` ones).

When to give up on the whole run: a permanent refusal (401, 403, 404: every item would get it)
raises :class:`~examharness.errors.RunAborted` at once, and so does an item that used its whole
budget on connection failures or timeouts before any request of the session got a reply (nothing
is listening). In-flight items are then cancelled and left unrecorded, so a resume asks them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from examharness.backends.base import BackendError, ChatBackend, ChatReply, Message, StageParams, ready
from examharness.cache import AsyncCache, request_key
from examharness.code.execute import Executor
from examharness.code.sandbox import SandboxError
from examharness.errors import RunAborted
from examharness.exam import CodeItem, Item, LoadedExam, MCItem, MultiSelectItem, Section
from examharness.memo import ServedRecord, from_memo, grade_key, item_key, memorable, templates_digest
from examharness.prompts import ANSWER_STOP, Renderer, answer_followup
from examharness.records import ItemRecord, SectionSampling, StageRecord, now
from examharness.results import RunFolder

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    timeout: float | None = None
    """Seconds one attempt may take from connect to last byte; None leaves it to the backend."""

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
    replies: int = 0
    """Requests that got a reply this session; while 0, failing to connect aborts the run."""
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started: float = field(default_factory=time.monotonic)
    letter_requests: int = 0
    """Items recorded this session with a letter request (a second, ``answer`` stage)."""
    error_texts: list[str] = field(default_factory=list)
    """The ``error`` of each item recorded as an error this session."""
    grade_keys: dict[tuple[str, str], str | None] = field(default_factory=dict)
    """The grade memo's key (:func:`~examharness.memo.grade_key`) of each item recorded this
    session: scoring right after the run takes memoized grades by them, without reading
    ``items.jsonl`` back."""
    exams: dict[str, LoadedExam] = field(default_factory=dict)
    """The exams of the session's run by id, as loaded for it: scoring right after the run uses
    them without loading the files again."""

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
    cache: AsyncCache | None
    renderer: Renderer
    seed: int
    retry: RetryPolicy
    counters: Counters
    rng: random.Random


CURRENT_STAGE: ContextVar[str] = ContextVar("examharness_stage", default="response")
"""The stage :func:`ask_stage` is asking, for a backend that names its requests (a batch file's
``custom_id``, :mod:`examharness.batch`); the chat protocol itself does not carry it."""

UNREACHABLE = frozenset({"connection", "timeout"})
"""Failure kinds that mean no server answered at all."""


async def ask_stage(ctx: RunContext, stage: str, messages: list[Message], params: StageParams) -> StageRecord:
    """One stage: from the cache, or from the backend with retries. Raises on final failure.

    :class:`RequestFailed` costs this item; :class:`RunAborted` means no item can succeed.
    The reply is not cached here: :func:`remember` does that once the item is on disk.
    """
    key = None
    if ctx.cache is not None:
        key = request_key(
            model=ctx.backend.model, base_url=ctx.backend.base_url, stage=stage,
            messages=messages, params=params,
        )  # fmt: skip
        hit = await ctx.cache.get(key)
        if hit is not None:
            ctx.counters.cached += 1
            return _stage_record(stage, messages, params, hit, 0.0, cached=True, attempts=0)

    ready(ctx.backend)

    async def send() -> ChatReply:
        return await ctx.backend.complete(messages, params)

    CURRENT_STAGE.set(stage)

    def empty(reply: ChatReply) -> bool:
        return not reply.text.strip()

    reply, attempt, latency = await with_retries(send, ctx.retry, ctx.counters, ctx.rng, empty=empty)
    ctx.counters.prompt_tokens += reply.usage.prompt_tokens
    ctx.counters.completion_tokens += reply.usage.completion_tokens
    record = _stage_record(stage, messages, params, reply, latency, cached=False, attempts=attempt)
    record._request_key = key  # for remember()
    return record


async def with_retries(
    send: Callable[[], Awaitable[T]], retry: RetryPolicy, counters: Counters, rng: random.Random,
    *, empty: Callable[[T], bool] | None = None,
) -> tuple[T, int, float]:  # fmt: skip
    """The one retry loop: ``send()`` until it succeeds or fails for good.

    Returns (result, attempts, latency of the successful attempt). Each attempt is bounded end to
    end by ``retry.timeout``. A permanent refusal (wrong key, no such model), or no server answering
    before any request ever has, raises :class:`RunAborted`; other failures are retried and raise
    :class:`RequestFailed` when the attempts run out. A result that ``empty`` calls empty is asked
    again within the same budget (the last one is returned). Every request path that talks to a
    model (chat stages, prompt log-probabilities) goes through here.
    """
    attempt = 0
    while True:
        attempt += 1
        counters.requests += 1
        started = time.monotonic()
        try:
            result = await _attempt(send, retry)
        except BackendError as err:
            if err.permanent:
                raise RunAborted(f"{err} (every request would fail the same way)") from err
            if not err.retryable or attempt >= retry.max_attempts:
                tries = f"after {attempt} attempt{'s' if attempt > 1 else ''}"
                if err.kind in UNREACHABLE and counters.replies == 0:
                    raise RunAborted(f"{err} ({tries}; no request has been answered)") from err
                raise RequestFailed(f"{err} ({tries})") from err
            counters.retries += 1
            await asyncio.sleep(retry.delay(attempt, err, rng))
            continue
        counters.replies += 1
        if empty is not None and empty(result) and attempt < retry.max_attempts:
            counters.retries += 1
            continue
        return result, attempt, time.monotonic() - started


async def _attempt(send: Callable[[], Awaitable[T]], retry: RetryPolicy) -> T:
    """One request under the attempt deadline; every failure comes out as a BackendError."""
    try:
        async with asyncio.timeout(retry.timeout):
            return await send()
    except BackendError:
        raise
    except TimeoutError as err:
        raise BackendError("timeout", f"no complete reply within {retry.timeout:g}s", retryable=True) from err
    except Exception as err:  # a backend bug must cost one item, not the run
        raise RequestFailed(f"unexpected {type(err).__name__}: {err}") from err


def remember(ctx: RunContext, stages: list[StageRecord]) -> None:
    """Queue the fresh, non-empty replies of ``stages`` for the cache (an empty reply is recorded,
    not cached: a rerun asks again), under the key :func:`ask_stage` looked each up by (computed
    here only for a stage that did not come from it). Call it after the item's record is written."""
    if ctx.cache is None:
        return
    for s in stages:
        if s.cached or not (s.reply or "").strip():
            continue
        key = s._request_key or request_key(
            model=ctx.backend.model, base_url=ctx.backend.base_url, stage=s.stage,
            messages=s.messages, params=s.params,
        )  # fmt: skip
        ctx.cache.put(key, ChatReply(text=s.reply or "", finish_reason=s.finish_reason, usage=s.usage))


def _memo_keys(ctx: RunContext, work: list[WorkItem]) -> dict[int, str]:
    """The item-memo key (:mod:`examharness.memo`) of each work item, by ``id``."""
    digests: dict[Path, str] = {}
    keys = {}
    for w in work:
        path = w.loaded.path
        if path not in digests:
            digests[path] = templates_digest(tuple(ctx.renderer.dirs_for(path)))
        keys[id(w)] = item_key(
            model=ctx.backend.model, base_url=ctx.backend.base_url, seed=ctx.seed, vision=ctx.renderer.vision,
            templates=digests[path],
            exam_hash=w.loaded.content_hash, section_id=w.section.id, item_id=w.item_id, index=w.index,
            sampling=w.sampling,
        )  # fmt: skip
    return keys


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
    from examharness.extract.choice import extract_choice  # compiled on first use
    from examharness.extract.numeric import extract_numeric

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

    try:
        async with asyncio.TaskGroup() as group:  # one worker's exception (RunAborted) cancels the rest
            for _ in range(max(1, min(limit, len(items)))):
                group.create_task(worker())
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None


def unfinished(
    work: list[WorkItem], folder: RunFolder, *, resume: bool, retry_errors: bool
) -> list[WorkItem]:
    """The items a session asks: all of them, or (``resume``) those without a record, plus
    (``retry_errors``) those recorded as ``error`` or ``empty``."""
    done = {r.key: r.status for r in folder.read_outcomes()} if resume else {}
    redo = {"error", "empty"} if retry_errors else set()
    return [w for w in work if (status := done.get((w.loaded.exam.id, w.item_id))) is None or status in redo]


async def run(
    work: list[WorkItem],
    *,
    run_dir: Path,
    backend: ChatBackend,
    cache: AsyncCache | None,
    renderer: Renderer,
    concurrency: int,
    seed: int,
    retry: RetryPolicy = RetryPolicy(),
    resume: bool = False,
    retry_errors: bool = False,
    on_progress: ProgressFn | None = None,
    counters: Counters | None = None,
) -> Counters:
    """Run every work item not already finished in ``run_dir``; append one record per item.

    ``counters`` (optional) is filled in place, so a caller still has the session's totals
    when the run is aborted or interrupted. Raises :class:`RunAborted` (see the module doc).
    """
    todo = unfinished(work, RunFolder(run_dir), resume=resume, retry_errors=retry_errors)
    counters = counters if counters is not None else Counters()
    counters.total = len(todo)
    ctx = RunContext(backend, cache, renderer, seed, retry, counters, random.Random(seed))
    out = RunFolder(run_dir).append_items()
    executor = Executor() if any(isinstance(w.section.items[w.index], CodeItem) for w in todo) else None
    executing: set[asyncio.Task[None]] = set()

    def finish(record: ItemRecord) -> str:
        """Write, remember and count a record made this session."""
        line = out.append(record)
        remember(ctx, record.stages)
        count(record)
        return line

    def count(record: ItemRecord | ServedRecord) -> None:
        counters.done += 1
        counters.ok += record.status == "ok"
        counters.empty += record.status == "empty"
        counters.errors += record.status == "error"
        counters.letter_requests += any(st.stage == "answer" for st in record.stages)
        if record.status == "error":
            counters.error_texts.append(record.error or "unknown")
        if on_progress is not None:
            on_progress(counters)

    async def execute_then_finish(w: WorkItem, record: ItemRecord) -> None:
        assert executor is not None
        try:
            finish(await _execute(executor, w, record))
        except (SandboxError, OSError) as err:  # no verdict: an error item, retryable, never a fail
            finish(record.model_copy(update={"status": "error", "error": f"sandbox failed: {err}"}))
        counters.grade_keys[record.key] = None  # a program's verdict is graded from its record

    keys = _memo_keys(ctx, todo) if cache is not None else {}
    if keys:  # whole records of items answered before: written as they are, nothing rendered or sent
        known = await cache.get_payloads(list(keys.values())) if cache is not None else {}
        served_at = now()
        for w in [w for w in todo if keys[id(w)] in known]:
            try:
                record, line = from_memo(known[keys[id(w)]], served_at)
            except ValidationError:  # a damaged entry: the item is asked (and stored) again
                continue
            del keys[id(w)]
            counters.cached += len(record.stages)
            out.append_line(line)  # its replies come from the cache: nothing to remember
            count(record)
            counters.grade_keys[record.key] = grade_key(record, w.section.items[w.index])
        todo = [w for w in todo if id(w) in keys]

    def finish_and_keep(w: WorkItem, record: ItemRecord) -> None:
        line = finish(record)
        counters.grade_keys[record.key] = grade_key(record, w.section.items[w.index])
        key = keys.get(id(w))
        if key is not None and cache is not None and memorable(record):
            cache.put_payload(key, line)

    async def one(w: WorkItem) -> None:
        record = await run_item(ctx, w)
        if executor is not None and record.status != "error" and record.item_type == "code":
            # Programs run on worker threads; this worker goes on to its next request.
            task = asyncio.create_task(execute_then_finish(w, record))
            executing.add(task)
            task.add_done_callback(executing.discard)
        else:
            finish_and_keep(w, record)

    try:
        await pool(todo, one, min(concurrency, backend.max_concurrency or concurrency))
        while executing:
            await asyncio.gather(*executing)
    finally:
        # A session that sent nothing and ran no program wrote only what the cache holds: a rerun
        # writes it again in a second, so it is not worth an fsync of the whole file.
        out.close(sync=counters.requests > 0 or executor is not None)
        if executor is not None:
            executor.close()
    return counters
