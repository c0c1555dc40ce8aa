"""The commands that read runs and checks: report, compare, chart, grade, contamination."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from examharness.cli.commands import print_json
from examharness.errors import InputError


def report(args: argparse.Namespace) -> int:
    from examharness import report as views

    if args.published:
        return views.report_published(args.published, as_json=args.json)
    if args.run_dir is None:
        raise InputError.one("command line", None, "run_dir", "give a run folder or --published NAME")
    from examharness.api import score_run
    from examharness.results import RunFolder

    # Another edition: rescored in memory from the stored grades; the run folder is not changed.
    scores = (RunFolder.open(args.run_dir).read_scores() if args.edition is None
              else score_run(args.run_dir, edition=args.edition, write=False, use_cache=False))
    if args.html:
        from examharness.htmlreport import write_html_report

        write_html_report(args.run_dir, args.html, scores)
        print(args.html)
        return 0
    if args.json:
        print_json(views.report_json(scores))
    else:
        views.print_report(scores, sections=args.sections)
        _print_endpoints(args.run_dir)
    return 0


def _print_endpoints(run_dir: Path) -> None:
    """An endpoint pool's per-endpoint counts, from ``run.json``'s summary."""
    from examharness.backends.endpoints import describe_endpoints
    from examharness.results import RunFolder

    lines = describe_endpoints(RunFolder.open(run_dir).read_config().summary)
    if lines:
        print("endpoints:\n" + "\n".join(lines))


def compare(args: argparse.Namespace) -> int:
    from examharness.compare import compare_runs, print_comparison

    if len(args.runs) < 2:
        raise InputError.one("command line", None, "runs", "compare needs at least two run folders")
    result = compare_runs(args.runs, n_boot=args.bootstrap)
    if args.json:
        print_json(result.model_dump(mode="json"))
    else:
        print_comparison(result)
    return 0


def chart(args: argparse.Namespace) -> int:
    """Draw to ``--out`` (.png/.svg) and/or print the data with ``--json``."""
    if args.languages:
        from examharness.cli.languages import language_chart

        return language_chart(args)
    from examharness.chart import chart_data_json, render_chart
    from examharness.chartdata import chart_data_for

    if args.out is None and not args.json:
        raise InputError.one("command line", None, "--out", "give --out FILE.png|FILE.svg (or --json)")
    labels = None
    if args.published_runs:
        labels = [x.strip() for x in args.published_runs.split(",") if x.strip()]
    data = chart_data_for(
        list(args.runs), published=args.published, published_runs=labels, baseline=args.baseline,
        shared_only=args.shared_only, title=args.title,
    )  # fmt: skip
    if args.out is not None:
        render_chart(data, args.out)
    if args.json:
        print(chart_data_json(data))
    if args.out is not None:
        print(f"wrote {args.out}", file=sys.stderr if args.json else sys.stdout)
    return 0


def grade(args: argparse.Namespace) -> int:
    from examharness.human import export_grades, import_grades

    if args.action == "export":
        n = export_grades(args.run_dir, args.out, all_items=args.all)
        print(f"wrote {n} answers to {args.out}")
    else:
        n = import_grades(args.run_dir, args.file, grader=args.grader)
        print(f"imported {n} grades into {args.run_dir}; run `examharness score {args.run_dir}`")
    return 0


@contextmanager
def _bytes_progress() -> Iterator[Callable[[int, int], None]]:
    """A bar in MB and MB/s on a terminal; nothing when output is not a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda done, total: None
        return
    bar = Progress(
        TextColumn("[bold]corpus"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=console,
    )  # fmt: skip
    task = bar.add_task("scan", total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)


def contamination(args: argparse.Namespace) -> int:
    """Run the check, show it, and store it with ``--out`` and/or runs (which are rescored)."""
    from examharness.api import check_contamination, store_contamination
    from examharness.contamination import render_text, save_report

    with _bytes_progress() as progress:
        report = check_contamination(
            args.exams, args.corpus, seed=args.seed, include_options=args.include_options,
            text_field=args.text_field, progress=progress,
        )  # fmt: skip
    for skipped in report.skipped:
        print(f"{skipped.file}: skipped: {skipped.reason}", file=sys.stderr)
    if args.out is not None:
        save_report(report, args.out)
    for run_dir in args.run:
        store_contamination(run_dir, report)
        print(f"stored with {run_dir} and rescored", file=sys.stderr)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(render_text(report))
    return 0


def scales(args: argparse.Namespace) -> int:
    from examharness.scalecheck import check_published, print_check
    from examharness.scales import REPO_SCALES

    result = check_published(args.published, [*args.scales, REPO_SCALES], edition=args.edition)
    if args.json:
        print_json(result.model_dump(mode="json"))
    else:
        print_check(result)
    return 0
