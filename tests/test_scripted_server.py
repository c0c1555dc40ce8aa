"""The scripted server against the real ``openai`` client over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import pytest

from examharness.testing import (
    Fault,
    FaultPolicy,
    ScriptedServer,
    answer_key_responder,
    faults_on_first_attempts,
    last_user_message,
)

T = TypeVar("T")
KEY = {"capital of France": "The answer is therefore [C]", "2 + 2": "The answer is therefore [B]"}


def always(fault: Fault) -> FaultPolicy:
    return lambda index, request, attempt: fault


def run_client(srv: ScriptedServer, body: Callable[[openai.AsyncOpenAI], Awaitable[T]],
               *, max_retries: int = 0, timeout: float = 5.0) -> T:
    async def go() -> T:
        async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="test",
                                      max_retries=max_retries, timeout=timeout) as client:
            return await body(client)

    return asyncio.run(go())


def ask(text: str) -> Callable[[openai.AsyncOpenAI], Awaitable[Any]]:
    async def call(client: openai.AsyncOpenAI) -> Any:
        return await client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": text}])

    return call


def test_normal_completion_uses_answer_key() -> None:
    with ScriptedServer(responder=answer_key_responder(KEY)) as srv:
        reply = run_client(srv, ask("Q1. What is the capital of France?\n(A) Rome (C) Paris"))
    assert reply.choices[0].message.content == "The answer is therefore [C]"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "test-model"
    assert reply.usage is not None
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_rate_limit_carries_retry_after() -> None:
    with (ScriptedServer(faults=always(Fault.rate_limit(2.5))) as srv,
          pytest.raises(openai.RateLimitError) as caught):
        run_client(srv, ask("hello"))
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "2.5"


def test_client_retry_honours_retry_after() -> None:
    policy = faults_on_first_attempts(1.0, seed=0, kinds=[Fault.rate_limit(0.3)])
    with ScriptedServer(faults=policy) as srv:
        started = time.perf_counter()
        reply = run_client(srv, ask("hello"), max_retries=1)
        elapsed = time.perf_counter() - started
        statuses = [r.status for r in srv.requests]
    assert reply.choices[0].message.content == "You said: hello"
    assert statuses == [429, 200]
    assert elapsed >= 0.3


@pytest.mark.parametrize("status", [500, 503])
def test_server_error(status: Any) -> None:
    with (ScriptedServer(faults=always(Fault.server_error(status))) as srv,
          pytest.raises(openai.APIStatusError) as caught):
        run_client(srv, ask("hello"))
    assert caught.value.status_code == status
    assert isinstance(caught.value, openai.InternalServerError)


def test_drop_is_a_connection_error() -> None:
    with ScriptedServer(faults=always(Fault.drop())) as srv:
        with pytest.raises(openai.APIConnectionError) as caught:
            run_client(srv, ask("hello"))
        assert srv.requests[0].status is None
    assert not isinstance(caught.value, openai.APITimeoutError)


def test_slow_reply_times_out() -> None:
    with ScriptedServer(faults=always(Fault.slow(5.0))) as srv:
        started = time.perf_counter()
        with pytest.raises(openai.APITimeoutError):
            run_client(srv, ask("hello"), timeout=0.3)
    assert time.perf_counter() - started < 3.0


def test_empty_reply() -> None:
    with ScriptedServer(faults=always(Fault.empty())) as srv:
        reply = run_client(srv, ask("hello"))
        assert srv.successful_by_prompt() == {}
    assert reply.choices[0].message.content == ""


def test_keep_alive_has_no_delayed_ack_stall() -> None:
    async def fifty(client: openai.AsyncOpenAI) -> float:
        started = time.perf_counter()
        for i in range(50):
            await ask(f"question {i}")(client)
        return time.perf_counter() - started

    with ScriptedServer(latency=0.0) as srv:
        elapsed = run_client(srv, fifty)
        connections = {r.connection for r in srv.requests}
    assert elapsed < 1.0
    assert len(connections) == 1


def test_request_log_counts_retries_per_prompt() -> None:
    policy = faults_on_first_attempts(0.5, seed=7, kinds=[Fault.server_error(503)])

    async def many(client: openai.AsyncOpenAI) -> list[Any]:
        return await asyncio.gather(*(ask(f"item {i}")(client) for i in range(40)))

    with ScriptedServer(faults=policy) as srv:
        replies = run_client(srv, many, max_retries=2)
        counts, successes = srv.count_by_prompt(), srv.successful_by_prompt()
        log = srv.requests
    assert len(replies) == 40
    assert len(counts) == 40 and set(successes.values()) == {1}
    faulted = {r.prompt_hash for r in log if r.fault is not None}
    assert 10 <= len(faulted) <= 30
    assert all(counts[h] == (2 if h in faulted else 1) for h in counts)
    assert all(r.attempt == 1 for r in log if r.fault is not None)


def test_models_and_plain_path() -> None:
    with ScriptedServer(model="scripted-x") as srv:
        models = run_client(srv, lambda client: client.models.list())
        root = srv.base_url.removesuffix("/v1")
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        plain = httpx.post(f"{root}/chat/completions", json=body)
        bad = httpx.post(f"{root}/v1/chat/completions", content=b"{not json")
        missing = httpx.get(f"{root}/v1/nothing")
    assert [m.id for m in models.data] == ["scripted-x"]
    assert plain.json()["choices"][0]["message"]["content"] == "You said: hi"
    assert (bad.status_code, missing.status_code) == (400, 404)
    assert "error" in bad.json()


@pytest.mark.parametrize(("messages", "expected"), [
    ([{"role": "user", "content": "plain"}], "plain"),
    ([{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"},
      {"role": "user", "content": "last"}], "last"),
    ([{"role": "user", "content": [{"type": "text", "text": "a"},
                                   {"type": "image_url", "image_url": {"url": "u"}},
                                   {"type": "text", "text": "b"}]}], "a\nb"),
    ([{"role": "system", "content": "only system"}], ""),
])
def test_last_user_message(messages: list[dict[str, Any]], expected: str) -> None:
    assert last_user_message({"messages": messages}) == expected


@pytest.mark.parametrize(("question", "expected"), [
    ("What is the capital of France?", "The answer is therefore [C]"),
    ("Compute 2 + 2.", "The answer is therefore [B]"),
    ("Compute 2 + 2 with 2 + 2 = 4 in it", "longer"),
    ("Unknown question", None),
])
def test_answer_key_responder(question: str, expected: str | None) -> None:
    respond = answer_key_responder({**KEY, "2 + 2 = 4": "longer"})
    request = {"messages": [{"role": "user", "content": question}]}
    if expected is None:
        with pytest.raises(LookupError):
            respond(request)
        assert answer_key_responder(KEY, fallback="dunno")(request) == "dunno"
    else:
        assert respond(request) == expected


def test_unmatched_answer_key_is_a_500() -> None:
    with ScriptedServer(responder=answer_key_responder(KEY)) as srv:
        with pytest.raises(openai.InternalServerError):
            run_client(srv, ask("no such item"))
        assert srv.requests[0].fault == "responder_error"


@pytest.mark.parametrize(("fraction", "attempt", "expect_some"), [
    (1.0, 1, True), (1.0, 2, False), (0.0, 1, False),
])
def test_faults_on_first_attempts(fraction: float, attempt: int, expect_some: bool) -> None:
    policy = faults_on_first_attempts(fraction, seed=1, kinds=[Fault.drop(), Fault.empty()])
    requests = [{"messages": [{"role": "user", "content": f"q{i}"}]} for i in range(50)]
    faults = [policy(i, r, attempt) for i, r in enumerate(requests)]
    assert any(faults) is expect_some
    assert faults == [policy(i, r, attempt) for i, r in enumerate(requests)]
    if expect_some:
        assert {f.kind for f in faults if f is not None} == {"drop", "empty"}


def test_cli_runs_in_foreground(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(KEY), encoding="utf-8")
    command = [sys.executable, "-m", "examharness.testing.scripted_server", "--port", "0",
               "--answer-key", str(key_file)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("listening on http://127.0.0.1:")
            base_url = line.split()[-1]
            body = {"model": "m", "messages": [{"role": "user", "content": "Is 2 + 2 four?"}]}
            reply = httpx.post(f"{base_url}/chat/completions", json=body).json()
        finally:
            proc.kill()
    assert reply["choices"][0]["message"]["content"] == "The answer is therefore [B]"


def test_cli_rejects_bad_answer_key(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text("[1, 2]", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "examharness.testing.scripted_server", "--answer-key",
         str(key_file)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith(f"{key_file}: ")
    assert "Traceback" not in done.stderr


def test_start_fails_fast_when_port_is_taken() -> None:
    with ScriptedServer() as first:
        started = time.perf_counter()
        with pytest.raises(RuntimeError, match="did not start"):
            ScriptedServer(port=first.port).start()
    assert time.perf_counter() - started < 5
