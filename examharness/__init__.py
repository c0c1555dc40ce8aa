"""examharness: run human exams against language models and place them among human test-takers.

The public API, loaded on first use so that ``import examharness.report`` stays light::

    from examharness import RunOptions, run_exams, score_run, RunFolder, compare_runs
    run_dir, _ = run_exams(RunOptions(paths=[Path("exams/demo")]))
    scores = score_run(run_dir)                     # grades.jsonl + scores.json
    scores = RunFolder.open(run_dir).read_scores()  # what every report reads
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Comparison", "ContaminationReport", "ExamScore", "GraderOptions", "InputError", "RunConfig",
    "RunFolder", "RunOptions", "RunScores", "__version__", "check_contamination", "compare_runs",
    "load_exams", "report_json", "run_exams", "score_run", "store_contamination",
]  # fmt: skip

_HOME = {
    "RunOptions": "plan", "load_exams": "plan", "run_exams": "api", "GraderOptions": "grader",
    "score_run": "api", "check_contamination": "api", "store_contamination": "api",
    "RunFolder": "results", "RunConfig": "records", "RunScores": "records", "ExamScore": "records",
    "report_json": "report", "compare_runs": "compare", "Comparison": "compare",
    "ContaminationReport": "contamfile", "InputError": "errors",
}  # fmt: skip
"""Public name -> the module (under ``examharness``) that defines it."""

if TYPE_CHECKING:
    from examharness.api import (
        check_contamination,
        run_exams,
        score_run,
        store_contamination,
    )
    from examharness.compare import Comparison, compare_runs
    from examharness.contamfile import ContaminationReport
    from examharness.errors import InputError
    from examharness.grader import GraderOptions
    from examharness.plan import RunOptions, load_exams
    from examharness.records import ExamScore, RunConfig, RunScores
    from examharness.report import report_json
    from examharness.results import RunFolder


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'examharness' has no attribute {name!r}")
    return getattr(importlib.import_module(f"examharness.{_HOME[name]}"), name)
