"""The layout is the data flow: a view loads no stage before it (no runner, no grading, no
contamination scanner), so reading a report never pulls in the machinery that made it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

EARLIER_STAGES = (
    "examharness.runner", "examharness.grading", "examharness.rubric", "examharness.extract",
    "examharness.contamination", "examharness.backends.openai_compat", "examharness.cache",
)  # fmt: skip


def loaded_by(module: str) -> list[str]:
    """The package modules a fresh interpreter has loaded after ``import module``."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [m for m in json.loads(out) if m.startswith("examharness")]


def test_import_report_loads_no_runner_grading_or_contamination_module() -> None:
    loaded = loaded_by("examharness.report")
    assert "examharness.report" in loaded
    assert [m for m in loaded if m.startswith(EARLIER_STAGES)] == []


@pytest.mark.parametrize("view", ["examharness.compare", "examharness.chart", "examharness.htmlreport"])
def test_views_load_no_scanner_runner_or_grader(view: str) -> None:
    assert [m for m in loaded_by(view) if m.startswith(EARLIER_STAGES)] == []


def test_scoring_loads_no_view_and_no_scanner() -> None:
    loaded = loaded_by("examharness.scorecard")
    views = ("examharness.report", "examharness.compare", "examharness.chart", "examharness.htmlreport")
    assert [m for m in loaded if m.startswith((*views, "examharness.contamination"))] == []


def test_public_api_is_curated_and_lazy() -> None:
    import examharness

    assert all(getattr(examharness, name) is not None for name in examharness.__all__)
    assert loaded_by("examharness") == ["examharness"]


def test_run_command_modules_load_no_jinja_numpy_yaml_or_extraction_rules() -> None:
    """A rerun served from the item and grade memo (its exams from the parse cache) parses,
    renders, extracts and fits nothing: importing what it runs must not pay for the YAML parsers,
    Jinja, numpy or the few hundred extraction patterns."""
    code = ("import json, sys, examharness.api, examharness.cli.commands, examharness.grading; "
            "print(json.dumps(sorted(sys.modules)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy = ("jinja2", "numpy", "yaml", "examharness.safeyaml", "examharness.linetree",
             "examharness.extract.rules", "examharness.extract.choice")  # fmt: skip
    assert [m for m in json.loads(out) if m.startswith(heavy)] == []
