"""Grading a run's free-response and essay answers with a grader model, through the runner's
request path and worker pool: the grader honours the run's concurrency, attempt budget and
timeout, its replies are cached like any request, and a request that still fails leaves the item
a ``grading_error`` whose rationale says why (never zero points, never an empty reply graded)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from pydantic import BaseModel

from examharness.backends.base import Message, StageParams
from examharness.backends.select import open_backend
from examharness.cache import AsyncCache
from examharness.exam import EssayItem, FreeResponseItem, LoadedExam
from examharness.grading import grade_with_model, item_index
from examharness.prompts import Renderer, template_dirs
from examharness.records import NEEDS_GRADE, GradedItem, ItemRecord
from examharness.runner import Counters, RequestFailed, RetryPolicy, RunContext, ask_stage, pool, remember


class GraderOptions(BaseModel):
    """The grader model for free-response and essay items (temperature 0, seeded per read)."""

    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    threshold: float = 1.0
    max_tokens: int = 512
    timeout: float | None = None
    concurrency: int = 8
    """Answers graded at once (an answer's two first reads are sent together)."""
    max_attempts: int = 6
    """Attempts per grader request, as for the run's own requests."""


def _grader_dir(user_dir: Path | None) -> Path:
    dirs = template_dirs(None, user_dir)
    return next((d for d in dirs if (d / "grader.j2").is_file()), dirs[-1])


def grade_free_response(
    graded: list[GradedItem], records: list[ItemRecord], exams: dict[str, LoadedExam],
    grader: GraderOptions, cache: AsyncCache | None, prompts_dir: Path | None,
) -> list[GradedItem]:  # fmt: skip
    """``graded`` with every answer still without a grade graded by the grader model."""
    by_key = {r.key: r for r in records}
    todo = [i for i, g in enumerate(graded) if g.status in NEEDS_GRADE]
    out = list(graded)
    template_dir = _grader_dir(prompts_dir)
    with open_backend(grader.model, grader.base_url, grader.api_key_env, grader.timeout) as (backend, _):
        retry = RetryPolicy(max_attempts=grader.max_attempts)
        ctx = RunContext(backend, cache, Renderer(vision=False), 0, retry, Counters(), random.Random(0))

        async def ask(messages: list[Message], read: int) -> str:
            params = StageParams(temperature=0.0, max_tokens=grader.max_tokens, seed=read)
            stage = await ask_stage(ctx, "response", messages, params)
            remember(ctx, [stage])  # the reply is all the record a grader read has
            return stage.reply or ""

        async def one(i: int) -> None:
            g = graded[i]
            item = item_index(exams[g.exam_id].exam)[g.item_id][1]
            assert isinstance(item, FreeResponseItem | EssayItem)
            try:
                out[i] = await grade_with_model(
                    by_key[(g.exam_id, g.item_id)], item, ask=ask, grader=backend.model,
                    prompts_dir=template_dir, threshold=grader.threshold,
                )  # fmt: skip
            except RequestFailed as err:
                out[i] = g.model_copy(update={
                    "status": "grading_error", "points": None, "how": "rubric", "source": "grader",
                    "grader": backend.model, "rationale": f"grader request failed: {err}",
                })  # fmt: skip

        async def go() -> None:
            try:
                await pool(todo, one, min(grader.concurrency, backend.max_concurrency or grader.concurrency))
            finally:
                await backend.aclose()

        asyncio.run(go())
    return out
