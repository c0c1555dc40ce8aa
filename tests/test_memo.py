"""The memo of whole item records and grades kept in the request cache (examharness.memo): a rerun
served from it equals one served from the request cache, and anything that would change a prompt
or a grade misses it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from conftest import MARKER, Recorder, SmallExam, write_mc_exam

from examharness import api
from examharness.api import RunOptions, run_exams, score_run
from examharness.backends.base import StageParams
from examharness.builtin import prompts_dir
from examharness.exam import MCItem
from examharness.grading import grade_auto
from examharness.memo import ResultMemo, grade_key, memorable
from examharness.records import GradedItem, ItemRecord, StageRecord
from examharness.results import RunFolder, load_run_exams
from examharness.testing import ScriptedServer


def items_without_times(run_dir: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in (run_dir / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    for r in lines:
        r.pop("finished_at")
    return sorted(lines, key=lambda r: r["item_id"])


def forget(cache: Path, table: str, prefix: str = "") -> None:
    with sqlite3.connect(cache) as db:
        db.execute(f"DELETE FROM {table} WHERE key LIKE ?", (prefix + "%",))


def options(exam: SmallExam, srv: ScriptedServer, tmp_path: Path) -> RunOptions:
    return RunOptions(paths=[exam.path], model="m", base_url=srv.base_url, out=tmp_path / "results",
                      cache_path=tmp_path / "cache.sqlite")  # fmt: skip


def two_stage_exam(tmp_path: Path) -> tuple[SmallExam, Recorder]:
    exam = write_mc_exam(tmp_path / "exams" / "memo.yaml", 12, exam_id="memo", mode="letter_if_needed")
    return exam, Recorder(exam, vague={"QID-001", "QID-004"})


def test_a_rerun_from_the_item_memo_equals_one_from_the_request_cache(tmp_path: Path) -> None:
    exam, recorder = two_stage_exam(tmp_path)
    cache = tmp_path / "cache.sqlite"
    with ScriptedServer(responder=recorder) as srv:
        opts = options(exam, srv, tmp_path)
        run_exams(opts)
        sent = len(srv.requests)
        assert sent == exam.n_items + 2  # two vague explanations got the letter request
        forget(cache, "replies")  # only the item memo can serve the next run
        memo_dir, memo_counts = run_exams(opts)
        assert len(srv.requests) == sent and memo_counts.requests == 0
        assert memo_counts.cached == exam.n_items + 2 and memo_counts.ok == exam.n_items
        forget(cache, "payloads", "item:")  # neither memo nor replies: asked again, both filled
        _, asked = run_exams(opts)
        assert asked.requests == exam.n_items + 2
        forget(cache, "payloads", "item:")
        cached_dir, cached_counts = run_exams(opts)  # served by the request cache, rendering each prompt
        assert cached_counts.requests == 0 and cached_counts.cached == exam.n_items + 2
    assert items_without_times(memo_dir) == items_without_times(cached_dir)
    assert score_run(memo_dir).model_dump()["exams"] == score_run(cached_dir).model_dump()["exams"]


def test_a_changed_exam_or_template_is_not_served_from_the_memo(tmp_path: Path) -> None:
    exam, recorder = two_stage_exam(tmp_path)
    cache = tmp_path / "cache.sqlite"
    with ScriptedServer(responder=recorder) as srv:
        opts = options(exam, srv, tmp_path)
        run_exams(opts)
        forget(cache, "replies")
        # One question edited: the exam's hash changes, so no item of it comes from the memo.
        text = exam.path.read_text(encoding="utf-8")
        exam.path.write_text(text.replace("right one for item 5?", "right one for item 5 (edited)?"),
                             encoding="utf-8")  # fmt: skip
        before = len(srv.requests)
        _, counts = run_exams(opts)
        assert counts.cached == 0 and len(srv.requests) - before == exam.n_items + 2
        # A user template folder with a changed copy of the answer request: nothing from the memo.
        user = tmp_path / "prompts"
        user.mkdir()
        shutil.copy(prompts_dir() / "answer_followup.j2", user / "answer_followup.j2")
        with (user / "answer_followup.j2").open("a", encoding="utf-8") as f:
            f.write("{# edited #}\n")
        forget(cache, "replies")
        before = len(srv.requests)
        _, counts = run_exams(opts.model_copy(update={"prompts_dir": user}))
        assert counts.cached == 0 and len(srv.requests) - before == exam.n_items + 2
        # The same model under another name, or another seed: not the same item.
        forget(cache, "replies")
        _, counts = run_exams(opts.model_copy(update={"seed": 1}))
        assert counts.cached == 0


def test_grades_come_from_the_memo_and_follow_the_item(tmp_path: Path) -> None:
    item = MCItem(id="q1", question="Which?", options=["a", "b", "c", "d"], answer="B")
    params = StageParams(temperature=0, max_tokens=5)
    stage = StageRecord(stage="response", messages=[], params=params, reply="The answer is (B).")
    record = ItemRecord(exam_id="e", section_id="s", item_id="q1", item_type="mc", status="ok",
                        stages=[stage])  # fmt: skip
    calls: list[str] = []

    def counted(r: ItemRecord, i: Any) -> GradedItem:
        calls.append(r.item_id)
        return grade_auto(r, i)

    memo = ResultMemo(tmp_path / "cache.sqlite")
    try:
        first = memo.grade_all([(record, item)], counted)
        again = memo.grade_all([(record, item)], counted)
        assert len(calls) == 1 and again == first and first[0].status == "correct"
        rekeyed = memo.grade_all([(record, item.model_copy(update={"answer": "C"}))], counted)
        other = record.model_copy(update={"stages": [stage.model_copy(update={"reply": "(C)"})]})
        replied = memo.grade_all([(other, item)], counted)
    finally:
        memo.close()
    assert len(calls) == 3 and rekeyed[0].status == "incorrect" and replied[0].status == "incorrect"


def test_only_complete_text_answers_are_memorable() -> None:
    params = StageParams(temperature=0, max_tokens=5)
    text = StageRecord(stage="response", messages=[{"role": "user", "content": "Q"}], params=params,
                       reply="B")  # fmt: skip
    parts = [{"type": "text", "text": "Q"}, {"type": "image_url", "image_url": {"url": "data:,"}}]
    image = text.model_copy(update={"messages": [{"role": "user", "content": parts}]})
    base = ItemRecord(exam_id="e", section_id="s", item_id="q", item_type="mc", status="ok", stages=[text])
    assert memorable(base)
    assert not memorable(base.model_copy(update={"stages": [image]}))
    assert not memorable(base.model_copy(update={"status": "error"}))
    assert not memorable(base.model_copy(update={"stages": [text.model_copy(update={"reply": " "})]}))
    assert not memorable(base.model_copy(update={"item_type": "code"}))


def test_a_damaged_memo_entry_is_asked_again_not_fatal(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 6)
    cache = tmp_path / "cache.sqlite"
    with ScriptedServer(responder=Recorder(exam)) as srv:
        opts = options(exam, srv, tmp_path)
        run_exams(opts)
        with sqlite3.connect(cache) as db:
            db.execute("UPDATE payloads SET json='{\"torn' WHERE key LIKE 'item:%'")
        forget(cache, "replies")
        run_dir, counts = run_exams(opts)
        assert counts.ok == exam.n_items and counts.requests == exam.n_items
    asked = {m.group(0) for r in srv.requests[-exam.n_items :] if (m := MARKER.search(r.last_user or ""))}
    assert asked == set(exam.answers)
    assert len(RunFolder(run_dir).read_items()) == exam.n_items


def test_exam_scores_are_memoized_by_scale_points_resamples_and_seed(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A memoized exam score equals the computed one; another scale, other points, another number
    of resamples or another seed is computed again."""
    import examharness.memo as memo_module
    from examharness.scales import load_scale
    from examharness.scoring import SectionItems, score_exam

    gre = load_scale("gre_quantitative", [Path(__file__).parents[1] / "exams" / "scales"])
    sections = [SectionItems(section_id="s", points=[1.0, 0.0, 1.0, 1.0, 0.0] * 8, max_points=[1.0] * 40)]
    calls: list[int] = []

    def counted(scale: Any, secs: Any, *, n_boot: int, seed: int) -> Any:
        calls.append(n_boot)
        return score_exam(scale, secs, n_boot=n_boot, seed=seed)

    monkeypatch.setattr(memo_module, "score_exam", counted)
    memo = ResultMemo(tmp_path / "cache.sqlite")
    try:
        first = memo.exam_score(gre, sections, n_boot=200, seed=0)
        again = memo.exam_score(gre, sections, n_boot=200, seed=0)
        assert len(calls) == 1 and again == first == score_exam(gre, sections, n_boot=200, seed=0)
        assert first.scaled is not None and first.ci.scaled is not None
        fewer = [sections[0].model_copy(update={"points": [0.0] * 40})]
        memo.exam_score(None, sections, n_boot=200, seed=0)
        memo.exam_score(gre, fewer, n_boot=200, seed=0)
        memo.exam_score(gre, sections, n_boot=100, seed=0)
        memo.exam_score(gre, sections, n_boot=200, seed=1)
    finally:
        memo.close()
    assert len(calls) == 5


