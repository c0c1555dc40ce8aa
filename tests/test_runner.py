"""The runner end to end: real HTTP on 127.0.0.1 through the real ``openai`` client against the
scripted server, with faults, resume, the cache and two-stage sampling checked against the
requests the server actually saw."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder, SmallExam, marker_of, write_mc_exam

from examharness.api import RunOptions, run_exams, score_run
from examharness.exam import MCItem
from examharness.importers import write_exam_yaml
from examharness.importers.mmlu import import_mmlu
from examharness.jsonfiles import read_jsonl
from examharness.outcome import run_summary
from examharness.records import ITEMS_FILE, ItemRecord
from examharness.results import RunFolder
from examharness.runner import Counters
from examharness.testing import (
    Fault,
    FaultPolicy,
    ScriptedServer,
    faults_on_first_attempts,
    prompt_hash,
)

SHARED = Path(__file__).parents[1].parent / "shared"
RETRY_AFTER = 0.05
FAULT_KINDS = [
    Fault.rate_limit(RETRY_AFTER), Fault.server_error(500), Fault.server_error(502),
    Fault.server_error(503), Fault.server_error(504), Fault.drop(), Fault.slow(2.0), Fault.empty(),
]  # fmt: skip
FAULT_NAMES = {"rate_limit", "server_error", "drop", "slow", "empty"}


def go(exam: SmallExam, srv: ScriptedServer, tmp_path: Path, **options: Any) -> tuple[Path, Counters]:
    opts = RunOptions(
        paths=[exam.path], model="scripted", base_url=srv.base_url, out=tmp_path / "results",
        cache_path=tmp_path / "cache" / "requests.sqlite", concurrency=4, timeout=5.0,
    ).model_copy(update=options)  # fmt: skip
    return run_exams(opts)


def records_by_marker(run_dir: Path) -> dict[str, ItemRecord]:
    """Latest record per item, keyed by the item's marker (item ``q005`` is ``QID-005``)."""
    return {"QID-" + r.item_id.removeprefix("q"): r for r in RunFolder(run_dir).read_items()}


def raw_lines(run_dir: Path) -> list[ItemRecord]:
    return read_jsonl(run_dir / ITEMS_FILE, ItemRecord).records


def test_clean_run_counts_exactly_the_correct_answers(tmp_path: Path, small_exam: SmallExam) -> None:
    with ScriptedServer(responder=Recorder(small_exam)) as srv:
        run_dir, counters = go(small_exam, srv, tmp_path)
        assert set(srv.successful_by_prompt().values()) == {1}
    records = raw_lines(run_dir)
    assert len(records) == small_exam.n_items == counters.ok
    assert {r.item_id for r in records} == {f"q{i:03d}" for i in range(small_exam.n_items)}
    items = score_run(run_dir, n_boot=0).exams[0].items
    assert items.correct == small_exam.n_correct
    assert items.incorrect == small_exam.n_items - small_exam.n_correct
    assert items.total == small_exam.n_items


def test_imported_mmlu_exam_is_scored_against_its_answers(tmp_path: Path) -> None:
    data = SHARED / "data" / "mmlu"
    exam = import_mmlu(data / "dev" / "us_foreign_policy_dev.csv",
                       data / "test" / "us_foreign_policy_test.csv", shots=5)  # fmt: skip
    path = tmp_path / "mmlu.yaml"
    write_exam_yaml(exam, path, "Source: MMLU us_foreign_policy (test fixture)")
    letters = [item.answer for _, item in exam.items() if isinstance(item, MCItem)]
    assert len(letters) == len(exam.items())
    with ScriptedServer(responder=lambda request: " B") as srv:
        opts = RunOptions(
            paths=[path],
            model="scripted",
            base_url=srv.base_url,
            out=tmp_path / "results",
            cache_path=tmp_path / "c.sqlite",
            concurrency=8,
        )
        run_dir, counters = run_exams(opts)
    assert counters.ok == len(letters)
    items = score_run(run_dir, n_boot=0).exams[0].items
    assert items.correct == letters.count("B")
    assert items.correct + items.incorrect == len(letters)


