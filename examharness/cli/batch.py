"""``examharness batch export|import``: batch files for engines reached outside examharness
(vLLM's ``run_batch``, other providers' OpenAI-format batch endpoints)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from examharness.errors import InputError


def add_parsers(sub: argparse._SubParsersAction[Any], parser_class: type[argparse.ArgumentParser],
                add_grader: Any) -> None:  # fmt: skip
    p = sub.add_parser("batch", help="write and read batch files for engines outside examharness")
    bsub = p.add_subparsers(dest="action", required=True, parser_class=parser_class)
    e = bsub.add_parser("export", help="write the requests a run still lacks as a batch input file")
    e.add_argument("paths", nargs="+", type=Path, metavar="RUN_OR_EXAMS",
                   help="a run folder, or exam files or folders (a new run folder is made)")  # fmt: skip
    e.add_argument("--out", type=Path, required=True, help="batch input file (JSONL) to write")
    e.add_argument("--model", help="the model the engine runs (its name goes into every request)")
    e.add_argument("--base-url", help="the engine's address, if any (part of the request cache key)")
    e.add_argument("--results", type=Path, default=Path("results"), help="results folder (default results/)")
    e.add_argument("--limit", type=int, help="first N items of each exam")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-vision", action="store_true")
    e.add_argument("--mc-mode", choices=["letter_if_needed", "two_stage", "single"])
    e.add_argument("--temperature", type=float)
    e.add_argument("--max-tokens", type=int)
    e.add_argument("--samples", type=int, help="code sections: programs sampled per item (default 1)")
    e.add_argument("--prompts", type=Path, help="folder of templates overriding prompts/")
    e.add_argument("--no-cache", action="store_true", help="do not take replies from the request cache")
    e.add_argument("--cache", type=Path)
    i = bsub.add_parser("import", help="record a batch output file (OpenAI or vLLM format) in its run")
    i.add_argument("run_dir", type=Path)
    i.add_argument("file", type=Path, help="the engine's output file (JSONL)")
    i.add_argument("--no-score", action="store_true", help="do not score once every item is recorded")
    i.add_argument("--no-cache", action="store_true", help="do not write replies to the request cache")
    i.add_argument("--cache", type=Path)
    i.add_argument("--prompts", type=Path, help="folder of templates overriding prompts/")
    i.add_argument("--concurrency", type=int, help="code items run at once; grader requests in flight")
    i.add_argument("--timeout", type=float, help="seconds per grader request")
    i.add_argument("--max-attempts", type=int, default=6, help="attempts per grader request (default 6)")
    add_grader(i)
    c = bsub.add_parser("cancel", help="cancel a run's submitted batches (a resume records what they lack)")
    c.add_argument("run_dir", type=Path)
    c.add_argument("--timeout", type=float, help="seconds per API call (default 120)")


def batch_command(args: argparse.Namespace) -> int:
    from examharness.api import RunOptions, run_exams
    from examharness.batch.state import BatchFolder
    from examharness.cli.commands import finish_run
    from examharness.results import RunFolder

    if args.action == "cancel":
        from examharness.batch.session import cancel_batches

        cancelled = cancel_batches(args.run_dir, timeout=args.timeout)
        for batch_id, status in cancelled:
            print(f"{batch_id}: {status}")
        if not cancelled:
            print(f"no submitted batch to cancel in {args.run_dir}", file=sys.stderr)
        return 0
    if args.action == "export":
        run = args.paths[0] if len(args.paths) == 1 and (args.paths[0] / "run.json").is_file() else None
        if run is None and args.model is None:
            raise InputError.one("command line", None, "--model", "exporting exams needs --model NAME")
        opts = RunOptions(
            paths=[] if run else args.paths, resume=run, model=args.model, base_url=args.base_url,
            out=args.results, limit=args.limit, seed=args.seed, vision=not args.no_vision,
            use_cache=not args.no_cache, cache_path=args.cache, mc_mode=args.mc_mode,
            temperature=args.temperature, max_tokens=args.max_tokens, samples=args.samples,
            prompts_dir=args.prompts, batch=True, batch_export=args.out,
        )  # fmt: skip
    else:
        opts = RunOptions(
            resume=args.run_dir, use_cache=not args.no_cache, cache_path=args.cache,
            prompts_dir=args.prompts, concurrency=args.concurrency, batch_import=args.file,
        )  # fmt: skip
        RunFolder.open(args.run_dir)
    run_dir, counters = run_exams(opts)
    state = BatchFolder(RunFolder(run_dir)).read()
    if args.action == "export":
        if not state.waiting:
            print(f"nothing to export: every item of {run_dir} is recorded", file=sys.stderr)
        else:
            print(f"wrote {state.jobs[-1].requests} requests ({_items(state.waiting)}) to {args.out}; "
                  f"record the engine's output with: examharness batch import {run_dir} RESULTS.jsonl",
                  file=sys.stderr)  # fmt: skip
        print(run_dir)
        return 0
    if state.waiting:
        print(f"{_items(state.waiting)}: run `examharness batch export {run_dir} --out REQUESTS.jsonl`",
              file=sys.stderr)  # fmt: skip
        print(run_dir)
        return 0
    return finish_run(args, run_dir, counters)


def _items(waiting: dict[str, int]) -> str:
    """``12 items need a second stage, 3 items need a first request``."""
    second = waiting.get("answer", 0)
    first = sum(waiting.values()) - second
    parts = [f"{second} items need a second stage"] if second else []
    parts += [f"{first} items need a first request"] if first else []
    return ", ".join(parts)
