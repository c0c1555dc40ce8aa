"""The API key never reaches a stored or printed text, even when a server echoes it back.

The end-to-end test runs the real CLI and the real ``openai`` client against a loopback server
(stdlib ``http.server`` on 127.0.0.1) that quotes the ``Authorization`` header it received: in
the error body of a 500 for one item, and inside the reply text for the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import write_mc_exam

from examharness.redact import REDACTED, Redactor

SECRET = "sk-test-ECHOED-0123456789abcdef"


def test_redactor_replaces_every_occurrence_and_leaves_short_values() -> None:
    redact = Redactor([SECRET, "x", None, "short"])
    assert redact(f"a {SECRET} b {SECRET}") == f"a {REDACTED} b {REDACTED}"
    assert redact("x marks short") == "x marks short"
    err = RuntimeError(f"HTTP 500: key {SECRET}", 3)
    redact.exception(err)
    assert err.args == (f"HTTP 500: key {REDACTED}", 3)


class _Echo(BaseHTTPRequestHandler):
    """Quotes the bearer token back: a 500 for the first item, the reply text for the others."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        question = json.dumps(body["messages"])
        if "QID-000" in question:
            self._send(500, {"error": {"message": f"upstream rejected key {token}", "type": "server_error"}})
            return
        text = f"The answer is therefore [B]. (debug: caller key {token})"
        self._send(200, {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })  # fmt: skip

    def _send(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examharness.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_echoed_key_is_redacted_everywhere(echo_server: str, tmp_path: Path) -> None:
    exam = write_mc_exam(tmp_path / "exams" / "small.yaml", 4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env |= {"OPENAI_API_KEY": SECRET, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    cache, results = tmp_path / "cache.sqlite", tmp_path / "results"
    run = _cli("run", str(exam.path), "--model", "echo", "--base-url", echo_server, "--max-attempts", "1",
               "--cache", str(cache), "--out", str(results), env=env)  # fmt: skip
    [run_dir] = [p for p in results.iterdir() if p.is_dir()]
    html = tmp_path / "report.html"
    report = _cli("report", str(run_dir), "--html", str(html), env=env)
    assert report.returncode == 0, report.stderr
    printed = run.stdout + run.stderr + report.stdout + report.stderr
    stored = {p: p.read_bytes() for p in [*run_dir.rglob("*"), cache, html] if p.is_file()}
    assert SECRET not in printed
    assert [p for p, data in stored.items() if SECRET.encode() in data] == []
    items = (run_dir / "items.jsonl").read_text(encoding="utf-8")
    assert items.count(REDACTED) == 4, items  # one error body and three replies were echoed
    assert REDACTED in html.read_text(encoding="utf-8")
    assert REDACTED.encode() in stored[cache]