def test_a_memo_served_line_equals_the_record_parsed_and_written_again() -> None:
    """from_memo patches the stored line's bytes; the result must be the line a full parse, update
    and dump would write, also for replies that spell out the keys it patches, and for a stored line
    laid out otherwise (then parsed whole)."""
    from examharness.memo import from_memo

    params = StageParams(temperature=0.3, max_tokens=64, seed=7)
    trick = 'x","latency_s":9.5,"cached":false,"attempts":3}],"finished_at":"2000-01-01T00:00:00"}'
    stages = [
        StageRecord(stage="explanation", messages=[{"role": "user", "content": 'Q "latency_s":1.0 \\ é'}],
                    params=params, reply=trick, latency_s=1.25, attempts=2),
        StageRecord(stage="answer", messages=[{"role": "user", "content": "letter?"}], params=params,
                    reply="B", latency_s=0.003, attempts=1),
    ]  # fmt: skip
    record = ItemRecord(exam_id="e", section_id="s", item_id="q1", item_type="mc", status="ok", stages=stages,
                        finished_at="2026-01-01T00:00:00.000+00:00")  # fmt: skip
    when = "2026-11-28T12:00:00.000+00:00"

    def parsed_and_written(line: str) -> str:
        full = ItemRecord.model_validate_json(line)
        cached = [s.model_copy(update={"cached": True, "attempts": 0, "latency_s": 0.0}) for s in full.stages]
        return full.model_copy(update={"stages": cached, "finished_at": when}).model_dump_json()

    stored = record.model_dump_json()
    light, line = from_memo(stored, when)
    assert line == parsed_and_written(stored) and line != stored
    assert (light.key, light.status, [(s.stage, s.reply) for s in light.stages]) == (
        ("e", "q1"), "ok", [("explanation", trick), ("answer", "B")]
    )
    item = MCItem(id="q1", question="Which?", options=["a", "b", "c", "d"], answer="B")
    assert grade_key(light, item) == grade_key(record, item) is not None
    relaid = json.dumps(json.loads(stored), sort_keys=True, indent=1).replace("\n", " ")
    assert from_memo(relaid, when)[1] == parsed_and_written(relaid)


