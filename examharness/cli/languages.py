"""The multilingual commands: ``translate``, ``import mmmlu``, ``chart --languages``.

Each turns parsed flags into one typed library call (:func:`examharness.translate.translate_exam`,
:func:`examharness.importers.mmmlu.import_mmmlu`, :func:`examharness.langchart.language_chart_data`)
and prints the outcome.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from examharness.errors import InputError

EXIT_INCOMPLETE = 3
"""``translate`` finished with requests that failed: rerun the same command to finish."""


def _glossary(value: str | None) -> tuple[str, ...]:
    """``--keep`` as a comma-separated list, or ``@FILE`` with one term per line."""
    if not value:
        return ()
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise InputError.one(path, None, "--keep", f"cannot read glossary: {err}") from None
        return tuple(t.strip() for t in lines if t.strip() and not t.startswith("#"))
    return tuple(t.strip() for t in value.split(",") if t.strip())


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def translate(args: argparse.Namespace) -> int:
    from examharness.api import open_backend
    from examharness.cache import default_cache_path, open_cache
    from examharness.exam import load_exam
    from examharness.languages import check_language
    from examharness.progress import progress_display
    from examharness.runner import RetryPolicy
    from examharness.translate import TranslateOptions, translate_exam

    languages = [check_language(t.strip()) for t in args.to.split(",") if t.strip()]
    if not languages:
        raise InputError.one("command line", None, "--to", "give at least one language tag")
    if args.concurrency < 1 or args.max_attempts < 1:
        raise InputError.one("command line", None, "--concurrency", "--concurrency, --max-attempts: ≥ 1")
    loaded = load_exam(args.exam)
    opts = TranslateOptions(
        out_dir=args.out or loaded.path.parent, glossary=_glossary(args.keep), prompts=args.prompts,
        concurrency=args.concurrency, seed=args.seed, max_tokens=args.max_tokens,
        retry=RetryPolicy(max_attempts=args.max_attempts, timeout=args.timeout), force=args.force,
    )  # fmt: skip
    backend_cm = open_backend(args.model, args.base_url, args.api_key_env, args.timeout)
    with backend_cm as (backend, _), progress_display() as on_progress:
        cache = None if args.no_cache else open_cache(args.cache or default_cache_path(), _warn)
        try:
            results = translate_exam(loaded, languages, backend=backend, cache=cache, opts=opts,
                                     on_progress=on_progress)  # fmt: skip
        finally:
            if cache is not None:
                cache.close()
    incomplete = False
    for result in results:
        language = result.language
        for item, reason in sorted(result.dropped.items()):
            print(f"{args.exam}: {item}: not translated into {language}: {reason}", file=sys.stderr)
        for unit, reason in sorted(result.errors.items()):
            print(f"{args.exam}: {unit}: request failed: {reason}", file=sys.stderr)
        if result.out is None:
            incomplete = True
            print(f"{language}: {len(result.errors)} unit(s) failed; run the same command again "
                  "to finish (finished units are kept)", file=sys.stderr)  # fmt: skip
            continue
        print(f"wrote {result.out}: {result.translated} of {result.items} items translated into "
              f"{language} ({result.requests} requests, {result.cached} from cache)")  # fmt: skip
    return EXIT_INCOMPLETE if incomplete else 0


def import_mmmlu(args: argparse.Namespace) -> int:
    from examharness.importers import write_exam_yaml
    from examharness.importers.mmmlu import import_mmmlu, mmmlu_header

    warnings: list[str] = []
    exam = import_mmmlu(
        args.file, language=args.language, exam_id=args.id, shots=args.shots or 0,
        instruction=args.instruction, title=args.title, skip_bad=args.skip_bad, warn=warnings.append,
    )  # fmt: skip
    for w in warnings:
        print(w, file=sys.stderr)
    write_exam_yaml(exam, args.out, mmmlu_header(args.file))
    n = sum(len(s.items) for s in exam.sections)
    print(f"wrote {args.out}: exam {exam.id!r} ({exam.language}), {len(exam.sections)} subjects, {n} items")
    return 0


def language_chart(args: argparse.Namespace) -> int:
    from examharness.langchart import language_chart_data, load_published_languages, render_language_chart
    from examharness.results import RunFolder

    if args.out is None and not args.json:
        raise InputError.one("command line", None, "--out", "give --out FILE.png|FILE.svg (or --json)")
    published = load_published_languages(args.published or "gpt-4-technical-report")
    runs = []
    for path in args.runs:
        folder = RunFolder.open(path)
        scores = folder.read_scores()
        runs.append((f"{scores.model} ({scores.run_id})", scores))
    data = language_chart_data(runs, published if (args.published or not runs) else None, args.title)
    if not args.published and runs:
        data = data.model_copy(update={"baselines": published.baselines, "source": published.source})
    if args.out is not None:
        render_language_chart(data, args.out)
    if args.json:
        print(data.model_dump_json(indent=2))
    if args.out is not None:
        print(f"wrote {args.out}", file=sys.stderr if args.json else sys.stdout)
    return 0
