"""Real run folders for view tests: a small exam run through ``api.run_exams`` against the
scripted server on 127.0.0.1, then ``api.score_run`` — the same files a user's run produces.

Every question carries a marker ``[[exam:item]]`` so the responder knows which item it is asked
(in both stages of a two-stage request); ``right`` says which items it answers correctly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from examharness import api
from examharness.exam import LETTERS, MCItem, load_exam
from examharness.prompts import answer_followup
from examharness.records import HUMAN_GRADES_FILE, GradedItem
from examharness.testing import Responder, ScriptedServer

MARKER = re.compile(r"\[\[([A-Za-z0-9._-]+:[A-Za-z0-9._-]+)\]\]")
FOLLOWUP = answer_followup("x")[-1]["content"]
NO_KEY_ENV = "EXAMHARNESS_TESTS_UNSET_KEY"


@dataclass(frozen=True)
class ExamSpec:
    id: str
    title: str
    n_mc: int = 10
    n_fr: int = 0
    n_essay: int = 0
    scale: str | None = "gre_verbal"
    mode: str = "two_stage"
    """Multiple-choice sampling mode, fixed here so tests do not depend on the default."""


def write_exam(folder: Path, spec: ExamSpec) -> Path:
    """An exam file with ``n_mc`` four-option items (answers cycle A-D) and rubric items."""
    mc = [
        {"id": f"q{i}", "type": "mc", "question": f"[[{spec.id}:q{i}]] Pick option {LETTERS[i % 4]}.",
         "options": ["one", "two", "three", "four"], "answer": LETTERS[i % 4]}
        for i in range(1, spec.n_mc + 1)
    ]  # fmt: skip
    sections: list[dict[str, Any]] = [
        {"id": "mc", "kind": "multiple_choice", "sampling": {"mode": spec.mode}, "items": mc}
    ]
    if spec.n_fr:
        sections.append({"id": "fr", "kind": "free_response", "items": [
            {"id": f"fr{i}", "type": "free_response", "prompt": f"[[{spec.id}:fr{i}]] Explain.",
             "rubric": "2: complete. 1: partial. 0: otherwise.", "max_points": 2,
             "reference": "A complete explanation."}
            for i in range(1, spec.n_fr + 1)
        ]})  # fmt: skip
    if spec.n_essay:
        sections.append({"id": "essay", "kind": "essay", "items": [
            {"id": f"es{i}", "type": "essay", "prompt": f"[[{spec.id}:es{i}]] Argue.",
             "rubric": "Holistic 0-6."}
            for i in range(1, spec.n_essay + 1)
        ]})  # fmt: skip
    doc: dict[str, Any] = {
        "id": spec.id, "title": spec.title, "source": "written for examharness tests",
        "license": "Apache-2.0", "sections": sections,
    }  # fmt: skip
    if spec.scale:
        doc["scoring"] = {"scale": spec.scale}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.id}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def first_right(exam_id: str, n: int) -> set[str]:
    """Markers of the first ``n`` multiple-choice items (the ones the responder gets right)."""
    return {f"{exam_id}:q{i}" for i in range(1, n + 1)}


def answer_key(exam_files: Iterable[Path], right: set[str], replies: dict[str, str] | None = None
               ) -> Responder:  # fmt: skip
    """Replies per item marker: the correct letter for ``right`` items, the next letter otherwise;
    ``replies`` (marker -> text) for rubric items, else a fixed sentence."""
    letters: dict[str, str] = {}
    for f in exam_files:
        exam = load_exam(f).exam
        for _, item in exam.items():
            if isinstance(item, MCItem):
                key = f"{exam.id}:{item.id}"
                wrong = LETTERS[(LETTERS.index(item.answer) + 1) % len(item.options)]
                letters[key] = item.answer if key in right else wrong
    texts = replies or {}

    def respond(request: dict[str, Any]) -> str:
        messages = request["messages"]
        found = MARKER.search(" ".join(str(m.get("content")) for m in messages))
        if found is None:
            raise LookupError("no [[exam:item]] marker in the request")
        key = found[1]
        if key not in letters:
            return texts.get(key, "A short answer that explains the idea.")
        if messages[-1].get("content") == FOLLOWUP:
            return letters[key]
        return texts.get(key, "Working it out.") + f"\nThe answer is therefore [{letters[key]}]"

    return respond


def run_on(server: ScriptedServer, tmp_path: Path, exam_files: list[Path], model: str,
           **options: Any) -> Path:  # fmt: skip
    """Run and score the exams against ``server``; ``options`` are extra ``RunOptions`` fields."""
    opts = api.RunOptions.model_validate({
        "paths": exam_files, "model": model, "base_url": server.base_url, "api_key_env": NO_KEY_ENV,
        "concurrency": 4, "cache_path": tmp_path / "cache.sqlite", "out": tmp_path, "max_attempts": 1,
        **options,
    })  # fmt: skip
    run_dir, _ = api.run_exams(opts)
    api.score_run(run_dir, n_boot=200, cache_path=tmp_path / "cache.sqlite")
    return run_dir


def make_run(tmp_path: Path, exam_files: list[Path], *, model: str, right: set[str],
             replies: dict[str, str] | None = None, **options: Any) -> Path:  # fmt: skip
    """One scored run folder whose model answers exactly the ``right`` items correctly."""
    with ScriptedServer(responder=answer_key(exam_files, right, replies), model=model) as srv:
        return run_on(srv, tmp_path, exam_files, model, **options)


def add_human_grade(run_dir: Path, exam_id: str, item_id: str, points: float,
                    max_points: float = 2.0, section_id: str = "fr") -> None:  # fmt: skip
    """Grade one rubric item by hand (as ``grade import`` would) and rescore the run."""
    grade = GradedItem(exam_id=exam_id, section_id=section_id, item_id=item_id,
                       item_type="free_response", status="graded", points=points,
                       max_points=max_points, how="human", source="human", grader="test")  # fmt: skip
    with (run_dir / HUMAN_GRADES_FILE).open("a", encoding="utf-8") as f:
        f.write(grade.model_dump_json() + "\n")
    api.score_run(run_dir, n_boot=200, use_cache=False)