def faulty(stuck: dict[str, bool], seed: int) -> FaultPolicy:
    """A third of first attempts fail in every way; QID-005 fails always while ``stuck``."""
    first = faults_on_first_attempts(1 / 3, seed, FAULT_KINDS)

    def policy(index: int, request: dict[str, Any], attempt: int) -> Fault | None:
        if stuck["on"] and marker_of(request) == "QID-005":
            return Fault.server_error(500)
        return first(index, request, attempt)

    return policy


def test_faults_retries_errors_and_resume(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "faults.yaml", 60)
    stuck = {"on": True}
    with ScriptedServer(responder=Recorder(exam), faults=faulty(stuck, seed=3)) as srv:
        run_dir, counters = go(exam, srv, tmp_path, timeout=0.5, max_attempts=3)
        log = srv.requests
        successes = srv.successful_by_prompt()

        faults = {r.fault for r in log if r.fault is not None}
        assert faults == FAULT_NAMES
        statuses = {r.status for r in log if r.fault == "server_error"}
        assert statuses == {500, 502, 503, 504}

        # Every item ends answered, empty or error: nothing lost, each recorded once.
        lines = raw_lines(run_dir)
        assert len(lines) == exam.n_items == counters.done
        assert counters.ok + counters.empty + counters.errors == exam.n_items
        records = records_by_marker(run_dir)
        assert set(records) == set(exam.answers)

        # Retry-After is honoured: the retry of a 429 comes at least that much later.
        for i, r in enumerate(log):
            if r.fault == "rate_limit":
                retry = next(x for x in log[i + 1 :] if x.prompt_hash == r.prompt_hash)
                assert retry.time - r.time >= RETRY_AFTER

        # The final successful request of each answered item was sent exactly once.
        assert set(successes.values()) == {1}
        for rec in records.values():
            if rec.status == "ok":
                assert successes[prompt_hash({"messages": rec.stages[-1].messages})] == 1

        # An empty reply is asked again within the attempt budget: the retry answers the item.
        emptied = {marker_of({"messages": [{"content": r.last_user}]})
                   for r in log if r.fault == "empty"}  # fmt: skip
        assert emptied and all(records[m].status == "ok" for m in emptied)
        assert all(records[m].stages[0].attempts == 2 for m in emptied)

        # The item that always fails is an error with its reason, counted in the summary.
        stuck_rec = records["QID-005"]
        assert stuck_rec.status == "error" and stuck_rec.stages == []
        assert stuck_rec.error is not None and "http_500" in stuck_rec.error
        assert "after 3 attempts" in stuck_rec.error
        assert [r.status for r in log if r.last_user and "QID-005" in r.last_user] == [500] * 3
        assert counters.errors == 1 and counters.empty == 0
        summary = RunFolder(run_dir).read_config().summary
        assert (summary["error"], summary["empty"], summary["items"]) == (1, 0, 60)
        [(reason, n)] = summary["error_reasons"].items()
        assert reason.startswith("http_500: HTTP 500") and "Scripted server error." in reason and n == 1
        # The first session's summary comes from its counters; counting items.jsonl gives the same.
        read = run_summary(RunFolder(run_dir), {}, counters)
        assert {k: v for k, v in read.items() if k != "elapsed_s"} == \
            {k: v for k, v in summary.items() if k != "elapsed_s"}  # fmt: skip

        scores = score_run(run_dir, n_boot=0).exams[0]
        ok = [m for m, rec in records.items() if rec.status == "ok"]
        assert scores.items.error == 1 and scores.items.empty == 0
        assert scores.items.correct == sum(exam.replies[m] == exam.answers[m] for m in ok)
        assert any("retry-errors" in p for p in scores.provisional)

        # --resume RUN --retry-errors redoes only the error item once the fault clears.
        stuck["on"] = False
        before = len(srv.requests)
        _, again = run_exams(
            RunOptions(resume=run_dir, retry_errors=True, cache_path=tmp_path / "cache" / "requests.sqlite")
        )
        sent = srv.requests[before:]
    assert again.total == 1 and again.ok == 1
    assert sent and {r.last_user and "QID-005" in r.last_user for r in sent} == {True}
    assert records_by_marker(run_dir)["QID-005"].status == "ok"
    assert len(RunFolder(run_dir).read_items()) == exam.n_items
    assert score_run(run_dir, n_boot=0).exams[0].items.error == 0


