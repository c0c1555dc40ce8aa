"""``openai_compat.classify`` on exceptions the real ``openai`` SDK raises for real responses of
the scripted server, and :class:`OpenAIBackend` turning them into :class:`BackendError`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest

from examharness.backends.base import BackendError, ChatReply, StageParams
from examharness.backends.openai_compat import OpenAIBackend, _retry_after, classify
from examharness.testing import Fault, FaultPolicy, ScriptedServer

MESSAGES = [{"role": "user", "content": "hello"}]
PARAMS = StageParams(temperature=0.0, max_tokens=5, seed=0)


def always(fault: Fault) -> FaultPolicy:
    return lambda index, request, attempt: fault


def sdk_error(base_url: str, call: Callable[[openai.AsyncOpenAI], Awaitable[Any]],
              timeout: float = 5.0) -> Exception:  # fmt: skip
    """The exception the SDK raises for one call (no SDK retries)."""

    async def go() -> Exception:
        async with openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0,
                                      timeout=timeout) as client:  # fmt: skip
            try:
                await call(client)
            except Exception as err:
                return err
        raise AssertionError("the call succeeded")

    return asyncio.run(go())


def chat(client: openai.AsyncOpenAI) -> Awaitable[Any]:
    return client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fault", "kind", "retryable", "retry_after"), [
    (Fault.rate_limit(0.05), "http_429", True, 0.05),
    (Fault.rate_limit(2.5), "http_429", True, 2.5),
    (Fault.server_error(500), "http_500", True, None),
    (Fault.server_error(502), "http_502", True, None),
    (Fault.server_error(503), "http_503", True, None),
    (Fault.server_error(504), "http_504", True, None),
    (Fault.drop(), "connection", True, None),
])  # fmt: skip
def test_classify_status_and_connection_faults(
    fault: Fault, kind: str, retryable: bool, retry_after: float | None
) -> None:
    with ScriptedServer(faults=always(fault)) as srv:
        err = classify(sdk_error(srv.base_url, chat))
    assert (err.kind, err.retryable, err.retry_after) == (kind, retryable, retry_after)


def test_classify_timeout() -> None:
    with ScriptedServer(faults=always(Fault.slow(3.0))) as srv:
        raw = sdk_error(srv.base_url, chat, timeout=0.3)
    assert isinstance(raw, openai.APITimeoutError)
    err = classify(raw)
    assert (err.kind, err.retryable, err.retry_after) == ("timeout", True, None)


def test_classify_bad_request_is_not_retryable() -> None:
    with ScriptedServer() as srv:
        raw = sdk_error(srv.base_url, lambda c: c.chat.completions.create(model="m", messages="not a list"))  # type: ignore[arg-type]
    assert isinstance(raw, openai.BadRequestError)
    err = classify(raw)
    assert (err.kind, err.retryable, err.retry_after) == ("http_400", False, None)
    assert "HTTP 400" in str(err)


def test_classify_not_found_is_not_retryable() -> None:
    with ScriptedServer() as srv:
        raw = sdk_error(srv.base_url.removesuffix("/v1") + "/nowhere", chat)
    assert isinstance(raw, openai.NotFoundError)
    assert (classify(raw).kind, classify(raw).retryable) == ("http_404", False)


def test_classify_refused_connection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = classify(sdk_error(f"http://127.0.0.1:{port}/v1", chat))
    assert (err.kind, err.retryable) == ("connection", True)


def test_classify_other_exceptions_are_not_retryable() -> None:
    err = classify(ValueError("boom"))
    assert (err.kind, err.retryable) == ("client", False)
    assert "ValueError: boom" in str(err)


@pytest.mark.parametrize(("headers", "expected"), [
    (None, None),
    ({}, None),
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": "0.5"}, 0.5),
    ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
    ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),
])  # fmt: skip
def test_retry_after_header(headers: dict[str, str] | None, expected: float | None) -> None:
    assert _retry_after(headers) == expected


def complete(base_url: str, timeout: float = 5.0) -> ChatReply:
    async def go() -> ChatReply:
        backend = OpenAIBackend(model="m", base_url=base_url, api_key="k", timeout=timeout)
        try:
            return await backend.complete(MESSAGES, PARAMS)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_backend_reply_and_request() -> None:
    seen: list[dict[str, Any]] = []

    def respond(request: dict[str, Any]) -> str:
        seen.append(request)
        return "four"

    with ScriptedServer(responder=respond) as srv:
        reply = complete(srv.base_url)
    assert (reply.text, reply.finish_reason) == ("four", "stop")
    assert reply.usage.completion_tokens == 1 and reply.usage.prompt_tokens > 0
    assert seen[0]["temperature"] == 0.0 and seen[0]["max_tokens"] == 5 and seen[0]["seed"] == 0
    assert "stop" not in seen[0]


def test_backend_raises_backend_error() -> None:
    with ScriptedServer(faults=always(Fault.rate_limit(0.25))) as srv, \
            pytest.raises(BackendError) as caught:  # fmt: skip
        complete(srv.base_url)
    assert caught.value.retryable and caught.value.retry_after == 0.25
    assert isinstance(caught.value.__cause__, openai.RateLimitError)


def test_backend_empty_reply_is_text_not_error() -> None:
    with ScriptedServer(faults=always(Fault.empty())) as srv:
        assert complete(srv.base_url).text == ""


def test_switches_to_max_completion_tokens_when_the_model_asks() -> None:
    """Newer OpenAI models reject max_tokens with a 400 naming max_completion_tokens."""
    import http.server
    import json as _json
    import threading

    seen: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = _json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            if "max_tokens" in body:
                status, payload = (
                    400,
                    {
                        "error": {
                            "message": "Unsupported parameter: 'max_tokens'. "
                            "Use 'max_completion_tokens' instead.",
                            "type": "invalid_request_error",
                            "param": "max_tokens",
                            "code": "unsupported_parameter",
                        }
                    },
                )
            else:
                status, payload = 200, {
                    "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip
            data = _json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        backend = OpenAIBackend(model="m", base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="k")

        async def go() -> list[str]:
            params = StageParams(temperature=0, max_tokens=7)
            try:
                return [(await backend.complete([{"role": "user", "content": "hi"}], params)).text
                        for _ in range(2)]  # fmt: skip
            finally:
                await backend.aclose()

        assert asyncio.run(go()) == ["ok", "ok"]
    finally:
        server.shutdown()
    sent = [("max_tokens" in b, b.get("max_completion_tokens")) for b in seen]
    assert sent == [(True, None), (False, 7), (False, 7)]  # switched once, then stays switched


def test_azure_base_url_uses_the_azure_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    backend = OpenAIBackend(model="deployment", base_url="https://name.openai.azure.com", api_key="k")
    assert isinstance(backend._client, openai.AsyncAzureOpenAI)
    plain = OpenAIBackend(model="m", base_url="http://127.0.0.1:1/v1", api_key="k")
    assert not isinstance(plain._client, openai.AsyncAzureOpenAI)


@pytest.mark.parametrize(("body", "content_type"), [
    (b"<html>bad gateway</html>", "text/html"),
    (b'{"choices": [{"message": {"content": 42}}]}', "application/json"),
    (b'{"choices": "none"', "application/json"),
])  # fmt: skip
def test_a_reply_that_is_not_a_chat_completion_is_a_retryable_error(body: bytes, content_type: str) -> None:
    """A 200 whose body is no chat completion (a proxy's page, a wrong type, torn JSON) costs an
    attempt, never becomes an answer."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(BackendError) as caught:
            complete(f"http://127.0.0.1:{server.server_port}/v1")
    finally:
        server.shutdown()
    assert caught.value.kind == "bad_reply" and caught.value.retryable
