"""The commands that make and score runs: parsed flags -> one library call -> printed output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from examharness.errors import InputError

if TYPE_CHECKING:
    from examharness.api import RunOptions
    from examharness.grader import GraderOptions
    from examharness.runner import Counters


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def validate(args: argparse.Namespace) -> int:
    from examharness.scales import REPO_SCALES
    from examharness.validate import validate_paths

    problems = validate_paths(args.paths, user_prompts=args.prompts, scale_dirs=[REPO_SCALES])
    for p in problems:
        print(p)
    if not problems:
        print("ok", file=sys.stderr)
    return 1 if problems else 0


def list_exams(args: argparse.Namespace) -> int:
    from collections import Counter

    from rich.console import Console
    from rich.table import Table

    from examharness.api import load_exams

    exams = load_exams(args.paths)
    table = Table("exam", "title", "sections", "items by kind", "scale", "file")
    for le in exams:
        kinds = Counter(item.type for _, item in le.exam.items())
        table.add_row(
            le.exam.id, le.exam.title,
            ", ".join(f"{s.id} ({s.kind}, {len(s.items)})" for s in le.exam.sections),
            ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())),
            le.exam.scoring.scale_name or "-", str(le.path),
        )  # fmt: skip
    Console().print(table)
    return 0


def render(args: argparse.Namespace) -> int:
    from examharness.exam import load_exam
    from examharness.prompts import Renderer

    loaded = load_exam(args.exam)
    for section in loaded.exam.sections:
        for i, item in enumerate(section.items):
            if item.id == args.item:
                messages = Renderer(vision=not args.no_vision, user_dir=args.prompts).render(
                    loaded, section, i
                )
                if args.json:
                    print_json(messages)
                    return 0
                for m in messages:
                    print(f"=== {m['role']} ===")
                    content = m["content"]
                    if isinstance(content, list):
                        for part in content:
                            if part["type"] == "text":
                                print(part["text"])
                            else:
                                url = part["image_url"]["url"]
                                print(f"[image content part: {url[:40]}... ({len(url)} chars)]")
                    else:
                        print(content)
                return 0
    raise InputError.one(args.exam, None, "--item", f"no item {args.item!r} in exam {loaded.exam.id!r}")


def import_bank(args: argparse.Namespace) -> int:
    from examharness.importers import agieval, check_out, checked_exam_id, humaneval, mmlu, write_exam_yaml

    def warn(line: str) -> None:
        print(line, file=sys.stderr)

    check_out(args.out, force=args.force)
    if args.format == "mmmlu":
        from examharness.cli.languages import import_mmmlu

        return import_mmmlu(args)
    if args.format == "mmlu":
        exam = mmlu.import_mmlu(
            args.dev, args.test, exam_id=args.id, shots=5 if args.shots is None else args.shots,
            scale=args.scale, instruction=args.instruction, title=args.title, skip_bad=args.skip_bad,
            warn=warn,
        )  # fmt: skip
        header = mmlu.mmlu_header(args.dev, args.test)
    elif args.format in ("humaneval", "leetcode"):
        leetcode = args.format == "leetcode"
        exam_id = checked_exam_id(args.id or args.format, given=args.id is not None, source=Path(args.format))
        exam = humaneval.import_humaneval(
            args.file, exam_id=exam_id, leetcode=leetcode, skip_bad=args.skip_bad, warn=warn
        )
        header = humaneval.humaneval_header(args.file, leetcode)
    else:
        exam = agieval.import_agieval(
            args.files, exam_id=args.id, title=args.title, published_label=args.published_label,
            section_per_file=args.section_per_file, shots=args.shots, fewshot=args.fewshot,
            scale=args.scale, skip_bad=args.skip_bad, warn=warn,
        )  # fmt: skip
        header = agieval.agieval_header(args.files, args.fewshot)
    write_exam_yaml(exam, args.out, header)
    n = sum(len(s.items) for s in exam.sections)
    print(f"wrote {args.out}: exam {exam.id!r}, {n} items")
    return 0


def grader_options(args: argparse.Namespace) -> GraderOptions | None:
    from examharness.grader import GraderOptions

    if args.grader_model is None and not args.grader_local:
        return None
    return GraderOptions.model_validate({
        "model": None if args.grader_local else args.grader_model, "base_url": args.grader_base_url,
        "api_key_env": args.grader_api_key_env, "threshold": args.adjudication_threshold,
        "timeout": args.timeout, "max_attempts": args.max_attempts,
        **({} if args.concurrency is None else {"concurrency": args.concurrency}),
    })  # fmt: skip


def _check_limits(args: argparse.Namespace) -> None:
    """``--concurrency`` and ``--max-attempts`` (run and score) must be at least 1."""
    if args.concurrency is not None and args.concurrency < 1:
        raise InputError.one("command line", None, "--concurrency", "must be at least 1")
    if args.max_attempts < 1:
        raise InputError.one("command line", None, "--max-attempts", "must be at least 1")


def run_options(args: argparse.Namespace) -> RunOptions:
    """One plain ``--base-url`` is ``base_url``; several (or a file) are the endpoint pool."""
    from examharness.api import RunOptions
    from examharness.backends.endpoints import parse_base_urls
    from examharness.shards import parse_shard

    endpoints = parse_base_urls(args.base_url) if args.base_url else []
    base_url = None
    if len(endpoints) == 1 and endpoints[0].max_concurrency is None:
        base_url, endpoints = endpoints[0].url, []
    return RunOptions(
        paths=args.paths, model=args.model, base_url=base_url, endpoints=endpoints,
        shard=parse_shard(args.shard) if args.shard is not None else None, api_key_env=args.api_key_env,
        concurrency=args.concurrency, limit=args.limit, seed=args.seed, vision=not args.no_vision,
        use_cache=not args.no_cache, cache_path=args.cache, out=args.out, resume=args.resume,
        retry_errors=args.retry_errors, mc_mode=args.mc_mode, temperature=args.temperature,
        max_tokens=args.max_tokens, timeout=args.timeout, max_attempts=args.max_attempts,
        prompts_dir=args.prompts, samples=args.samples, edition=args.edition, batch=args.batch,
        poll_interval=args.poll_interval,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from examharness.api import run_exams
    from examharness.cli.scaling import family_run_command
    from examharness.gcpause import settle
    from examharness.progress import progress_display
    from examharness.report import print_summary  # noqa: F401  (loaded now, settled with the rest)

    settle(args.own_process)

    if args.family is not None or (args.resume is not None and (args.resume / "family_run.json").exists()):
        return family_run_command(args)
    if not args.paths and args.resume is None:
        raise InputError.one("command line", None, "paths", "give exam files or folders, or --resume RUN_DIR")
    _check_limits(args)
    if args.limit is not None and args.limit < 1:
        raise InputError.one("command line", None, "--limit", "must be at least 1")
    if args.samples is not None and args.samples < 1:
        raise InputError.one("command line", None, "--samples", "must be at least 1")
    if args.max_attempts < 1:
        raise InputError.one("command line", None, "--max-attempts", "must be at least 1")
    if args.batch and args.model is None and args.resume is None:
        raise InputError.one("command line", None, "--batch", "batch runs need --model NAME")
    if args.poll_interval <= 0:
        raise InputError.one("command line", None, "--poll-interval", "must be more than 0 seconds")
    opts = run_options(args)
    with progress_display() as on_progress:
        run_dir, counters = run_exams(opts, on_progress)
    return finish_run(args, run_dir, counters)


def finish_run(args: argparse.Namespace, run_dir: Path, counters: Counters) -> int:
    """The end of a run session: its summary line, the top error reasons, the scores, the exit code."""
    from examharness.api import score_run
    from examharness.backends.endpoints import describe_endpoints
    from examharness.outcome import describe_errors, exit_code
    from examharness.report import print_summary
    from examharness.results import RunFolder

    total = RunFolder(run_dir).read_config().summary
    session = counters.as_summary()
    print(
        f"run {run_dir.name}: {total['items']} items, {total['ok']} ok, {total['empty']} empty, "
        f"{total['error']} error, {total.get('letter_requests', 0)} needed the letter request; "
        f"this session {session['requests_sent']} requests sent, "
        f"{session['cache_hits']} from cache, {session['elapsed_s']:.1f}s",
        file=sys.stderr,
    )
    pool = describe_endpoints(total)
    if pool:
        print("endpoints:\n" + "\n".join(pool), file=sys.stderr)
    reasons = describe_errors(total)
    if reasons:
        print("top error reasons:\n" + "\n".join(reasons), file=sys.stderr)
        print(f"ask them again: examharness run --resume {run_dir} --retry-errors", file=sys.stderr)
    if not args.no_score:
        grader = grader_options(args)
        scores = score_run(run_dir, grader=grader, n_boot=args.bootstrap, cache_path=args.cache,
                           use_cache=not args.no_cache, prompts_dir=args.prompts,
                           grade_keys=counters.grade_keys, exams=counters.exams)  # fmt: skip
        print_summary(scores)
    print(run_dir)
    return exit_code(total)


def score(args: argparse.Namespace) -> int:
    from examharness.api import score_run
    from examharness.gcpause import settle
    from examharness.report import print_summary

    settle(args.own_process)

    _check_limits(args)
    grader = grader_options(args)
    scores = score_run(args.run_dir, grader=grader, scale_dirs=args.scales, n_boot=args.bootstrap,
                       cache_path=args.cache, edition=args.edition)  # fmt: skip
    print_summary(scores)
    return 0


def merge(args: argparse.Namespace) -> int:
    """Join shard runs into one run folder, then score it as ``score`` does."""
    from examharness.api import score_run
    from examharness.merge import merge_runs
    from examharness.report import print_summary

    def warn(line: str) -> None:
        print(line, file=sys.stderr)

    run_dir = merge_runs(args.runs, args.out, allow_partial=args.allow_partial, warn=warn)
    if not args.no_score:
        print_summary(score_run(run_dir, n_boot=args.bootstrap))
    print(run_dir)
    return 0