def test_resume_without_retry_errors_sends_nothing(tmp_path: Path, small_exam: SmallExam) -> None:
    with ScriptedServer(responder=Recorder(small_exam)) as srv:
        run_dir, _ = go(small_exam, srv, tmp_path)
        before = len(srv.requests)
        _, again = run_exams(RunOptions(resume=run_dir, use_cache=False))
        assert len(srv.requests) == before
    assert again.total == 0
    assert len(raw_lines(run_dir)) == small_exam.n_items


def test_rerun_is_served_from_cache_and_no_cache_sends_again(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "cached.yaml", 40)
    with ScriptedServer(responder=Recorder(exam), latency=0.05) as srv:
        started = time.perf_counter()
        first_dir, first = go(exam, srv, tmp_path)
        first_s = time.perf_counter() - started
        sent = len(srv.requests)
        started = time.perf_counter()
        second_dir, second = go(exam, srv, tmp_path)
        second_s = time.perf_counter() - started
        assert len(srv.requests) == sent
        _, third = go(exam, srv, tmp_path, use_cache=False)
        assert len(srv.requests) == sent + exam.n_items
    assert (first.requests, first.cached) == (exam.n_items, 0)
    assert (second.requests, second.cached) == (0, exam.n_items)
    assert (third.requests, third.cached) == (exam.n_items, 0)
    assert second_s < 0.5 * first_s
    replies = {r.item_id: r.final_reply for r in RunFolder(first_dir).read_items()}
    assert {r.item_id: r.final_reply for r in RunFolder(second_dir).read_items()} == replies
    assert all(s.cached for r in RunFolder(second_dir).read_items() for s in r.stages)


def test_two_stage_records_both_stages(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "two.yaml", 8, mode="two_stage",
                         temperature=None, max_tokens=None)  # fmt: skip
    recorder = Recorder(exam)
    with ScriptedServer(responder=recorder) as srv:
        run_dir, counters = go(exam, srv, tmp_path)
    assert counters.requests == 2 * exam.n_items
    explanations = [b for b in recorder.bodies if len(b["messages"]) == 1]
    answers = [b for b in recorder.bodies if len(b["messages"]) == 3]
    assert len(explanations) == len(answers) == exam.n_items
    assert {(b["temperature"], b["max_tokens"]) for b in explanations} == {(0.3, 512)}
    assert {(b["temperature"], b["max_tokens"]) for b in answers} == {(0.0, 5)}
    for b in answers:
        assert b["messages"][1]["role"] == "assistant"
        assert b["messages"][1]["content"].startswith("Explanation: worked it out.")
    for rec in RunFolder(run_dir).read_items():
        assert [s.stage for s in rec.stages] == ["explanation", "answer"]
        assert len(rec.final_reply or "") == 1
    items = score_run(run_dir, n_boot=0).exams[0].items
    assert items.correct == exam.n_correct


