"""``examharness translate``: an exam into other languages through any chat model.

The GPT-4 report translated MMLU with Azure Translate, translating "the model instruction, question
and answers" while keeping the ``Answer`` token and the ``A``–``D`` letters in English (Appendix F).
Here any chat backend translates, through the runner's own request path (:func:`ask_stage`: cache,
retries, fault handling), with bounded concurrency and a progress bar. Every finished unit is
appended to ``<out>.parts.jsonl`` at once, so a killed or partly failed translation resumes by
running the same command again; the file is removed when the exam is complete.

A unit whose reply breaks a rule (:mod:`~examharness.translate.protect`,
:func:`~examharness.translate.units.check_shape`) is *broken*: its items are left out of the
translated exam and listed, with the reason, in the result and in the exam's ``translation``
record. A unit whose request failed is an *error*: nothing is written for it, and the next run of
the command asks again.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from examharness.backends.base import ChatBackend, StageParams
from examharness.cache import AsyncCache
from examharness.errors import InputError
from examharness.exam import Exam, LoadedExam, TranslationInfo
from examharness.jsonfiles import JsonlAppender, read_jsonl
from examharness.languages import check_language
from examharness.prompts import Renderer, make_env, render_template, template_dirs
from examharness.runner import Counters, RequestFailed, RetryPolicy, RunContext, ask_stage, remember
from examharness.translate.protect import Broken, check_kept, mask, unmask
from examharness.translate.units import Fields, Unit, apply_units, check_shape, plan_units

__all__ = ["TranslateOptions", "TranslateResult", "UnitResult", "translate_exam", "translated_path"]

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


class UnitResult(BaseModel):
    """One unit's outcome, as appended to the parts file."""

    key: str
    status: Literal["ok", "broken", "error"]
    fields: Fields = {}
    problem: str | None = None


class TranslateResult(BaseModel):
    language: str
    out: Path | None
    """The translated exam file, or None when errors remain (rerun to finish)."""
    items: int
    translated: int
    dropped: dict[str, str]
    errors: dict[str, str]
    requests: int
    cached: int


def translated_path(out_dir: Path, exam: Exam, language: str) -> Path:
    return out_dir / f"{exam.id}-{language}.yaml"


Spans = list[tuple[str, tuple[str, ...], int]]


def _messages(unit: Unit, system: str) -> tuple[list[dict[str, str]], Spans]:
    """The request (system text from the template; the payload as the user message, never parsed
    for roles) and, per field, what was masked."""
    masked: dict[str, str] = {}
    spans: Spans = []
    start = 0
    for key, text in unit.fields.items():
        m = mask(text, start)
        masked[key] = m.text
        spans.append((key, m.spans, start))
        start += len(m.spans)
    payload = json.dumps(masked, ensure_ascii=False, indent=1)
    return [{"role": "system", "content": system}, {"role": "user", "content": payload}], spans


def _read_reply(unit: Unit, reply: str, spans: Spans, glossary: tuple[str, ...]) -> Fields:
    text = _FENCE.sub("", reply.strip())
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise Broken("the reply is not valid JSON") from None
    shaped = check_shape(unit, data)
    out: Fields = {}
    for key, kept, start in spans:
        value = unmask(shaped[key], kept, start)
        check_kept(unit.fields[key], value, glossary)
        out[key] = value
    return out


async def _translate_units(
    units: list[Unit], *, ctx: RunContext, glossary: tuple[str, ...], system: str,
    params: StageParams, concurrency: int, sink: Callable[[UnitResult], None],
) -> None:  # fmt: skip
    queue: asyncio.Queue[Unit] = asyncio.Queue()
    for u in units:
        queue.put_nowait(u)

    async def worker() -> None:
        while not queue.empty():
            unit = queue.get_nowait()
            messages, spans = _messages(unit, system)
            stage = None
            try:
                stage = await ask_stage(ctx, "response", messages, params)
                fields = _read_reply(unit, stage.reply or "", spans, glossary)
                result = UnitResult(key=unit.key, status="ok", fields=fields)
            except RequestFailed as err:
                result = UnitResult(key=unit.key, status="error", problem=str(err))
            except Broken as err:
                result = UnitResult(key=unit.key, status="broken", problem=str(err))
            sink(result)
            if stage is not None:
                remember(ctx, [stage])  # cached once the result is on disk

    limit = min(concurrency, ctx.backend.max_concurrency or concurrency, max(len(units), 1))
    await asyncio.gather(*(worker() for _ in range(limit)))


def _previous(parts: Path) -> dict[str, UnitResult]:
    if not parts.is_file():
        return {}
    return {r.key: r for r in read_jsonl(parts, UnitResult).records if r.status != "error"}


@dataclass(frozen=True)
class TranslateOptions:
    out_dir: Path
    glossary: tuple[str, ...] = ()
    prompts: Path | None = None
    concurrency: int = 8
    seed: int = 0
    max_tokens: int = 2048
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    force: bool = False


