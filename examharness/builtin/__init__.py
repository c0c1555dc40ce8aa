"""The files examharness ships: prompt templates, built-in scales, and the exams in ``exams/``.

They are package resources (:mod:`importlib.resources`), so a regular (non-editable) install
finds them from any folder. There is one editable copy of each: the repository's top-level
``prompts/`` and ``exams/``. This package reaches them through two symlinks,
``examharness/builtin/prompts -> ../../prompts`` and ``examharness/builtin/exams -> ../../exams``;
building a wheel copies the files they point to (``package-data`` in ``pyproject.toml``), so a
wheel holds real files and a checkout holds one copy, never two that can drift.

The functions return real directories: templates and scales are read with ordinary file APIs
(Jinja's ``FileSystemLoader``, ``Path.read_text``), which an install on a file system supports.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from examharness.errors import InputError

__all__ = ["exams_dir", "prompts_dir", "scales_dir"]


def _folder(*parts: str) -> Path:
    """The shipped folder ``parts``; a package imported from a zip has none (a clear error)."""
    found = resources.files(__name__).joinpath(*parts)
    if not isinstance(found, Path):
        raise InputError.one("examharness", None, "/".join(parts),
                             "the built-in files need examharness installed on a file system")
    return found


def prompts_dir() -> Path:
    """The built-in templates (``prompts/*.j2``), searched after the user's and the exam's own."""
    return _folder("prompts")


def exams_dir() -> Path:
    """The shipped exams (``demo/``, the report suite) and the built-in ``scales/``."""
    return _folder("exams")


def scales_dir() -> Path:
    """The built-in scales (``exams/scales/*.yaml``), searched after the exam's own."""
    return _folder("exams", "scales")