def test_scoring_right_after_a_run_takes_the_grades_by_the_sessions_keys(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A run session's grade keys let scoring take every grade from the memo without reading
    items.jsonl back; the grades equal those graded from the records. A key missing (an item not
    recorded by the session) means reading the records."""
    exam, recorder = two_stage_exam(tmp_path)
    with ScriptedServer(responder=recorder) as srv:
        opts = options(exam, srv, tmp_path)
        first_dir, first = run_exams(opts)
        expected = score_run(first_dir, grade_keys=first.grade_keys)  # memo empty: graded from records
        again_dir, again = run_exams(opts)
    reads: list[Path] = []
    real = RunFolder.stream_items

    def spy(folder: RunFolder) -> Any:
        reads.append(folder.path)
        return real(folder)

    monkeypatch.setattr(RunFolder, "stream_items", spy)
    assert len(again.grade_keys) == exam.n_items and all(again.grade_keys.values())
    got = score_run(again_dir, grade_keys=again.grade_keys)
    assert reads == []
    assert (again_dir / "grades.jsonl").read_bytes() == (first_dir / "grades.jsonl").read_bytes()
    assert got.model_dump()["exams"] == expected.model_dump()["exams"]
    (again_dir / "grades.stamp.json").unlink()
    partial = dict(list(again.grade_keys.items())[1:])
    score_run(again_dir, grade_keys=partial)
    assert reads == [again_dir]
    assert (again_dir / "grades.jsonl").read_bytes() == (first_dir / "grades.jsonl").read_bytes()


def test_scoring_right_after_a_run_uses_the_exams_the_session_loaded(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The session's exams (``Counters.exams``) are scored as loaded, without loading the run's
    exam files again; the scores equal those from the files. Exams not those of the run are not
    taken: the files are loaded."""
    exam, recorder = two_stage_exam(tmp_path)
    with ScriptedServer(responder=recorder) as srv:
        run_dir, counters = run_exams(options(exam, srv, tmp_path))
    expected = score_run(run_dir, write=False)
    loads: list[str] = []
    real = load_run_exams

    def spy(cfg: Any, parse_cache: Any = None) -> Any:
        loads.append(cfg.run_id)
        return real(cfg, parse_cache=parse_cache)

    monkeypatch.setattr(api, "load_run_exams", spy)
    assert list(counters.exams) == [exam.exam_id]
    got = score_run(run_dir, exams=counters.exams, write=False)
    assert loads == [] and got.model_dump()["exams"] == expected.model_dump()["exams"]
    score_run(run_dir, exams={"another-exam": counters.exams[exam.exam_id]}, write=False)
    assert loads == [run_dir.name]
