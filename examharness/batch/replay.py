"""The runner's own item logic, driven by batch results instead of a live server.

A batch run does not re-implement what a run asks: it runs :func:`~examharness.runner.run_item`
(the same messages, the same :class:`StageParams`, the same cache keys and cache hits, the same
``needs_letter`` rule, one request per code sample with seed ``seed + i``) against a
:class:`ReplayBackend`. A *planning pass* walks the unfinished items one by one: a request with a
result is answered from it, one without is noted as a batch request line and answered with an
empty reply (which asks no second stage). Items that noted nothing are complete; the *recording
pass* is then :func:`examharness.runner.run` itself on those items, so records, cache writes,
code execution and counters are exactly a normal run's. The items left wait for the next batch.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

from examharness.backends.base import BackendError, ChatReply, Message, StageParams, Usage
from examharness.backends.openai_compat import OpenAIBackend
from examharness.batch.lines import EntryId, Outcome, RequestLine, Stage
from examharness.cache import AsyncCache, request_key
from examharness.prompts import Renderer
from examharness.runner import (
    CURRENT_STAGE,
    Counters,
    ProgressFn,
    RetryPolicy,
    RunContext,
    WorkItem,
    run,
    run_item,
)

ONE_ATTEMPT = RetryPolicy(max_attempts=1)
"""A batch result is final: a failed entry is an ``error`` item (``--retry-errors`` sends it again),
and an empty reply is recorded as ``empty``."""


class ReplayBackend:
    """A chat backend that answers from batch results (see the module doc).

    While an item is being planned (:meth:`begin`), requests are named by that item, the runner's
    stage and the sample (``seed`` offset); the recording pass runs items concurrently, so there
    each request finds its result by its cache key, noted when it was planned.
    """

    max_concurrency: int | None = None

    def __init__(self, real: OpenAIBackend, seed: int) -> None:
        self.model, self.base_url = real.model, real.base_url
        self._real, self._seed = real, seed
        self.results: dict[str, Outcome] = {}
        self.pending: dict[str, RequestLine] = {}
        self._named: dict[str, str] = {}
        self._item: tuple[str, str] | None = None

    def add(self, outcomes: dict[str, Outcome], *, forget_failures: bool = False) -> None:
        """Results of one batch (a later batch's replace an earlier one's). ``forget_failures``
        (``--retry-errors``) drops failed entries and empty replies, so they are asked again."""
        for cid, outcome in outcomes.items():
            failed = isinstance(outcome, BackendError) or not outcome.text.strip()
            if forget_failures and failed:
                self.results.pop(cid, None)
            else:
                self.results[cid] = outcome

    def begin(self, work: WorkItem | None) -> None:
        self._item = None if work is None else (work.loaded.exam.id, work.item_id)

    async def complete(self, messages: list[Message], params: StageParams) -> ChatReply:
        stage = CURRENT_STAGE.get()
        key = request_key(
            model=self.model, base_url=self.base_url, stage=stage, messages=messages, params=params
        )
        if self._item is None:
            outcome = self.results.get(self._named.get(key, ""))
            if outcome is None:
                raise BackendError("batch_missing", "no batch result for this request", retryable=False)
        else:
            sample = (params.seed if params.seed is not None else self._seed) - self._seed
            cid = str(EntryId(*self._item, stage=_stage(stage), sample=sample))
            self._named[key] = cid
            found = self.results.get(cid)
            if found is None:
                self.pending[cid] = RequestLine(custom_id=cid, body=self._real.request_body(messages, params))
                return ChatReply(text="", finish_reason=None, usage=Usage())
            outcome = found
        if isinstance(outcome, BackendError):
            raise BackendError(outcome.kind, str(outcome).removeprefix(f"{outcome.kind}: "), retryable=False)
        return replace(outcome, text=self._real.redact(outcome.text))

    async def aclose(self) -> None:
        return None


def _stage(stage: str) -> Stage:
    if stage == "explanation":
        return "explanation"
    return "answer" if stage == "answer" else "response"


class Passes:
    """Planning and recording passes over a run's unfinished items."""

    def __init__(
        self, replay: ReplayBackend, *, run_dir: Path, cache: AsyncCache | None, renderer: Renderer,
        seed: int, concurrency: int, counters: Counters, on_progress: ProgressFn | None,
    ) -> None:  # fmt: skip
        self.replay, self.run_dir, self.cache, self.renderer = replay, run_dir, cache, renderer
        self.seed, self.concurrency, self.counters, self.on_progress = (
            seed,
            concurrency,
            counters,
            on_progress,
        )
        self.waiting: Counter[str] = Counter()
        """Items waiting after the last pass, by the stage they wait for."""

    async def settle(self, todo: list[WorkItem]) -> list[WorkItem]:
        """Record every item the known results finish; return the others (their requests are
        then in ``replay.pending``)."""
        complete, left = await self._plan(todo)
        if complete:
            await run(complete, run_dir=self.run_dir, backend=self.replay, cache=self.cache,
                      renderer=self.renderer, concurrency=self.concurrency, seed=self.seed, retry=ONE_ATTEMPT,
                      on_progress=self.on_progress, counters=self.counters)  # fmt: skip
            self.counters.total = self.counters.done
        return left

    async def _plan(self, todo: list[WorkItem]) -> tuple[list[WorkItem], list[WorkItem]]:
        replay = self.replay
        replay.pending.clear()
        self.waiting.clear()
        ctx = RunContext(
            replay, self.cache, self.renderer, self.seed, ONE_ATTEMPT, Counters(), random.Random(0)
        )
        complete, left = [], []
        for w in todo:
            before = len(replay.pending)
            replay.begin(w)
            try:
                await run_item(ctx, w)
            finally:
                replay.begin(None)
            if len(replay.pending) == before:
                complete.append(w)
            else:
                left.append(w)
                last = next(reversed(replay.pending))
                self.waiting[EntryId.parse(last).stage] += 1
        return complete, left
