"""Shards (``run --shard I/N``) and ``merge``: real runs against the scripted server through the
command line. Four shards merged equal one unsharded run item for item and score the same;
runs that are not pieces of one run are refused with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder, SmallExam, cli_env, examharness, write_mc_exam

from examharness.cli import main
from examharness.records import ItemRecord
from examharness.results import RunFolder
from examharness.runlock import run_folder_lock
from examharness.shards import Shard, parse_shard, shard_number
from examharness.testing import ScriptedServer

N = 40


def run_one(tmp_path: Path, exam: Path, url: str, out: str, *more: str, model: str = "m",
            score: bool = True) -> Path:  # fmt: skip
    """``examharness run`` in this process (the same code as the command, without the start-up)."""
    scoring = ["--bootstrap", "200"] if score else ["--no-score"]
    (tmp_path / out).mkdir(parents=True, exist_ok=True)
    code = main(["run", str(exam), "--model", model, "--base-url", url, "--out", str(tmp_path / out),
                 "--no-cache", *scoring, *more])  # fmt: skip
    assert code == 0
    return next((tmp_path / out).iterdir())


def merge(tmp_path: Path, runs: list[Path], out: str, *more: str) -> subprocess.CompletedProcess[str]:
    done = examharness("merge", *map(str, runs), "--out", str(tmp_path / out), *more, env=cli_env(tmp_path))
    assert "Traceback" not in done.stderr
    return done


def merge_here(capsys: pytest.CaptureFixture[str], tmp_path: Path, runs: list[Path], out: str, *more: str,
               ) -> tuple[int, list[str]]:  # fmt: skip
    """``examharness merge`` in this process: the exit code and the lines on stderr."""
    capsys.readouterr()
    code = main(["merge", *map(str, runs), "--out", str(tmp_path / out), *more])
    return code, capsys.readouterr().err.strip().splitlines()


def without_timings(record: ItemRecord) -> dict[str, Any]:
    data = record.model_dump(exclude={"finished_at"})
    for stage in data["stages"]:
        stage.pop("latency_s")
    return data


def scores_of(run_dir: Path) -> list[dict[str, Any]]:
    return [e.model_dump() for e in RunFolder.open(run_dir).read_scores().exams]


@pytest.fixture
def exam(tmp_path: Path) -> SmallExam:
    return write_mc_exam(tmp_path / "exams" / "shards.yaml", N, mode="letter_if_needed")


def test_four_shards_merged_equal_one_run(tmp_path: Path, exam: SmallExam) -> None:
    recorder = Recorder(exam, vague={"QID-001", "QID-007", "QID-030"})
    with ScriptedServer(responder=recorder) as srv:
        whole = run_one(tmp_path, exam.path, srv.base_url, "whole")
        asked_whole = len(srv.requests)
        shards = [run_one(tmp_path, exam.path, srv.base_url, f"s{i}", "--shard", f"{i}/4", score=False)
                  for i in range(1, 5)]  # fmt: skip
        assert len(srv.requests) == 2 * asked_whole  # the shards together asked what the one run asked
    sizes = [len(RunFolder.open(s).read_items()) for s in shards]
    assert sum(sizes) == N and min(sizes) > 0, sizes
    for i, s in enumerate(shards, 1):
        assert RunFolder.open(s).read_config().shard == Shard(index=i, count=4)
    done = merge(tmp_path, shards, "merged", "--bootstrap", "200")
    assert done.returncode == 0, done.stderr
    merged = tmp_path / "merged"
    assert done.stdout.strip().splitlines()[-1] == str(merged)
    one, joined = RunFolder.open(whole).read_items(), RunFolder.open(merged).read_items()
    # Items in the order an unsharded run plans them (a run records them as they finish).
    assert [r.key for r in joined] == [(exam.exam_id, f"q{i:03d}") for i in range(N)]
    assert {r.key: without_timings(r) for r in joined} == {r.key: without_timings(r) for r in one}
    assert scores_of(merged) == scores_of(whole)
    cfg = RunFolder.open(merged).read_config()
    parts = [RunFolder.open(s).read_config() for s in shards]
    assert cfg.shard is None and cfg.merged_from == [p.run_id for p in parts]
    for key in ("items", "ok", "letter_requests", "requests_sent", "prompt_tokens", "sessions"):
        assert cfg.summary[key] == sum(p.summary[key] for p in parts), key
    assert cfg.summary["items"] == N and cfg.summary["requests_sent"] == asked_whole


def test_a_shard_resumes_its_own_items(tmp_path: Path, exam: SmallExam) -> None:
    with ScriptedServer(responder=Recorder(exam)) as srv:
        run_dir = run_one(tmp_path, exam.path, srv.base_url, "s", "--shard", "2/3")
        items = run_dir / "items.jsonl"
        lines = items.read_text().splitlines(keepends=True)
        kept, dropped = lines[:3], [ItemRecord.model_validate_json(x).item_id for x in lines[3:]]
        items.write_text("".join(kept))
        before = len(srv.requests)
        env = cli_env(tmp_path)
        again = examharness("run", "--resume", str(run_dir), "--no-cache", "--bootstrap", "0", env=env)
        assert again.returncode == 0, again.stderr
        asked = [r.last_user for r in srv.requests[before:]]
        conflict = examharness("run", "--resume", str(run_dir), "--shard", "1/3", env=env)
    assert len(asked) == len(dropped)
    after = RunFolder.open(run_dir).read_items()
    assert Counter(r.item_id for r in after) == Counter(r.item_id for r in (ItemRecord.model_validate_json(x)
                                                                            for x in lines))  # fmt: skip
    assert RunFolder.open(run_dir).read_config().shard == Shard(index=2, count=3)
    assert conflict.returncode == 1 and "Traceback" not in conflict.stderr
    assert len(conflict.stderr.strip().splitlines()) == 1 and "--shard" in conflict.stderr


def test_merge_refuses_runs_that_are_not_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    n = 12
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", n, mode="single")
    other = write_mc_exam(tmp_path / "exams2" / "other.yaml", n, exam_id="other", mode="single")
    with ScriptedServer(responder=Recorder(exam)) as srv, ScriptedServer(responder=Recorder(other)) as srv2:
        url = srv.base_url
        s1 = run_one(tmp_path, exam.path, url, "s1", "--shard", "1/2", score=False)
        s2 = run_one(tmp_path, exam.path, url, "s2", "--shard", "2/2")
        s2_model = run_one(tmp_path, exam.path, url, "m2", "--shard", "2/2", model="other-model", score=False)
        s1_again = run_one(tmp_path, exam.path, url, "again", "--shard", "1/2", score=False)
        s2_exam = run_one(tmp_path, other.path, srv2.base_url, "e2", "--shard", "2/2", score=False)
        hotter = ("--shard", "2/2", "--temperature", "0.9")
        s2_temp = run_one(tmp_path, exam.path, url, "t2", *hotter, score=False)
        cases = {
            "model": [s1, s2_model],
            "shard": [s1, s1_again],
            "exams": [s1, s2_exam],
            "sampling": [s1, s2_temp],
            "runs": [s1],
        }
        for field, runs in cases.items():
            code, lines = merge_here(capsys, tmp_path, runs, f"merged-{field}")
            assert code == 1 and len(lines) == 1, (field, lines)
            assert f": {field}: " in lines[0], (field, lines[0])
            assert not (tmp_path / f"merged-{field}").exists()
        assert merge_here(capsys, tmp_path, [s1, s2, s1], "thrice") == (1, [f"{s1}: runs: run given twice"])
        with run_folder_lock(s2):  # a shard still being written
            code, lines = merge_here(capsys, tmp_path, [s1, s2], "busy")
        assert code == 1 and len(lines) == 1 and "is writing this run folder" in lines[0], lines

        in_s2 = len(RunFolder.open(s2).read_items())
        assert sum(e.items.total for e in RunFolder.open(s2).read_scores().exams) == in_s2  # its own items
        code, lines = merge_here(capsys, tmp_path, [s2], "partial", "--allow-partial", "--bootstrap", "0")
        assert code == 0 and lines and "shards 1/2 missing" in lines[0], lines
        graded = RunFolder.open(tmp_path / "partial").read_grades()
        assert len(graded) == n
        assert sum(g.how == "not run" for g in graded.values()) == n - in_s2
        before = len(srv.requests)
        assert main(["run", "--resume", str(tmp_path / "partial"), "--no-cache", "--bootstrap", "0"]) == 0
        assert len(srv.requests) - before >= n - in_s2  # the missing shard's items, asked now
    assert len(RunFolder.open(tmp_path / "partial").read_items()) == n
    assert merge_here(capsys, tmp_path, [s2, s1], "joined", "--no-score")[0] == 0
    code, lines = merge_here(capsys, tmp_path, [s1, s2], "joined")
    assert code == 1 and len(lines) == 1 and "--out" in lines[0], lines


@pytest.mark.parametrize("value", ["0/4", "5/4", "1/0", "a/b", "2", "-1/4", "1/4/2"])
def test_bad_shard_is_one_line(tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    write_mc_exam(tmp_path / "exam.yaml", 2)
    code = main(["run", str(tmp_path / "exam.yaml"), "--model", "m", "--base-url", "http://127.0.0.1:1/v1",
                 f"--shard={value}", "--out", str(tmp_path / "results")])  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(lines) == 1 and "--shard" in lines[0], lines
    assert not (tmp_path / "results").exists()


def test_shards_partition_and_do_not_depend_on_the_process() -> None:
    keys = [("sat", f"sec{s}", f"q{i}") for s in range(3) for i in range(200)]
    for count in (1, 2, 4, 7):
        owners = [[i for i in range(1, count + 1) if Shard(index=i, count=count).holds(*k)] for k in keys]
        assert all(len(o) == 1 for o in owners)
        sizes = Counter(o[0] for o in owners)
        assert len(sizes) == count and min(sizes.values()) > len(keys) / count / 2
    here = [shard_number(*k, count=5) for k in keys[:50]]
    code = ("from examharness.shards import shard_number;"
            f"print([shard_number(*k, count=5) for k in {keys[:50]!r}])")  # fmt: skip
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True)  # fmt: skip
        assert out.stdout.strip() == str(here)
    assert parse_shard(" 3 / 8 ") == Shard(index=3, count=8)
