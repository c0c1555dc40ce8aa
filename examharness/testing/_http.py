"""The HTTP/1.1 layer of the scripted server: request parsing, reply building, one connection.

It is plain asyncio rather than a framework or ``http.server`` because the server must never be
the bottleneck: every reply leaves in one write with ``TCP_NODELAY`` set, so keep-alive clients do
not meet the ~40 ms delayed-ACK stall that split header/body writes cause. What to answer is not
decided here: a :class:`Connection` hands each complete request to an :data:`Answer` callback.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from typing import Any, NamedTuple

_MAX_HEAD = 64 * 1024
_SILENT_FOR = 3600.0
"""A silent reply closes its connection after an hour at the latest, so nothing waits forever."""
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def json_response(
    status: int, body: dict[str, Any], *, keep_alive: bool, headers: dict[str, str] | None = None
) -> bytes:
    """Headers and body as one buffer, so the reply goes out in a single write."""
    payload = json.dumps(body).encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def error_response(
    status: int, message: str, kind: str, *, keep_alive: bool, headers: dict[str, str] | None = None
) -> bytes:
    body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return json_response(status, body, keep_alive=keep_alive, headers=headers)


def completion_body(
    index: int, request: dict[str, Any], text: str, finish_reason: str = "stop"
) -> dict[str, Any]:
    """A ChatCompletion body; token counts are a deterministic 4-characters-per-token estimate."""
    prompt_chars = sum(
        len(str(m.get("content", ""))) for m in request.get("messages") or [] if isinstance(m, dict)
    )
    prompt_tokens, completion_tokens = prompt_chars // 4 + 1, (len(text) + 3) // 4
    return {
        "id": f"chatcmpl-scripted-{index}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(request.get("model") or "scripted"),
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "logprobs": None,
                "message": {"role": "assistant", "content": text},
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def logprob_completion_body(
    index: int, request: dict[str, Any], scored: list[tuple[str, float]]
) -> dict[str, Any]:
    """A legacy Completion body echoing the prompt with log-probabilities, plus one generated token.

    ``scored`` is the prompt split into tokens (they must join back to the prompt) with each
    token's log-probability; the first is reported as null, as OpenAI-style servers do.
    """
    prompt = str(request.get("prompt") or "")
    tokens = [t for t, _ in scored] + ["."]
    values: list[float | None] = [None] + [v for _, v in scored[1:]] + [-0.5]
    offsets, at = [], 0
    for token in tokens:
        offsets.append(at)
        at += len(token)
    top = [None if v is None else {t: v} for t, v in zip(tokens, values, strict=True)]
    return {
        "id": f"cmpl-scripted-{index}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": str(request.get("model") or "scripted"),
        "choices": [{
            "index": 0, "text": prompt + ".", "finish_reason": "length",
            "logprobs": {"tokens": tokens, "token_logprobs": values, "text_offset": offsets,
                         "top_logprobs": top},
        }],
        "usage": {"prompt_tokens": len(scored), "completion_tokens": 1, "total_tokens": len(scored) + 1},
    }  # fmt: skip


class Request(NamedTuple):
    method: str
    path: str
    body: bytes
    keep_alive: bool
    authorization: str = ""
    """The ``Authorization`` header as sent (case kept), so a fault can echo the key back."""


class Reply(NamedTuple):
    """What to send for one request and how.

    ``data`` None drops the connection, unless ``silent``: then nothing is ever sent and the
    connection stays open until the client gives up. ``drip`` > 0 sends the reply one byte per
    ``drip`` seconds (a server that is alive but never finishes), then closes the connection.
    ``done`` (optional) is called once the reply has gone out or the connection has closed.
    """

    data: bytes | None
    delay: float = 0.0
    drip: float = 0.0
    silent: bool = False
    done: Callable[[], None] | None = None


def parse_request(buffer: bytearray) -> tuple[Request, int] | None:
    """The first complete HTTP/1.1 request in ``buffer`` and its size; None while incomplete.

    Bodies must carry Content-Length (the openai SDK and wrk both send it). ValueError means
    the bytes are not a request we can answer.
    """
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > _MAX_HEAD:
            raise ValueError("request head too large")
        return None
    request_line, *header_lines = buffer[:end].decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ", 2)
    headers, authorization = {}, ""
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
        if name.strip().lower() == "authorization":
            authorization = value.strip()
    if "chunked" in headers.get("transfer-encoding", ""):
        raise ValueError("chunked request bodies are not supported; send Content-Length")
    total = end + 4 + int(headers.get("content-length", "0"))
    if len(buffer) < total:
        return None
    connection = headers.get("connection", "")
    keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
    body = bytes(buffer[end + 4 : total])
    return Request(method, target.split("?", 1)[0], body, keep_alive, authorization), total


Answer = Callable[[Request, int], Reply]
"""``(request, connection_number) -> what to send and when``, see :class:`Reply`."""


class Connection(asyncio.Protocol):
    """One client connection, answering its requests one at a time and in order.

    The reply is computed (and logged) as soon as the request is complete, then written by a
    loop timer ``latency`` after the bytes arrived: no task per request, and the time spent on
    other connections' requests in a burst does not add to anyone's latency.
    """

    def __init__(self, answer: Answer, open_connections: set[Connection], number: int) -> None:
        self._answer, self._open, self._number = answer, open_connections, number
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._pending: asyncio.Handle | None = None
        """The scheduled parse or reply; None while waiting for bytes."""
        self._done: Callable[[], None] | None = None
        """The answered request's :attr:`Reply.done`, until its reply is out."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._open.add(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._pending is None:
            self._pending = self._loop.call_soon(self._next, self._loop.time())

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def _finished(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done()

    def close(self) -> None:
        self._finished()
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._open.discard(self)
        if self._transport is not None:
            self._transport.close()

    def _next(self, arrived: float) -> None:
        self._pending = None
        try:
            parsed = parse_request(self._buffer)
        except ValueError as exc:
            self._send(error_response(400, str(exc), "invalid_request_error", keep_alive=False), False)
            return
        if parsed is None:
            return
        request, size = parsed
        del self._buffer[:size]
        reply = self._answer(request, self._number)
        self._done = reply.done
        if reply.silent:
            self._buffer.clear()
            self._pending = self._loop.call_later(_SILENT_FOR, self.close)
        elif reply.data is None:
            self.close()
        elif reply.drip > 0:
            self._pending = self._loop.call_at(arrived + reply.delay, self._drip, reply.data, reply.drip)
        elif arrived + reply.delay <= self._loop.time():
            self._send(reply.data, request.keep_alive)
        else:
            at = arrived + reply.delay
            self._pending = self._loop.call_at(at, self._send, reply.data, request.keep_alive)

    def _drip(self, rest: bytes, interval: float) -> None:
        """One byte now and the rest later; the connection closes after the last byte."""
        self._pending = None
        if self._transport is None or self._transport.is_closing():
            return
        self._transport.write(rest[:1])
        if len(rest) > 1:
            self._pending = self._loop.call_later(interval, self._drip, rest[1:], interval)
        else:
            self.close()

    def _send(self, reply: bytes, keep_alive: bool) -> None:
        """Headers and body leave in this one write; TCP_NODELAY sends it at once."""
        self._pending = None
        if self._transport is None or self._transport.is_closing():
            return
        self._transport.write(reply)
        self._finished()
        if not keep_alive:
            self.close()
        elif self._buffer:
            self._pending = self._loop.call_soon(self._next, self._loop.time())
