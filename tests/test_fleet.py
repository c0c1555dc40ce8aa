"""Endpoint pools (``--base-url`` several times or ``@FILE``): real scripted servers on 127.0.0.1,
the real command line and ``openai`` client. A dead endpoint is ejected and its requests go to the
others without costing items their retries; load follows the fewest outstanding requests, within
each endpoint's own limit; one cache key serves the pool; per-endpoint counts reach run.json."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder, SmallExam, cli_env, examharness, write_mc_exam

from examharness.backends.base import StageParams
from examharness.backends.endpoints import EndpointStats
from examharness.backends.fleet import FleetBackend
from examharness.cli import main
from examharness.records import Endpoint, RunConfig
from examharness.results import RunFolder
from examharness.testing import Fault, ScriptedServer, every_request

N = 24


def closed_port_url() -> str:
    """A base URL nothing listens on: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def run_pool(tmp_path: Path, exam: SmallExam, urls: list[str], *more: str) -> tuple[int, str, Path | None]:
    args = ["run", str(exam.path), "--model", "m", "--out", str(tmp_path / "results"), "--bootstrap", "0"]
    for url in urls:
        args += ["--base-url", url]
    done = examharness(*args, *more, env=cli_env(tmp_path))
    assert "Traceback" not in done.stderr, done.stderr
    out = done.stdout.strip().splitlines()
    return done.returncode, done.stderr, Path(out[-1]) if done.returncode in (0, 2) else None


def endpoint_stats(run_dir: Path) -> dict[str, dict[str, Any]]:
    cfg = RunFolder.open(run_dir).read_config()
    return {s["url"]: s for s in cfg.summary["endpoints"]}


@pytest.mark.parametrize("bad", ["refused", "http_500"])
def test_dead_endpoint_is_ejected_and_its_items_answered_elsewhere(tmp_path: Path, bad: str) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "pool.yaml", N, mode="two_stage")
    failing = ScriptedServer(faults=every_request(Fault.server_error()))
    with ScriptedServer(responder=Recorder(exam), latency=0.01) as a, \
         ScriptedServer(responder=Recorder(exam), latency=0.01) as b, failing:  # fmt: skip
        dead = closed_port_url() if bad == "refused" else failing.base_url
        code, stderr, run_dir = run_pool(tmp_path, exam, [a.base_url, dead, b.base_url], "--concurrency", "4")
        good = [a.base_url, b.base_url]
        answered = Counter(a.successful_by_prompt()) + Counter(b.successful_by_prompt())
        sent = len(a.requests) + len(b.requests)
        dead_requests = len(failing.requests)
    assert code == 0, stderr
    assert run_dir is not None
    # Two stages per item, each asked exactly once of the good endpoints together.
    assert len(answered) == 2 * N and set(answered.values()) == {1}
    assert sent == 2 * N
    ejections = [line for line in stderr.splitlines() if "ejected" in line]
    assert len(ejections) == 1 and dead in ejections[0], stderr
    folder = RunFolder.open(run_dir)
    records = folder.read_items()
    assert Counter(r.status for r in records) == {"ok": N}
    assert all(st.attempts == 1 for r in records for st in r.stages)  # no item paid for the dead one
    cfg: RunConfig = folder.read_config()
    assert cfg.summary["retries"] == 0
    assert sorted(e.url for e in cfg.endpoints) == sorted([*good, dead])
    stats = endpoint_stats(run_dir)
    assert stats[dead]["ejected"] and stats[dead]["replies"] == 0
    assert 3 <= stats[dead]["requests"] == stats[dead]["failures"] <= 3 + 4
    if bad == "http_500":
        assert stats[dead]["requests"] == dead_requests
    for url in good:
        s = stats[url]
        assert not s["ejected"] and s["failures"] == 0 and s["replies"] == s["requests"] > 0
        assert s["mean_latency_s"] > 0 and s["p95_latency_s"] > 0
    assert sum(stats[url]["replies"] for url in good) == 2 * N
    report = examharness("report", str(run_dir), env=cli_env(tmp_path))
    assert report.returncode == 0, report.stderr
    assert f"{dead}: {stats[dead]['requests']} requests, 0 replies" in report.stdout
    assert "EJECTED" in report.stdout


