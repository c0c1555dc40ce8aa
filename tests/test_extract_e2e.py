"""Reading answers end to end: replies served by the scripted server on 127.0.0.1 through the real
``openai`` client, run by the runner and graded from the run folder.

Single-request mode must grade what each reply says. In the default ``letter_if_needed`` mode an
explanation cut off at ``max_tokens`` (``finish_reason: length``) must always lead to the letter
request, whatever letters the cut-off text mentions, and the grade must come from that letter;
an explanation that states its answer needs no second request, one read only by a loose rule does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from conftest import FOLLOWUP, marker_of

from examharness.api import RunOptions, run_exams, score_run
from examharness.records import GradedItem
from examharness.results import RunFolder
from examharness.testing import ScriptedReply, ScriptedServer, last_user_message

CAPITALS = ["Paris", "London", "Berlin", "Madrid"]
QUESTION = "Which city is the capital of the country named in the item?"

SINGLE: list[tuple[str, str | None]] = [
    ("Answer: C", "C"),
    ("答案是C", "C"),
    ("答案：B", "B"),
    ("正确答案是B。", "B"),
    ("So B.", "B"),
    ("Therefore, B.", "B"),
    ('The answer is "C".', "C"),
    ("Correct option: A", "A"),
    ("Answer - C", "C"),
    ("It's (a).", "A"),
    ("The answer is not A; it is D.", "D"),
    ("I can't be certain, but the answer is likely C", "C"),
    ("La respuesta correcta es D.", "D"),
    ("Ответ: B", "B"),
    ("正解は A です。", "A"),
    ("정답은 D입니다.", "D"),
    ("सही उत्तर B है।", "B"),
    ("الإجابة الصحيحة هي C", "C"),
    ("$\\boxed{D}$", "D"),
    ("The answer is B. Wait, actually, it's C.", "C"),
    ("Choice A would be wrong here.", None),
    ("(C) is wrong.", None),
    ("It is certainly not Berlin.", None),
    ("**B** is a common wrong answer", None),
    ("I cannot answer this question.", None),
]

CUT_OFF: list[tuple[str, str]] = [
    # (explanation cut off at max_tokens, the letter given when asked)
    (
        "Let's check each option. (A) Paris is in France, so (A) is wrong. (B) London is in England, "
        "so (B) is wrong. (C) Berlin is",
        "C",
    ),
    (
        "Option A: Paris, incorrect. Option B: London, incorrect. Option C: Berlin, incorrect for this "
        "country, because the item names Spain. Option D",
        "D",
    ),
    (
        "The answer is B. Hmm, wait: London is the capital of the United Kingdom, not of the country "
        "in the question, which is",
        "A",
    ),
    ("It is not Paris, and it is not London. It could be Berlin or", "C"),
    (
        "**Answer: C**\n\nBerlin became the capital in 1990. However, the item asks about France, so "
        "the answer",
        "A",
    ),
]

STATED = [
    ("Berlin is the capital of Germany.\n\nThe answer is therefore [C]", "C"),
    ("答案是B，因为伦敦是英国的首都。", "B"),
]
LOOSE = [
    ("Berlin (C) has been the capital of Germany since 1990.", "C"),
    ("The capital of Spain is Madrid.", "D"),
]


def write_exam(path: Path, answers: list[str], mode: str | None) -> None:
    items = [
        {
            "id": f"q{i:03d}",
            "type": "mc",
            "question": f"QID-{i:03d}: {QUESTION}",
            "options": CAPITALS,
            "answer": answer,
        }
        for i, answer in enumerate(answers)
    ]
    sampling = {"mode": mode, "temperature": 0.0, "max_tokens": 64} if mode else {}
    data = {
        "id": path.stem,
        "title": "Extraction end to end",
        "source": "written for the tests",
        "license": "Apache-2.0",
        "sections": [{"id": "mc", "kind": "multiple_choice", "sampling": sampling, "items": items}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Source: written by tests/test_extract_e2e.py\n" + yaml.safe_dump(data), encoding="utf-8"
    )


def serve(first: list[ScriptedReply], letters: list[str]) -> Any:
    """The explanation (or single reply) per item; the letter when the follow-up asks for it."""

    def respond(request: dict[str, Any]) -> ScriptedReply:
        index = int(marker_of(request).removeprefix("QID-"))
        if FOLLOWUP in last_user_message(request):
            return ScriptedReply(text=letters[index])
        return first[index]

    return respond


def run(
    tmp_path: Path,
    name: str,
    mode: str | None,
    answers: list[str],
    first: list[ScriptedReply],
    letters: list[str],
) -> Path:
    exam = tmp_path / "exams" / f"{name}.yaml"
    write_exam(exam, answers, mode)
    with ScriptedServer(responder=serve(first, letters)) as srv:
        run_dir, _ = run_exams(
            RunOptions(
                paths=[exam],
                model="scripted",
                base_url=srv.base_url,
                out=tmp_path / "results",
                cache_path=tmp_path / "cache.sqlite",
                concurrency=4,
                timeout=5.0,
            )
        )
    score_run(run_dir, n_boot=0)
    return run_dir


def grades(run_dir: Path) -> dict[int, GradedItem]:
    return {int(item_id[1:]): g for (_, item_id), g in RunFolder(run_dir).read_grades().items()}


def test_single_request_replies_are_graded_as_written(tmp_path: Path) -> None:
    answers = [expect or "C" for _, expect in SINGLE]
    run_dir = run(
        tmp_path, "single", "single", answers, [ScriptedReply(text=reply) for reply, _ in SINGLE], answers
    )
    for i, g in grades(run_dir).items():
        reply, expect = SINGLE[i]
        if expect is None:
            assert g.status in ("unparseable", "refused") and g.answer is None, reply
        else:
            assert (g.status, g.answer) == ("correct", expect), (reply, g.how)
            assert g.how and g.tier in ("strict", "loose")
    assert all(len(r.stages) == 1 for r in RunFolder(run_dir).read_items())


def test_cut_off_explanations_always_get_the_letter_request(tmp_path: Path) -> None:
    cases = [(text, letter, "length") for text, letter in CUT_OFF]
    cases += [(text, letter, "stop") for text, letter in STATED + LOOSE]
    answers = [letter for _, letter, _ in cases]
    first = [ScriptedReply(text=text, finish_reason=finish) for text, _, finish in cases]  # type: ignore[arg-type]
    run_dir = run(tmp_path, "cutoff", None, answers, first, answers)
    records = {int(r.item_id[1:]): r for r in RunFolder(run_dir).read_items()}
    asked = {i for i, r in records.items() if [s.stage for s in r.stages] == ["explanation", "answer"]}
    cut = set(range(len(CUT_OFF)))
    loose = set(range(len(CUT_OFF) + len(STATED), len(cases)))
    assert asked == cut | loose
    for i in cut:
        assert records[i].stages[0].finish_reason == "length"
        assert records[i].stages[1].messages[1]["content"] == cases[i][0].strip()
    graded = grades(run_dir)
    assert {i: g.status for i, g in graded.items()} == {i: "correct" for i in range(len(cases))}
    assert all(graded[i].how.startswith("answer-stage:") for i in asked)
    assert all(graded[i].tier == "strict" for i in range(len(cases)))
    assert RunFolder(run_dir).read_config().summary["letter_requests"] == len(asked)