def test_letter_if_needed_asks_only_when_the_explanation_has_no_answer(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "lin.yaml", 12, mode=None)
    vague = {"QID-001", "QID-004", "QID-009"}
    recorder = Recorder(exam, vague=vague)
    with ScriptedServer(responder=recorder) as srv:
        run_dir, counters = go(exam, srv, tmp_path)
    assert counters.requests == exam.n_items + len(vague)
    assert {(b["temperature"], b["max_tokens"]) for b in recorder.bodies
            if len(b["messages"]) == 1} == {(0.3, 64)}  # fmt: skip
    records = records_by_marker(run_dir)
    for marker, rec in records.items():
        expected = ["explanation", "answer"] if marker in vague else ["explanation"]
        assert [s.stage for s in rec.stages] == expected
    assert score_run(run_dir, n_boot=0).exams[0].items.correct == exam.n_correct


def test_api_key_is_never_written(tmp_path: Path, small_exam: SmallExam,
                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    secret = "sk-examharness-test-9f27c1d4e8b3a605"
    monkeypatch.setenv("EXAMHARNESS_TEST_KEY", secret)
    with ScriptedServer(responder=Recorder(small_exam)) as srv:
        run_dir, _ = go(small_exam, srv, tmp_path, api_key_env="EXAMHARNESS_TEST_KEY")
        score_run(run_dir, n_boot=0)
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"run.json", "items.jsonl", "grades.jsonl", "scores.json"}
    for p in [*files, *(p for p in (tmp_path / "cache").rglob("*") if p.is_file())]:
        assert secret.encode() not in p.read_bytes(), p
    assert RunFolder(run_dir).read_config().summary["ok"] == small_exam.n_items


def test_missing_api_key_is_an_input_error(tmp_path: Path, small_exam: SmallExam,
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from examharness.errors import InputError

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("EXAMHARNESS_NO_SUCH_KEY", raising=False)
    opts = RunOptions(
        paths=[small_exam.path],
        model="m",
        api_key_env="EXAMHARNESS_NO_SUCH_KEY",
        out=tmp_path / "results",
        use_cache=False,
    )
    with pytest.raises(InputError, match="EXAMHARNESS_NO_SUCH_KEY"):
        run_exams(opts)


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "bounded.yaml", 24)
    with ScriptedServer(responder=Recorder(exam), latency=0.05) as srv:
        go(exam, srv, tmp_path, concurrency=3, use_cache=False)
        connections = Counter(r.connection for r in srv.requests)
    assert len(connections) <= 3


def test_resume_after_a_torn_last_line(tmp_path: Path, small_exam: SmallExam) -> None:
    """A kill in the middle of a write leaves half a line; resuming must not glue onto it."""
    with ScriptedServer(responder=Recorder(small_exam)) as srv:
        run_dir, _ = go(small_exam, srv, tmp_path, use_cache=False)
        items = run_dir / ITEMS_FILE
        data = items.read_bytes()
        last_start = data.rstrip(b"\n").rfind(b"\n") + 1
        items.write_bytes(data[: last_start + 40])
        before = len(srv.requests)
        _, again = run_exams(RunOptions(resume=run_dir, use_cache=False))
        assert len(srv.requests) == before + 1
    assert again.total == 1 and again.ok == 1
    lines = raw_lines(run_dir)
    assert len(lines) == small_exam.n_items
    assert len({r.item_id for r in lines}) == small_exam.n_items


def test_resume_keeps_the_sampling_the_run_started_with(tmp_path: Path) -> None:
    """A run started with CLI overrides resumes with them, not with the defaults."""
    exam = write_mc_exam(tmp_path / "exams" / "s.yaml", 6)
    recorder = Recorder(exam)
    with ScriptedServer(responder=recorder) as srv:
        opts = RunOptions(
            paths=[exam.path], model="m", base_url=srv.base_url, out=tmp_path / "r",
            cache_path=tmp_path / "c.sqlite", temperature=0.9, max_tokens=33, limit=3,
        )  # fmt: skip
        run_dir, _ = run_exams(opts)
        cfg = RunFolder(run_dir).read_config()
        # Forget the last record, as if the run had been killed before it was written.
        lines = (run_dir / ITEMS_FILE).read_text().splitlines()
        (run_dir / ITEMS_FILE).write_text("\n".join(lines[:-1]) + "\n")
        run_exams(RunOptions(resume=run_dir, cache_path=tmp_path / "other.sqlite"))
    assert len(recorder.bodies) == 4  # three items, then the forgotten one again
    assert all(b["temperature"] == 0.9 and b["max_tokens"] == 33 for b in recorder.bodies)
    assert len(RunFolder(run_dir).read_items()) == 3
    assert cfg.exams[0].sampling["mc"].temperature == 0.9