def test_least_outstanding_balances_slow_servers_and_limits_hold(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "pool.yaml", 40, mode="single")
    with ScriptedServer(responder=Recorder(exam), latency=0.05) as a, \
         ScriptedServer(responder=Recorder(exam), latency=0.05) as b:  # fmt: skip
        code, stderr, _ = run_pool(tmp_path, exam, [a.base_url, b.base_url], "--concurrency", "6")
        counts = len(a.requests), len(b.requests)
        peaks = a.peak_in_flight, b.peak_in_flight
    assert code == 0, stderr
    assert sum(counts) == 40
    assert min(counts) >= 16, counts  # roughly even: neither gets more than 60%
    assert max(peaks) <= 6 and sum(peaks) >= 4

    listed = tmp_path / "endpoints.txt"
    with ScriptedServer(responder=Recorder(exam), latency=0.03) as a, \
         ScriptedServer(responder=Recorder(exam), latency=0.03) as b:  # fmt: skip
        listed.write_text(f"# one request at a time each\n{a.base_url} 1\n{b.base_url}  1  # slow\n")
        code, stderr, _ = run_pool(tmp_path, exam, [f"@{listed}"], "--concurrency", "8", "--no-cache")
        peaks = a.peak_in_flight, b.peak_in_flight
        counts = len(a.requests), len(b.requests)
    assert code == 0, stderr
    assert peaks == (1, 1), peaks
    assert sum(counts) == 40 and min(counts) >= 16, counts


def test_pool_cache_key_ignores_which_endpoint_answered(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "pool.yaml", 12, mode="single")
    cache = str(tmp_path / "cache.sqlite")
    with ScriptedServer(responder=Recorder(exam)) as a, ScriptedServer(responder=Recorder(exam)) as b:
        code, stderr, first = run_pool(tmp_path, exam, [a.base_url, b.base_url], "--cache", cache)
        assert code == 0, stderr
        sent = len(a.requests) + len(b.requests)
        code, stderr, again = run_pool(tmp_path, exam, [b.base_url, a.base_url], "--cache", cache)
        assert code == 0, stderr
        assert len(a.requests) + len(b.requests) == sent == 12
    assert first is not None and again is not None
    summary = RunFolder.open(again).read_config().summary
    assert summary["cache_hits"] == 12 and summary["requests_sent"] == 0


def test_every_endpoint_dead_aborts_the_run(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "pool.yaml", 6, mode="single")
    with ScriptedServer(faults=every_request(Fault.reject(404))) as refusing:
        code, stderr, _ = run_pool(tmp_path, exam, [closed_port_url(), refusing.base_url])
    assert code == 3, stderr
    aborted = [line for line in stderr.splitlines() if "no endpoint answers" in line]
    assert len(aborted) == 1, stderr
    assert "HTTP 404" in aborted[0]


def test_one_refusing_endpoint_is_ejected_for_good(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "pool.yaml", 10, mode="single")
    with ScriptedServer(faults=every_request(Fault.reject(401))) as refusing, \
         ScriptedServer(responder=Recorder(exam)) as good:  # fmt: skip
        urls = [refusing.base_url, good.base_url]
        code, stderr, run_dir = run_pool(tmp_path, exam, urls, "--concurrency", "2")
        refused = len(refusing.requests)
    assert code == 0, stderr
    assert 1 <= refused <= 2  # only those sent before its first refusal came back
    assert run_dir is not None
    stats = endpoint_stats(run_dir)
    assert stats[urls[0]]["ejected"] and "HTTP 401" in stats[urls[0]]["reason"]
    assert stats[urls[1]]["replies"] == 10


