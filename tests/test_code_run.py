"""Code items through the real runner: hostile replies are contained and the run goes on.

A scripted loopback model answers each problem with one program (correct, wrong, or hostile);
the run must record every item, grade each from its sandbox verdict, and leave the run folder
and the files around it as they were.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_code_sandbox import sandbox_processes

from examharness.api import RunOptions, run_exams, score_run
from examharness.results import RunFolder
from examharness.testing import ScriptedServer, last_user_message

TESTS = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 6\n"


def body(code: str) -> str:
    return "```python\nimport os, signal, socket, time, shutil\n\ndef double(x):\n" + "".join(
        f"    {line}\n" for line in code.strip().splitlines()
    ) + "    return 2 * x\n```"


FORK = """
for _ in range(300):
    try:
        if os.fork() == 0:
            time.sleep(20)
            os._exit(0)
    except OSError:
        break
"""


def replies(secret: Path, port: int) -> dict[str, str]:
    """Marker -> reply. Every hostile program is bounded even if the sandbox failed; the fork
    bomb stops forking when the process limit says no and still returns the right answer."""
    return {
        "P-correct": body("pass"),
        "P-wrong": "```python\ndef double(x):\n    return x + 2\n```",
        "P-prose": "I would rather not write code today.",
        "P-loop": body("while True:\n    pass"),
        "P-fork": body(FORK),
        "P-memory": body("hog = [bytearray(64 * 1024 * 1024) for _ in range(64)]"),
        "P-bigfile": body("with open('big', 'wb') as f:\n    for _ in range(1024):\n"
                          "        f.write(b'x' * 1024 * 1024)"),
        "P-read": body(f"print(open({str(secret)!r}).read())"),
        "P-write": body(f"open({str(secret)!r}, 'w').write('owned')"),
        "P-net": body(f"socket.create_connection(('127.0.0.1', {port}), timeout=2)"),
        "P-kill": body(f"os.kill({os.getpid()}, signal.SIGKILL)"),
        "P-delete": body(f"shutil.rmtree({str(secret.parent)!r}, ignore_errors=True)\n"
                         "for name in os.listdir('.'):\n    shutil.rmtree(name, ignore_errors=True)"),
    }  # fmt: skip


def write_exam(path: Path, markers: list[str]) -> None:
    items = [
        {"id": m.lower(), "type": "code", "entry_point": "double", "tests": TESTS, "time_limit_s": 2,
         "memory_mb": 256, "prompt": f"{m}: write double(x) returning twice x."}
        for m in markers
    ]  # fmt: skip
    exam = {"id": "hostile", "title": "Hostile programs", "source": "examharness tests", "license": "MIT",
            "sections": [{"id": "code", "kind": "code", "items": items}]}  # fmt: skip
    path.write_text("# Written for examharness's tests.\n" + yaml.safe_dump(exam), encoding="utf-8")


def digest_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file()}  # fmt: skip


def responder(table: dict[str, str]) -> Any:
    def respond(request: dict[str, Any]) -> str:
        asked = last_user_message(request)
        return next(reply for marker, reply in table.items() if f"{marker}:" in asked)

    return respond


@pytest.mark.timeout(300)
def test_hostile_replies_are_contained_and_the_run_goes_on(tmp_path: Path) -> None:
    keep = tmp_path / "user-files"
    keep.mkdir()
    secret = keep / "secret.txt"
    secret.write_text("not for the model")
    os.chmod(keep, 0o777)
    secret.chmod(0o666)
    with ScriptedServer(responder=lambda r: "") as listener:  # a 127.0.0.1 listener to reach for
        table = replies(secret, listener.port)
        exam_path = tmp_path / "exam" / "hostile.yaml"
        exam_path.parent.mkdir()
        write_exam(exam_path, list(table))
        with ScriptedServer(responder=responder(table)) as srv:
            opts = RunOptions(
                paths=[exam_path], model="scripted", base_url=srv.base_url, out=tmp_path / "results",
                cache_path=tmp_path / "cache.sqlite", concurrency=4, timeout=10.0,
            )  # fmt: skip
            before = digest_tree(tmp_path / "exam") | digest_tree(keep)
            run_dir, counters = run_exams(opts)
        reached = len(listener.requests)
    assert reached == 0
    assert counters.done == len(table)
    assert digest_tree(tmp_path / "exam") | digest_tree(keep) == before
    records = {r.item_id: r for r in RunFolder(run_dir).read_items()}
    first = {k: r.code[0] for k, r in records.items()}
    outcome = {k: s.result.outcome if s.result else s.status for k, s in first.items()}
    assert outcome == {
        "p-correct": "pass", "p-wrong": "fail", "p-prose": "unparseable", "p-loop": "timeout",
        "p-fork": "pass", "p-memory": "memory", "p-bigfile": "fail", "p-read": "fail", "p-write": "fail",
        "p-net": "fail", "p-kill": "fail", "p-delete": "pass",
    }  # fmt: skip
    assert records["p-wrong"].code[0].result.failed_test == "assert candidate(3) == 6"  # type: ignore[union-attr]
    scores = score_run(run_dir, n_boot=0).exams[0]
    assert scores.items.correct == 3 and scores.items.unparseable == 1
    assert scores.items.incorrect == len(table) - 4
    assert sandbox_processes() == []
