"""The CLI as users call it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from examharness.cli import main

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEMO = REPO / "exams" / "demo" / "demo.yaml"


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examharness.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_validate_shipped_exams_exits_0() -> None:
    result = _cli("validate", "exams")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_validate_bad_file_one_line_no_traceback(tmp_path: Path) -> None:
    shutil.copytree(DEMO.parent / "images", tmp_path / "images")
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO.read_text().replace("answer: B\n", "answer: E\n", 1))
    result = _cli("validate", str(bad))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{bad}:")
    assert "exemplars.1.answer: exemplar answer 'E' is not one of its options A, B, C, D" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--concurrency", "0", "exams/demo"],
        ["run", "--concurrency", "many", "exams/demo"],
        ["render", "exams/demo/demo.yaml", "--item", "no-such-item"],
        ["report", "/nonexistent/run"],
        ["frobnicate"],
        ["run", "exams/demo", "--model", "m", "--api-key-env", "EXAMHARNESS_TEST_UNSET_KEY"],
    ],
)
def test_bad_input_is_one_line_and_nonzero(args: list[str]) -> None:
    result = _cli(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("usage:")]
    assert len(errors) == 1, result.stderr


def test_render_shows_exact_messages_and_image_tag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(DEMO), "--item", "mc-3", "--no-vision"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("=== user ===\nANSWER KEY")
    assert "Problem 3. The town library" in out and "IMAGE: img_" in out
    assert "Choose from the following options: [A] Monday [B] Tuesday [C] Wednesday [D] Thursday" in out
    assert main(["render", str(DEMO), "--item", "mc-3", "--json"]) == 0
    messages = json.loads(capsys.readouterr().out)
    kinds = [part["type"] for part in messages[0]["content"]]
    assert "image_url" in kinds and "IMAGE:" not in json.dumps(messages)


def test_list_shows_sections_counts_and_scale(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # at 80 columns rich squeezes the kinds column
    assert main(["list", str(REPO / "exams" / "demo")]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "multi_select" in out


@pytest.mark.skipif(not (SHARED / "data" / "mmlu").is_dir(), reason="../shared/data not present")
def test_import_mmlu_then_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = next((SHARED / "data" / "mmlu").rglob("*_dev.csv"))
    test = next(p for p in (SHARED / "data" / "mmlu").rglob("*_test.csv") if p.name[:-9] == dev.name[:-8])
    out = tmp_path / "m.yaml"
    args = [
        "import",
        "mmlu",
        "--dev",
        str(dev),
        "--test",
        str(test),
        "--out",
        str(out),
        "--id",
        "m",
        "--shots",
        "2",
    ]
    assert main(args) == 0
    rows = sum(1 for _ in test.open(encoding="utf-8"))
    assert f"{rows} items" in capsys.readouterr().out or rows > 0
    assert main(["validate", str(out)]) == 0
    assert main(["render", str(out), "--item", "m-1"]) == 0
    text = capsys.readouterr().out
    assert text.count("Answer:") == 3 and "\nA. " in text and "\nD. " in text


def test_help_lists_commands() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for command in ("validate", "list", "render", "import", "run", "score", "report", "compare", "chart",
                    "grade", "contamination"):  # fmt: skip
        assert command in result.stdout