@pytest.mark.parametrize(("lines", "where"), [
    ("http://127.0.0.1:1/v1\nhttp://127.0.0.1:2/v1 zero\n", ":2: max_concurrency:"),
    ("# nothing but a comment\n", ": url: no endpoints"),
    ("ftp://127.0.0.1:1/v1\n", ":1: url: not an http(s) URL"),
    ("http://127.0.0.1:1/v1 2 3\n", ":1: url: expected"),
    ("http://127.0.0.1:1/v1 0\n", ":1: max_concurrency:"),
])  # fmt: skip
def test_bad_endpoints_file_is_one_line(tmp_path: Path, lines: str, where: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    exam = write_mc_exam(tmp_path / "exams" / "pool.yaml", 2)
    listed = tmp_path / "endpoints.txt"
    listed.write_text(lines)
    code = main(["run", str(exam.path), "--model", "m", "--base-url", f"@{listed}",
                 "--out", str(tmp_path / "results")])  # fmt: skip
    stderr = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(stderr) == 1 and stderr[0].startswith(f"{listed}{where}"), stderr
    assert not (tmp_path / "results").exists()


def test_resume_keeps_the_pool(tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "pool.yaml", 8, mode="single")
    with ScriptedServer(responder=Recorder(exam)) as a, ScriptedServer(responder=Recorder(exam)) as b:
        code, stderr, run_dir = run_pool(tmp_path, exam, [a.base_url, b.base_url], "--no-cache")
        assert code == 0 and run_dir is not None, stderr
        items = run_dir / "items.jsonl"
        lines = items.read_text().splitlines(keepends=True)
        items.write_text("".join(lines[:5]))
        env = cli_env(tmp_path)
        done = examharness("run", "--resume", str(run_dir), "--no-cache", "--bootstrap", "0", env=env)
        assert done.returncode == 0, done.stderr
        assert len(a.requests) + len(b.requests) == 8 + 3
    stats = endpoint_stats(run_dir)
    assert sum(s["requests"] for s in stats.values()) == 11
    assert json.loads((run_dir / "run.json").read_text())["summary"]["sessions"] == 2



def test_an_ejected_endpoint_comes_back_after_the_cool_down() -> None:
    """The pool itself (real servers, real client): one failure ejects (``eject_after=1``); after
    the cool-down the endpoint is sent requests again and answers them."""
    warnings: list[str] = []
    params = StageParams(temperature=0, max_tokens=8)

    def fail_first(index: int, request: dict[str, Any], attempt: int) -> Fault | None:
        return Fault.server_error() if index == 0 else None

    async def session(flaky: str, steady: str) -> tuple[list[EndpointStats], list[EndpointStats]]:
        pool = FleetBackend(model="m", endpoints=[Endpoint(url=flaky), Endpoint(url=steady)], api_key=None,
                            timeout=10, concurrency=2, warn=warnings.append, eject_after=1, cool_down=0.3)
        try:
            for i in range(3):
                await pool.complete([{"role": "user", "content": f"before {i}"}], params)
            during = pool.stats()
            await asyncio.sleep(0.4)
            for i in range(4):
                await pool.complete([{"role": "user", "content": f"after {i}"}], params)
            return during, pool.stats()
        finally:
            await pool.aclose()

    with ScriptedServer(faults=fail_first) as flaky, ScriptedServer() as steady:
        flaky_url = flaky.base_url
        during, after = asyncio.run(session(flaky_url, steady.base_url))
    assert [s.ejected for s in during] == [True, False]
    assert during[0].replies == 0 and during[1].replies == 3
    assert [s.ejected for s in after] == [False, False]
    assert after[0].replies >= 1 and after[0].replies + after[1].replies == 7
    assert len(warnings) == 1 and flaky_url in warnings[0] and "0.3s" in warnings[0]


def test_an_endpoint_given_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "pool.yaml", 2)
    listed = tmp_path / "endpoints.txt"
    listed.write_text("http://127.0.0.1:9/v1 4\n")
    code = main(["run", str(exam.path), "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                 "--base-url", f"@{listed}", "--out", str(tmp_path / "results")])  # fmt: skip
    stderr = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and stderr == ["command line: --base-url: endpoint given twice: http://127.0.0.1:9/v1"]
