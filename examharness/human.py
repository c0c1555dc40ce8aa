"""``grade export`` / ``grade import``: human grading of free-response and essay answers via CSV.

Export writes one row per answer to grade, with everything a grader needs (prompt, rubric,
reference, the allowed scale and the response) and blank ``points``/``grader``/``comment``
columns. Import checks every row first — the item exists in the run and is a rubric item,
``points`` is on the item's scale, a grader is named (column or ``--grader``) — and writes
nothing unless every row is good; problems come back as ``FILE:ROW: field: message``, where ROW
counts CSV records as a spreadsheet shows them (the header is row 1). Rows with blank points
are skipped (not graded yet). Good rows are appended to ``human_grades.jsonl``, which
``score`` applies on top of any model grade; nothing here calls a model or rescoring.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from pydantic import BaseModel

from examharness.errors import InputError, Problem
from examharness.exam import EssayItem, FreeResponseItem, LoadedExam
from examharness.grading import grade_run, item_index
from examharness.records import NEEDS_GRADE, GradedItem
from examharness.results import RunFolder, load_run_exams

COLUMNS = ["exam_id", "item_id", "section_id", "item_type", "prompt", "rubric", "reference",
           "scale_min", "scale_max", "scale_step", "response", "points", "grader", "comment"]  # fmt: skip
REQUIRED = ("exam_id", "item_id", "points")
FREE_RESPONSE_STEP = 0.5


class RubricScale(BaseModel):
    """The points an answer may get: ``min`` to ``max`` in steps of ``step`` from ``min``."""

    min: float
    max: float
    step: float

    def problem(self, points: float) -> str | None:
        if not math.isfinite(points) or not self.min <= points <= self.max:
            return f"{points:g} is outside the scale {self.min:g}-{self.max:g}"
        steps = (points - self.min) / self.step
        if abs(steps - round(steps)) > 1e-9:
            return f"{points:g} is not a multiple of {self.step:g} (scale {self.min:g}-{self.max:g})"
        return None


class RubricTarget(BaseModel):
    """A gradable item of the run: where it sits and its scale."""

    exam_id: str
    section_id: str
    item: FreeResponseItem | EssayItem

    @property
    def scale(self) -> RubricScale:
        if isinstance(self.item, EssayItem):
            s = self.item.scale
            return RubricScale(min=s.min, max=s.max, step=s.step)
        return RubricScale(min=0.0, max=self.item.max_points, step=FREE_RESPONSE_STEP)


def _targets(exams: dict[str, LoadedExam]) -> dict[tuple[str, str], RubricTarget]:
    out = {}
    for exam_id, loaded in exams.items():
        for item_id, (section, item) in item_index(loaded.exam).items():
            if isinstance(item, FreeResponseItem | EssayItem):
                out[(exam_id, item_id)] = RubricTarget(exam_id=exam_id, section_id=section.id, item=item)
    return out


def export_grades(run_dir: Path, out_csv: Path, all_items: bool = False) -> int:
    """Write the run's ungraded (or, with ``all_items``, all answered) rubric items; returns the count."""
    folder = RunFolder.open(run_dir)
    cfg, records = folder.read_config(), folder.read_items()
    exams = load_run_exams(cfg)
    targets = _targets(exams)
    replies = {r.key: r.final_reply for r in records}
    rows = []
    graded = grade_run(cfg, records, exams, previous=folder.read_grades(), human=folder.read_human_grades())
    for g in graded:
        target = targets.get((g.exam_id, g.item_id))
        if target is None or g.status == "error" or (not all_items and g.status not in NEEDS_GRADE):
            continue
        item, scale = target.item, target.scale
        rows.append({
            "exam_id": g.exam_id, "item_id": g.item_id, "section_id": g.section_id,
            "item_type": item.type, "prompt": item.prompt, "rubric": item.rubric,
            "reference": item.reference if isinstance(item, FreeResponseItem) else "",
            "scale_min": f"{scale.min:g}", "scale_max": f"{scale.max:g}", "scale_step": f"{scale.step:g}",
            "response": replies.get((g.exam_id, g.item_id)) or "", "points": "", "grader": "", "comment": "",
        })  # fmt: skip
    try:
        out_csv.parent.mkdir(parents=True, exist_ok=True)
        with out_csv.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    except OSError as err:
        raise InputError.one(out_csv, None, "--out", f"cannot write: {err.strerror or err}") from None
    return len(rows)


def _check_row(
    row: dict[str, str | None], n: int, where: str, targets: dict[tuple[str, str], RubricTarget],
    default_grader: str | None,
) -> tuple[list[Problem], GradedItem | None]:  # fmt: skip
    """Problems with one CSV row, or the grade it records (None for a row left blank)."""
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    if not cell("points"):
        return [], None
    target = targets.get((cell("exam_id"), cell("item_id")))
    problems = []
    if target is None:
        what = f"{cell('exam_id')!r}/{cell('item_id')!r}"
        message = f"{what} is not a free-response or essay item of this run"
        problems.append(Problem(where, n, "item_id", message))
    points: float | None = None
    try:
        points = float(cell("points"))
    except ValueError:
        problems.append(Problem(where, n, "points", f"{cell('points')!r} is not a number"))
    if points is not None and target is not None and (msg := target.scale.problem(points)):
        problems.append(Problem(where, n, "points", msg))
    grader = cell("grader") or (default_grader or "").strip()
    if not grader:
        message = "no grader name: fill the grader column or pass --grader"
        problems.append(Problem(where, n, "grader", message))
    if problems or target is None or points is None:
        return problems, None
    return [], GradedItem(
        exam_id=target.exam_id, section_id=target.section_id, item_id=target.item.id,
        item_type=target.item.type, status="graded", points=points, max_points=target.item.max_points,
        how="human", rationale=cell("comment") or None, source="human", grader=grader,
    )  # fmt: skip


def import_grades(run_dir: Path, csv_path: Path, grader: str | None) -> int:
    """Validate every row, then append the grades to ``human_grades.jsonl``; returns the count."""
    where = str(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise InputError.one(where, None, "file", f"cannot read: {err.strerror}") from err
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError.one(where, 1, "columns", f"missing column(s) {', '.join(missing)}")
    folder = RunFolder.open(run_dir)
    cfg = folder.read_config()
    targets = _targets(load_run_exams(cfg))
    problems: list[Problem] = []
    grades: list[GradedItem] = []
    for n, row in enumerate(reader, start=2):
        bad, grade = _check_row(row, n, where, targets, grader)
        problems.extend(bad)
        if grade is not None:
            grades.append(grade)
    if problems:
        raise InputError(problems)
    out = folder.append_human_grades()
    try:
        for g in grades:
            out.append(g)
    finally:
        out.close()
    return len(grades)