def test_run_json_summary_covers_the_whole_run_after_resume(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "s.yaml", 6)
    with ScriptedServer(responder=Recorder(exam)) as srv:
        opts = RunOptions(paths=[exam.path], model="m", base_url=srv.base_url, out=tmp_path / "r",
                          cache_path=tmp_path / "c.sqlite")  # fmt: skip
        run_dir, _ = run_exams(opts)
        lines = (run_dir / ITEMS_FILE).read_text().splitlines()
        (run_dir / ITEMS_FILE).write_text("\n".join(lines[:-2]) + "\n")
        run_exams(RunOptions(resume=run_dir, cache_path=tmp_path / "other.sqlite"))
    summary = RunFolder(run_dir).read_config().summary
    assert (summary["items"], summary["ok"], summary["sessions"]) == (6, 6, 2)
    assert summary["requests_sent"] == 8  # six in the first session, the two forgotten ones again


def test_an_unexpected_backend_exception_is_an_error_item_not_a_crash(tmp_path: Path) -> None:
    import asyncio

    from examharness.backends.base import StageParams
    from examharness.exam import load_exam
    from examharness.prompts import Renderer
    from examharness.records import SectionSampling
    from examharness.runner import RetryPolicy, RunContext, WorkItem, run_item

    class Broken:
        model, base_url, max_concurrency = "m", None, None

        async def complete(self, messages: list[dict[str, Any]], params: StageParams) -> Any:
            raise ValueError("malformed reply")

        async def aclose(self) -> None: ...

    exam = write_mc_exam(tmp_path / "exams" / "b.yaml", 1)
    loaded = load_exam(exam.path)
    section = loaded.exam.sections[0]
    sampling = SectionSampling(mode="single", temperature=0, max_tokens=5)
    import random

    ctx = RunContext(Broken(), None, Renderer(vision=False), 0, RetryPolicy(), Counters(), random.Random(0))
    record = asyncio.run(run_item(ctx, WorkItem(loaded, section, 0, sampling)))
    assert record.status == "error" and record.error == "unexpected ValueError: malformed reply"


def test_empty_replies_are_asked_again_and_retry_errors_covers_empty(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "empty.yaml", 6)
    mute = {"on": True}

    def policy(index: int, request: dict[str, Any], attempt: int) -> Fault | None:
        if mute["on"] and marker_of(request) == "QID-001":
            return Fault.empty()
        return Fault.empty() if attempt == 1 else None

    with ScriptedServer(responder=Recorder(exam), faults=policy) as srv:
        run_dir, counters = go(exam, srv, tmp_path, max_attempts=3)
        records = records_by_marker(run_dir)
        assert records["QID-001"].status == "empty" and records["QID-001"].stages[0].attempts == 3
        others = [r for m, r in records.items() if m != "QID-001"]
        assert {(r.status, r.stages[0].attempts) for r in others} == {("ok", 2)}
        assert (counters.requests, counters.retries, counters.empty) == (5 * 2 + 3, 5 + 2, 1)
        mute["on"] = False
        before = len(srv.requests)
        _, again = run_exams(
            RunOptions(resume=run_dir, retry_errors=True, cache_path=tmp_path / "cache" / "requests.sqlite")
        )
        assert len(srv.requests) == before + 1  # only the empty item is asked again
    assert (again.total, again.ok) == (1, 1)
    assert records_by_marker(run_dir)["QID-001"].status == "ok"
