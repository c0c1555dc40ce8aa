"""``examharness contamination``: run the check, show it, and store it with runs or exams."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from examharness.contamination import ContaminationReport, render_text, run_contamination, save_report
from examharness.errors import InputError
from examharness.exam import find_exam_files


@contextmanager
def _bytes_progress() -> Iterator[Callable[[int, int], None]]:
    """A bar in MB and MB/s on a terminal; nothing when output is not a terminal."""
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


def contamination_command(args: argparse.Namespace) -> int:
    exam_files = find_exam_files(args.exams)
    if not exam_files:
        raise InputError.one(" ".join(map(str, args.exams)), None, "exams", "no exam files found")
    missing = [p for p in args.corpus if not p.exists()]
    if missing:
        raise InputError.one(missing[0], None, "--corpus", "no such file or folder")
    with _bytes_progress() as progress:
        report = run_contamination(
            exam_files, args.corpus, seed=args.seed, include_options=args.include_options,
            text_field=args.text_field, progress=progress,
        )  # fmt: skip
    for skipped in report.skipped:
        print(f"{skipped.file}: skipped: {skipped.reason}", file=sys.stderr)
    if args.out is not None:
        save_report(report, args.out)
    for run_dir in args.run:
        _store_with_run(run_dir, report)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(render_text(report))
    return 0


def _store_with_run(run_dir: Path, report: ContaminationReport) -> None:
    from examharness.api import score_run
    from examharness.results import RunFolder

    RunFolder.open(run_dir).write_contamination(report)
    score_run(run_dir)
    print(f"stored with {run_dir} and rescored", file=sys.stderr)
