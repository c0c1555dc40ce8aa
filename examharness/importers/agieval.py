"""AGIEval (Zhong et al., 2023) JSONL files -> an exam in the GPT-4 report's few-shot MC format.

One file is one section; several files (``--section-per-file``) make one exam with a section per
task, as LSAT's three AGIEval parts. Rows are read and checked in
:mod:`examharness.importers.agieval_rows`.

Exemplars come only from AGIEval's ``few_shot_prompts.csv`` (``--fewshot``), never from the test
items: an exemplar taken from the file being scored would show the model some of its answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from examharness.errors import InputError
from examharness.exam import (
    Exam,
    ExamScoring,
    MCExemplar,
    NumericItem,
    Passage,
    ResponseExemplar,
    Sampling,
    Section,
)
from examharness.importers import RowReport, Warn, checked_exam_id, file_digest, no_items
from examharness.importers.agieval_rows import FEWSHOT_COLUMN, PassageTable, read_fewshot, read_items

CITATION = (
    "AGIEval: Zhong et al., AGIEval: A Human-Centric Benchmark for Evaluating Foundation Models, "
    "2023 (arXiv:2304.06364), github.com/microsoft/AGIEval"
)


def dataset_license(path: Path) -> str:
    """The license of the dataset ``path`` belongs to, read from AGIEval's ``LICENSE-datasets``.

    That file has one ``# NAME`` section per source dataset; the first section whose name
    matches the task's family is used (a later ``# MATH`` section actually holds JEC-QA's terms).
    """
    family = {"sat": "SAT", "lsat": "LSAT", "aqua": "AQUA-RAT", "logiqa": "LogiQA", "math": "MATH"}
    key = family.get(path.stem.split("-")[0], path.stem)
    licenses = path.parent / "LICENSE-datasets"
    if not licenses.is_file():
        return f"unknown: no LICENSE-datasets beside {path.name}; see AGIEval's data/v1/LICENSE"
    text = licenses.read_text(encoding="utf-8")
    for section in re.split(r"^# ", text, flags=re.MULTILINE)[1:]:
        name, _, body = section.partition("\n")
        if key.lower() not in [n.strip().lower() for n in name.split(",")]:
            continue
        kinds = {"MIT License": "MIT", "Apache License, Version 2.0": "Apache-2.0",
                 "CC BY-NC-SA 4.0": "CC BY-NC-SA 4.0 (non-commercial, share-alike)"}
        kind = next((v for k, v in kinds.items() if k in body), body.strip().splitlines()[0])
        lines = [ln.strip() for ln in body.splitlines()]
        holder = next((ln for ln in lines if ln.startswith("Copyright")), None)
        return f"{kind} ({holder})" if holder else kind
    return f"unknown: no '# {key}' section in {licenses.name}"


class _TaskPart(BaseModel):
    """One AGIEval file's share of an exam: its section and the passages it uses."""

    section: Section
    passages: dict[str, Passage]
    n_exemplars: int


def _task_part(
    path: Path, *, id_prefix: str, key_prefix: str, shots: int | None, fewshot: Path | None,
    report: RowReport,
) -> _TaskPart:  # fmt: skip
    """Items and exemplars of one task file; passages are keyed ``<key_prefix>pN``."""
    task = path.stem
    passages = PassageTable()
    items = read_items(path, id_prefix, passages, report, key_prefix)
    if not items:
        report.finish()  # bad rows first, when they are why nothing is left
        raise no_items(path)
    exemplars = read_fewshot(fewshot, task, passages, report, key_prefix) if fewshot else []
    if shots is not None and fewshot is not None:
        if shots < 0 or shots > len(exemplars):
            message = f"{shots} exemplars asked for, the file has {len(exemplars)} for this task"
            raise InputError.one(fewshot, None, FEWSHOT_COLUMN.get(task, task), message)
        exemplars = exemplars[:shots]
    used = {ex.passage for ex in exemplars}
    exemplar_key = f"{key_prefix}fewshot-"
    kept = {k: p for k, p in passages.entries.items() if not k.startswith(exemplar_key) or k in used}
    numeric = all(isinstance(item, NumericItem) for item in items)
    shown: list[MCExemplar | ResponseExemplar] = list(exemplars)
    section = Section(
        id=task, title=f"AGIEval {task}", kind="multiple_choice", template="mc_fewshot",
        sampling=Sampling(mode="single") if numeric else None,
        exemplars=shown, items=items,
    )  # fmt: skip
    return _TaskPart(section=section, passages=kept, n_exemplars=len(exemplars))