def translate_exam(
    loaded: LoadedExam, languages: list[str], *, backend: ChatBackend, cache: AsyncCache | None,
    opts: TranslateOptions, on_progress: Callable[[Counters], None] | None = None,
) -> list[TranslateResult]:  # fmt: skip
    """Translate ``loaded`` into each language; write ``<out_dir>/<exam id>-<language>.yaml`` for
    each language whose every request succeeded. Closes ``backend`` when done."""
    for language in languages:
        check_language(language)

    async def all_languages() -> list[TranslateResult]:
        try:
            return [await _one_language(loaded, x, backend, cache, opts, on_progress) for x in languages]
        finally:
            await backend.aclose()

    return asyncio.run(all_languages())


async def _one_language(
    loaded: LoadedExam, language: str, backend: ChatBackend, cache: AsyncCache | None,
    opts: TranslateOptions, on_progress: Callable[[Counters], None] | None,
) -> TranslateResult:  # fmt: skip
    from examharness.importers import write_exam_yaml

    exam = loaded.exam
    out = translated_path(opts.out_dir, exam, language)
    parts = out.with_name(out.name + ".parts.jsonl")
    if out.exists() and not opts.force and not parts.exists():
        raise InputError.one(out, None, "--out", "file exists; pass --force to overwrite it")
    dirs = template_dirs(loaded.path, opts.prompts)
    variables = {"language": language, "glossary": list(opts.glossary)}
    system = render_template("translate", dirs, variables, make_env(dirs))
    units, untranslatable = plan_units(exam)
    results = _previous(parts)
    todo = [u for u in units if u.key not in results]
    counters = Counters(total=len(todo))
    rng = random.Random(opts.seed)
    ctx = RunContext(backend, cache, Renderer(vision=False), opts.seed, opts.retry, counters, rng)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    appender = JsonlAppender(parts)

    def sink(result: UnitResult) -> None:
        appender.append(result)
        results[result.key] = result
        counters.done += 1
        counters.ok += result.status == "ok"
        counters.errors += result.status == "error"
        if on_progress is not None:
            on_progress(counters)

    params = StageParams(temperature=0.0, max_tokens=opts.max_tokens, seed=opts.seed)
    try:
        await _translate_units(todo, ctx=ctx, glossary=opts.glossary, system=system, params=params,
                               concurrency=opts.concurrency, sink=sink)  # fmt: skip
    finally:
        appender.close()
    errors = {k: r.problem or "" for k, r in results.items() if r.status == "error"}
    done = {k: r.fields for k, r in results.items() if r.status == "ok"}
    broken = {k: r.problem or "" for k, r in results.items() if r.status == "broken"}
    translated, dropped = apply_units(exam, done)
    dropped = {i: broken.get(f"item:{i}", reason) for i, reason in dropped.items()} | untranslatable
    n_items = sum(len(s.items) for s in exam.sections)
    result = TranslateResult(
        language=language, out=None, items=n_items, translated=n_items - len(dropped), dropped=dropped,
        errors=errors, requests=counters.requests, cached=counters.cached,
    )  # fmt: skip
    if errors:
        return result
    if not translated.sections:
        raise InputError.one(loaded.path, None, "translate", f"no item could be translated into {language}")
    final = _finish(translated, loaded, language, backend.model, dropped)
    _copy_images(final, loaded.path.parent, opts.out_dir)
    write_exam_yaml(final, out, _header(loaded, language, backend.model, dropped))
    parts.unlink(missing_ok=True)
    return result.model_copy(update={"out": out})


def _finish(exam: Exam, loaded: LoadedExam, language: str, model: str, dropped: dict[str, str]) -> Exam:
    info = TranslationInfo(
        source_exam=loaded.exam.id, source_hash=loaded.content_hash, translator=model, language=language,
        date=datetime.now(UTC).date().isoformat(), dropped=sorted(dropped),
    )  # fmt: skip
    data = exam.model_dump() | {
        "id": f"{loaded.exam.id}-{language}", "title": f"{loaded.exam.title} ({language})",
        "language": language, "translation": info.model_dump(),
    }  # fmt: skip
    try:
        return Exam.model_validate(data)
    except ValidationError as err:  # a translation can only change texts; say so if it did more
        raise InputError.one(
            loaded.path, None, "translate", f"translated exam does not validate: {err}"
        ) from None


def _copy_images(exam: Exam, source: Path, out_dir: Path) -> None:
    """Images are paths relative to the exam file: bring them along when the folder changes."""
    if source.resolve() == out_dir.resolve():
        return
    paths = [img for p in exam.passages.values() for img in p.images]
    paths += [img for s in exam.sections for i in s.items for img in getattr(i, "images", [])]
    for rel in dict.fromkeys(paths):
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, target)


def _header(loaded: LoadedExam, language: str, model: str, dropped: dict[str, str]) -> str:
    lines = [
        f"Machine translation into {language} of {loaded.path.name} "
        f"(exam {loaded.exam.id!r}, sha256 {loaded.content_hash[:16]}),",
        f"made by `examharness translate` with the model {model!r}. The source's license applies:",
        f"{loaded.exam.license}. Source: {loaded.exam.source}",
    ]
    if dropped:
        lines.append(
            f"{len(dropped)} item(s) could not be translated and are left out (see translation.dropped)."
        )
    return "\n".join(lines)
