"""CLI for predictable scaling: ``loss``, ``scaling`` and the ``run --family`` path.

Each function turns parsed arguments into one library call (:mod:`examharness.lossrun`,
:mod:`examharness.familyrun`, :mod:`examharness.scalingdata`) and prints the result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from examharness.errors import InputError


def add_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("loss", help="held-out loss (nats/token, bits/byte) of a model or a family")
    p.add_argument("texts", nargs="*", type=Path, help=".txt files, .jsonl files ({'text', 'id'}) or folders")
    p.add_argument("--family", type=Path, help="model family file (YAML)")
    p.add_argument("--model", help="one model; omit both to use the embedded local model")
    p.add_argument("--base-url")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--cache", type=Path)
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--resume", type=Path, metavar="RUN_DIR")
    p.add_argument("--retry-errors", action="store_true")
    p.add_argument("--timeout", type=float)
    p.add_argument("--max-attempts", type=int, default=6)
    p.add_argument(
        "--bos-text", default="", help="prepend this BOS token text (llama-cpp-python, see README)"
    )
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("scaling", help="fit scaling laws on small members and predict the large ones")
    p.add_argument("--loss", type=Path, metavar="LOSS_RUN", help="a folder written by `examharness loss`")
    p.add_argument("--capability", type=Path, metavar="FAMILY_RUN", help="a folder written by `run --family`")
    p.add_argument(
        "--cutoff", type=float, help="fit members with compute <= this (FLOPs); default: all but the largest"
    )
    p.add_argument("--exam", help="capability on this exam's problems only (default: every problem)")
    p.add_argument("--metric", choices=["nats_per_token", "bits_per_byte"], default="nats_per_token")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the bands (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--charts", type=Path, metavar="DIR", help="write Figures 1-3 as PNG files here")
    p.add_argument("--json", action="store_true")


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", type=Path, help="run every member of this family file")
    p.add_argument(
        "--family-samples",
        type=int,
        default=1,
        help="with --family: samples per item and member, for per-problem pass rates",
    )


def _positive(value: int, flag: str) -> None:
    if value < 1:
        raise InputError.one("command line", None, flag, "must be at least 1")


def loss_command(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from examharness.lossrun import LossOptions, measure_loss
    from examharness.progress import progress_display

    _positive(args.concurrency, "--concurrency")
    _positive(args.max_attempts, "--max-attempts")
    if not args.texts and args.resume is None:
        raise InputError.one("command line", None, "TEXTS", "give text files or folders, or --resume RUN_DIR")
    opts = LossOptions(
        texts=args.texts,
        family=args.family,
        model=args.model,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
        use_cache=not args.no_cache,
        cache_path=args.cache,
        out=args.out,
        resume=args.resume,
        retry_errors=args.retry_errors,
        timeout=args.timeout,
        max_attempts=args.max_attempts,
        bos_text=args.bos_text,
    )
    with progress_display() as on_progress:
        run_dir, summary = measure_loss(opts, on_progress)
    if args.json:
        print(summary.model_dump_json(indent=2))
    else:
        table = Table("member", "compute (FLOPs)", "texts ok/error", "tokens", "nats/token", "bits/byte")
        for m in summary.members:
            table.add_row(
                m.label or m.member,
                f"{m.compute.flops:.3g} ({m.compute.method})" if m.compute else "-",
                f"{m.ok}/{m.error}",
                f"{m.scored_tokens:,}",
                f"{m.nats_per_token:.4f}" if m.nats_per_token is not None else "-",
                f"{m.bits_per_byte:.4f}" if m.bits_per_byte is not None else "-",
            )
        Console().print(table)
    errors = sum(m.error for m in summary.members)
    if errors:
        print(
            f"{errors} text(s) failed: finish with `examharness loss --resume {run_dir} --retry-errors`",
            file=sys.stderr,
        )
    print(run_dir)
    return 0


def family_run_command(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from examharness.cli.commands import run_options
    from examharness.familyrun import run_family
    from examharness.progress import progress_display

    if args.model is not None or args.base_url is not None:
        raise InputError.one("command line", None, "--family", "the family file names each member's model")
    opts = run_options(args)
    with progress_display() as on_progress:
        family_dir, rates = run_family(
            args.family, opts, samples=args.family_samples, on_progress=on_progress
        )
    exams = sorted({e for m in rates.members for e in m.accuracy})
    table = Table("member", "compute (FLOPs)", "problems", "samples", *exams)
    for m in rates.members:
        table.add_row(
            m.label or m.member,
            f"{m.compute.flops:.3g}" if m.compute else "-",
            str(len(m.problems)),
            str(m.samples),
            *(f"{100 * m.accuracy[e]:.1f}%" if e in m.accuracy else "-" for e in exams),
        )
    Console().print(table)
    print(family_dir)
    return 0


def scaling_command(args: argparse.Namespace) -> int:
    from examharness.scalingdata import scaling_report

    report = scaling_report(
        loss_dir=args.loss,
        family_dir=args.capability,
        cutoff=args.cutoff,
        exam=args.exam,
        metric=args.metric,
        n_boot=args.bootstrap,
        seed=args.seed,
    )
    written: list[Path] = []
    if args.charts is not None:
        from examharness.scalingchart import write_figures

        written = write_figures(report, args.charts)
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        _print_report(report)
    for path in written:
        print(path, file=sys.stderr)
    return 0


def _print_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for name, part in (("loss", report.loss), ("capability", report.capability)):
        if part is None:
            continue
        law = part.law
        formula = (
            f"L = {law.a:.6g}·C^{law.b:.5f} + {law.c:.6g}"
            if name == "loss"
            else f"−E[log pass rate] = {law.alpha:.6g}·C^(−{law.k:.5f})"
        )
        console.print(f"[bold]{name}[/bold]: {formula}  (fitted on {len(part.fitted)} members)")
        table = Table("member", "compute (FLOPs)", "predicted", "95% band", "actual", "error")
        for p in part.predictions:
            band = f"{p.band.low:.4g} – {p.band.high:.4g}" if p.band else "-"
            table.add_row(
                p.label or p.member,
                f"{p.compute:.3g}",
                f"{p.predicted:.4g}",
                band,
                "-" if p.actual is None else f"{p.actual:.4g}",
                "-" if p.error is None else f"{p.error:+.4g} ({100 * (p.relative_error or 0):+.1f}%)",
            )
        console.print(table)
    if report.capability is not None and report.capability.excluded:
        console.print(
            f"{len(report.capability.excluded)} problem(s) left out: some fitted member never solved them"
        )