def import_agieval(
    paths: Path | Sequence[Path],
    *,
    exam_id: str | None = None,
    title: str | None = None,
    published_label: str | None = None,
    section_per_file: bool = False,
    shots: int | None = None,
    fewshot: Path | None = None,
    scale: str | None = None,
    skip_bad: bool = False,
    warn: Warn | None = None,
) -> Exam:
    """Build one exam from AGIEval task files.

    One file gives one section, items ``<exam id>-<row>``. With ``section_per_file`` every file
    is a section of its own (id: the task, e.g. ``lsat-ar``; items ``<exam id>-<task>-<row>``,
    passages ``<task>-pN``), each with its task's exemplars, so LSAT's three AGIEval parts form
    one exam. Several files need ``section_per_file``: each task has its own exemplars.
    ``shots`` exemplars per task come from ``fewshot`` (all of the task's, when ``shots`` is
    None); without ``fewshot`` there are none, whatever ``shots`` says. Raises
    :class:`InputError` listing every bad row (unless ``skip_bad``), or when fewer exemplars
    exist than asked for.
    """
    files = [paths] if isinstance(paths, Path) else list(paths)
    if not files or (len(files) > 1 and not section_per_file):
        raise InputError.one("command line", None, "files", "give one AGIEval file, or several "
                             "with --section-per-file (each task has its own exemplars)")
    tasks = [f.stem for f in files]
    if len(set(tasks)) < len(tasks):
        raise InputError.one("command line", None, "files", f"a task is given twice: {tasks}")
    default = f"agieval-{'-'.join(tasks)}"
    given = exam_id is not None
    exam_id = checked_exam_id(exam_id if exam_id is not None else default, given=given, source=files[0])
    report = RowReport(skip_bad=skip_bad, warn=warn)
    parts = [
        _task_part(f, id_prefix=f"{exam_id}-{f.stem}" if section_per_file else exam_id,
                   key_prefix=f"{f.stem}-" if section_per_file else "", shots=shots,
                   fewshot=fewshot, report=report)
        for f in files
    ]  # fmt: skip
    report.finish()
    if fewshot is None and shots:
        report.warn(f"note: {files[0]}: no --fewshot file, so no exemplars: they are never taken "
                    "from the test items, which would show the model answers it is scored on")
    names = ", ".join(f.name for f in files)
    source = f"{CITATION}; items from {names}"
    if fewshot is not None:
        shown = ", ".join(str(p.n_exemplars) for p in parts)
        source += f", {shown} exemplars from {fewshot.name}"
    licenses = "; ".join(dict.fromkeys(dataset_license(f) for f in files))
    n_items = sum(len(p.section.items) for p in parts)
    shot_counts = "/".join(dict.fromkeys(str(p.n_exemplars) for p in parts))
    return Exam(
        id=exam_id, title=title or f"AGIEval: {', '.join(tasks)}", source=source,
        license=f"{licenses}; AGIEval repository: MIT (Microsoft)",
        description=f"{n_items} items from AGIEval {', '.join(tasks)}, {shot_counts}-shot.",
        published_label=published_label,
        passages={k: v for p in parts for k, v in p.passages.items()},
        sections=[p.section for p in parts], scoring=ExamScoring(scale=scale),
    )  # fmt: skip


def agieval_header(paths: Path | Sequence[Path], fewshot: Path | None) -> str:
    """The comment that opens a generated AGIEval exam file: where its items came from."""
    files = [paths] if isinstance(paths, Path) else list(paths)
    lines = [
        "Generated by `examharness import agieval` from the files below; re-run it rather than",
        "editing this file by hand.",
        f"Source: {CITATION}.",
    ]
    for path in files:
        lines.append(f"Items: {path.name} (sha256 {file_digest(path)}); "
                     f"license: {dataset_license(path)}.")
    lines.append("Item ids are <exam id>-<line> (several files: <exam id>-<task>-<line>) with "
                 "<line> the 1-based line of the JSONL file.")
    if fewshot is not None:
        digest = file_digest(fewshot)
        lines.append(f"Exemplars: {fewshot.name} (sha256 {digest}), never the test items.")
    return "\n".join(lines)
