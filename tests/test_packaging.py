"""A built wheel carries the templates, scales, published data and exams as package resources.

The wheel is built from a copy of the checkout (offline: ``--no-build-isolation``), unpacked,
and put first on ``PYTHONPATH`` of a child process that runs in an empty folder, so nothing can
be found through the source tree: this is the regular, non-editable install the issue was about.
CI goes further (``.ci/run``: a fresh venv, ``pip install`` of the wheel, a whole run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "examharness", "prompts", "exams")


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, unzipped (what ``pip install`` would put in site-packages)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(origin, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(work / "dist"), str(src)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (work / "dist").glob("examharness-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_wheel_holds_real_files_not_links(unpacked_wheel: Path) -> None:
    builtin = unpacked_wheel / "examharness" / "builtin"
    for name in ("prompts/mc_fewshot.j2", "exams/scales/sat_math.yaml", "exams/demo/demo.yaml",
                 "exams/demo/images/books.png"):
        shipped = builtin / name
        assert shipped.is_file() and not shipped.is_symlink(), name
        assert shipped.read_bytes() == (ROOT / name).read_bytes(), name
    assert (unpacked_wheel / "examharness" / "data" / "published" / "gpt-4-technical-report.json").is_file()


def test_installed_package_finds_its_files_from_an_empty_folder(unpacked_wheel: Path, tmp_path: Path) -> None:
    """Outside the checkout, templates and scales come from the installed package."""
    script = (
        "import examharness, examharness.builtin as b, examharness.published as p\n"
        "from examharness.scales import load_scale\n"
        "print(examharness.__file__)\n"
        "print(b.prompts_dir() / 'mc_fewshot.j2')\n"
        "print(load_scale('gre_quantitative', [b.scales_dir()]).id)\n"
        "print(p.load_published('gpt-4-technical-report').id)\n"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run(unpacked_wheel, empty, "-c", script)
    assert result.returncode == 0, result.stderr
    module, template, scale, published = result.stdout.splitlines()
    assert Path(module).is_relative_to(unpacked_wheel)
    assert Path(template).is_relative_to(unpacked_wheel) and Path(template).is_file()
    assert (scale, published) == ("gre_quantitative", "gpt-4-technical-report")


def test_installed_cli_validates_and_renders_an_exam_copied_out_of_the_repo(
    unpacked_wheel: Path, tmp_path: Path
) -> None:
    """The issue's failure: ``template 'mc_fewshot' not found`` / ``no scale named ...``."""
    exam = tmp_path / "elsewhere" / "demo"
    shutil.copytree(ROOT / "exams" / "demo", exam)
    cli = ("-m", "examharness.cli")
    checked = _run(unpacked_wheel, tmp_path, *cli, "validate", str(exam))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    shown = _run(unpacked_wheel, tmp_path, *cli, "render", str(exam / "demo.yaml"), "--item", "mc-1")
    assert shown.returncode == 0, shown.stderr
    assert "Choose from the following options" in shown.stdout
