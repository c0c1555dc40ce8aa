"""A scriptable OpenAI-compatible chat-completions server on 127.0.0.1.

End-to-end tests, the benchmark and users dry-running a pipeline need a "model" that answers
instantly or after a fixed latency, says exactly what the script says, and fails on cue (429 with
``Retry-After``, 5xx, a dropped connection, a reply slower than the client timeout, an empty
reply). It is plain asyncio rather than a framework or ``http.server`` because the server must
never be the bottleneck: every reply leaves in one write with ``TCP_NODELAY`` set, so keep-alive
clients do not meet the ~40 ms delayed-ACK stall that split header/body writes cause.

All request handling runs on the server's own event loop, one request at a time, so responders
and fault policies are never called concurrently; the lock only guards readers of the log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError

from examharness.errors import InputError

Responder = Callable[[dict[str, Any]], str]
"""Turns a chat-completions request body into the reply text."""

FaultPolicy = Callable[[int, dict[str, Any], int], "Fault | None"]
"""``(request_index, request_json, attempt_for_this_prompt) -> Fault | None``; attempts from 1."""

_CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_MODELS_PATHS = frozenset({"/v1/models", "/models"})
_MAX_HEAD = 64 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}


class Fault(BaseModel):
    """One scripted misbehaviour for one request; build it with the classmethods.

    ``rate_limit``: 429 with ``Retry-After`` (and ``retry-after-ms``) and an OpenAI error body;
    ``server_error``: 5xx; ``drop``: close the connection unanswered (a connection error);
    ``slow``: a normal reply ``seconds`` late (meant to outlast the client timeout);
    ``empty``: a well-formed 200 whose content is ``""``.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["rate_limit", "server_error", "drop", "slow", "empty"]
    retry_after: float = 1.0
    status: Literal[500, 502, 503, 504] = 500
    seconds: float = 0.0

    @classmethod
    def rate_limit(cls, retry_after: float) -> Fault:
        return cls(kind="rate_limit", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: Literal[500, 502, 503, 504] = 500) -> Fault:
        return cls(kind="server_error", status=status)

    @classmethod
    def drop(cls) -> Fault:
        return cls(kind="drop")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls(kind="slow", seconds=seconds)

    @classmethod
    def empty(cls) -> Fault:
        return cls(kind="empty")


class RequestRecord(BaseModel):
    """One request as the server saw it; the log is what tests assert retry behaviour against."""

    model_config = ConfigDict(frozen=True)

    index: int
    time: float
    """``time.time()`` when the request was read."""
    connection: int
    """Serial number of the TCP connection, so tests can see keep-alive reuse."""
    path: str
    prompt_hash: str | None
    """:func:`prompt_hash` of the messages; None for requests that are not chat completions."""
    last_user: str | None
    attempt: int
    """1 for the first request with this prompt hash, 2 for the next, ..."""
    status: int | None
    """HTTP status sent; None when the connection was dropped."""
    fault: str | None
    """Fault kind applied, ``"responder_error"`` if the responder raised, None for a clean reply."""


def prompt_hash(request: dict[str, Any]) -> str:
    """Stable identity of a prompt: the messages only, so retries of one prompt share it."""
    blob = json.dumps(request.get("messages"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def last_user_message(request: dict[str, Any]) -> str:
    """Text of the last ``user`` message; list-of-parts content contributes its text parts."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(str(p.get("text", "")) for p in content
                                 if isinstance(p, dict) and p.get("type") == "text")
    return ""


def echo_responder(request: dict[str, Any]) -> str:
    """Default responder: repeats the last user message, handy for smoke tests."""
    return f"You said: {last_user_message(request)}"


def answer_key_responder(key: dict[str, str], *, fallback: str | None = None) -> Responder:
    """Reply with ``key[s]`` for the longest key ``s`` found in the last user message.

    Keys are unique substrings of each question, so both stages of a two-stage request (which
    repeat the question) find the same item. With no match and no ``fallback`` the responder
    raises LookupError, which the server turns into a 500 so a wrong key fails loudly.
    """
    ordered = sorted(key.items(), key=lambda kv: len(kv[0]), reverse=True)

    def respond(request: dict[str, Any]) -> str:
        text = last_user_message(request)
        for needle, reply in ordered:
            if needle in text:
                return reply
        if fallback is None:
            raise LookupError(f"no answer-key entry matches: {text[:80]!r}")
        return fallback

    return respond


def faults_on_first_attempts(fraction: float, seed: int, kinds: Sequence[Fault]) -> FaultPolicy:
    """Fault the first attempt of about ``fraction`` of distinct prompts, never a retry.

    Which prompts and which of ``kinds`` each gets follow from a hash of ``seed`` and the prompt,
    so the policy is stateless and the same run can be replayed exactly.
    """
    if not kinds:
        raise ValueError("faults_on_first_attempts needs at least one fault kind")
    choices = tuple(kinds)

    def policy(index: int, request: dict[str, Any], attempt: int) -> Fault | None:
        if attempt != 1:
            return None
        digest = hashlib.sha256(f"{seed}:{prompt_hash(request)}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= fraction:
            return None
        return choices[int.from_bytes(digest[8:16], "big") % len(choices)]

    return policy


def _response(status: int, body: dict[str, Any], *, keep_alive: bool,
              headers: dict[str, str] | None = None) -> bytes:
    """Headers and body as one buffer, so the reply goes out in a single write."""
    payload = json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
             "Content-Type: application/json", f"Content-Length: {len(payload)}",
             f"Connection: {'keep-alive' if keep_alive else 'close'}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _error(status: int, message: str, kind: str, *, keep_alive: bool,
           headers: dict[str, str] | None = None) -> bytes:
    body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return _response(status, body, keep_alive=keep_alive, headers=headers)


def _completion(index: int, request: dict[str, Any], text: str) -> dict[str, Any]:
    """A ChatCompletion body; token counts are a deterministic 4-characters-per-token estimate."""
    prompt_chars = sum(len(str(m.get("content", ""))) for m in request.get("messages") or []
                       if isinstance(m, dict))
    prompt_tokens, completion_tokens = prompt_chars // 4 + 1, (len(text) + 3) // 4
    return {
        "id": f"chatcmpl-scripted-{index}", "object": "chat.completion",
        "created": int(time.time()), "model": str(request.get("model") or "scripted"),
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class _Request(NamedTuple):
    method: str
    path: str
    body: bytes
    keep_alive: bool


def _parse_request(buffer: bytearray) -> tuple[_Request, int] | None:
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
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if "chunked" in headers.get("transfer-encoding", ""):
        raise ValueError("chunked request bodies are not supported; send Content-Length")
    total = end + 4 + int(headers.get("content-length", "0"))
    if len(buffer) < total:
        return None
    connection = headers.get("connection", "")
    keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
    body = bytes(buffer[end + 4:total])
    return _Request(method, target.split("?", 1)[0], body, keep_alive), total


Answer = Callable[[_Request, int], tuple[bytes | None, float]]


class _Connection(asyncio.Protocol):
    """One client connection, answering its requests one at a time and in order.

    The reply is computed (and logged) as soon as the request is complete, then written by a
    loop timer ``latency`` after the bytes arrived: no task per request, and the time spent on
    other connections' requests in a burst does not add to anyone's latency.
    """

    def __init__(self, answer: Answer, open_connections: set[_Connection], number: int) -> None:
        self._answer, self._open, self._number = answer, open_connections, number
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._pending: asyncio.Handle | None = None
        """The scheduled parse or reply; None while waiting for bytes."""

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

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._open.discard(self)
        if self._transport is not None:
            self._transport.close()

    def _next(self, arrived: float) -> None:
        self._pending = None
        try:
            parsed = _parse_request(self._buffer)
        except ValueError as exc:
            self._send(_error(400, str(exc), "invalid_request_error", keep_alive=False), False)
            return
        if parsed is None:
            return
        request, size = parsed
        del self._buffer[:size]
        reply, delay = self._answer(request, self._number)
        if reply is None:
            self.close()
        elif arrived + delay <= self._loop.time():
            self._send(reply, request.keep_alive)
        else:
            self._pending = self._loop.call_at(arrived + delay, self._send, reply,
                                               request.keep_alive)

    def _send(self, reply: bytes, keep_alive: bool) -> None:
        """Headers and body leave in this one write; TCP_NODELAY sends it at once."""
        self._pending = None
        if self._transport is None or self._transport.is_closing():
            return
        self._transport.write(reply)
        if not keep_alive:
            self.close()
        elif self._buffer:
            self._pending = self._loop.call_soon(self._next, self._loop.time())


class ScriptedServer:
    """OpenAI-compatible server: ``with ScriptedServer(...) as srv: use(srv.base_url)``.

    ``latency`` delays every 200 reply; error replies (429, 5xx) go out at once, like a gateway
    rejecting a request. ``port=0`` picks a free port. Use as a context manager (background
    thread with its own event loop) or call :meth:`serve_forever` to run in the foreground.
    """

    def __init__(self, *, responder: Responder = echo_responder, latency: float = 0.0,
                 faults: FaultPolicy | None = None, host: str = "127.0.0.1", port: int = 0,
                 model: str = "scripted") -> None:
        self._responder, self._latency, self._faults = responder, latency, faults
        self._host, self._port, self._model = host, port, model
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._attempts: Counter[str] = Counter()
        self._connections = 0
        self._open: set[_Connection] = set()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def port(self) -> int:
        if not self._ready.is_set():
            raise RuntimeError("ScriptedServer is not running")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def count_by_prompt(self) -> dict[str, int]:
        """Chat requests received per prompt hash, faults and retries included."""
        with self._lock:
            return dict(Counter(r.prompt_hash for r in self._log if r.prompt_hash is not None))

    def successful_by_prompt(self) -> dict[str, int]:
        """Clean 200 replies (no fault) per prompt hash; 1 everywhere means no duplicate work."""
        with self._lock:
            return dict(Counter(r.prompt_hash for r in self._log
                                if r.prompt_hash is not None and r.status == 200
                                and r.fault is None))

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Serve from a daemon thread; returns once the port is bound, raises if it cannot be."""
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.serve_forever()
            except BaseException as exc:
                failure.append(exc)
                self._ready.set()

        self._thread = threading.Thread(target=run, name="scripted-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10) or failure:
            self._thread.join(timeout=1)
            self._thread = None
            raise RuntimeError(f"ScriptedServer did not start: {failure or 'timeout'}")

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self._thread = None

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve in the calling thread until :meth:`stop` (or the process ends)."""
        asyncio.run(self._main(on_ready))

    async def _main(self, on_ready: Callable[[str], None] | None) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await self._loop.create_server(self._new_connection, self._host, self._port,
                                                backlog=1024)
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        if on_ready is not None:
            on_ready(self.base_url)
        try:
            await self._stop.wait()
        finally:
            self._ready.clear()
            server.close()
            for connection in list(self._open):
                connection.close()
            await server.wait_closed()

    def _new_connection(self) -> _Connection:
        self._connections += 1
        return _Connection(self._answer, self._open, self._connections)

    def _record(self, connection: int, path: str, request: dict[str, Any] | None,
                status: int | None, fault: str | None, key: str | None = None) -> None:
        """Append one log entry, counting an attempt for chat requests (``key`` = prompt hash)."""
        with self._lock:
            attempt = 1
            if key is not None:
                self._attempts[key] += 1
                attempt = self._attempts[key]
            record = RequestRecord(
                index=len(self._log), time=time.time(), connection=connection, path=path,
                prompt_hash=key, last_user=last_user_message(request) if request else None,
                attempt=attempt, status=status, fault=fault)
            self._log.append(record)

    def _answer(self, http: _Request, connection: int) -> tuple[bytes | None, float]:
        """The reply (None: drop the connection) and how long after arrival to send it."""
        keep = http.keep_alive
        if http.method == "GET" and http.path in _MODELS_PATHS:
            self._record(connection, http.path, None, 200, None)
            model = {"id": self._model, "object": "model", "created": 0, "owned_by": "examharness"}
            return _response(200, {"object": "list", "data": [model]}, keep_alive=keep), 0.0
        if http.method != "POST" or http.path not in _CHAT_PATHS:
            self._record(connection, http.path, None, 404, None)
            message = f"no route {http.method} {http.path}"
            return _error(404, message, "not_found", keep_alive=keep), 0.0
        try:
            request = json.loads(http.body)
            if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
                raise ValueError("body must be a JSON object with a 'messages' list")
        except ValueError as exc:
            self._record(connection, http.path, None, 400, None)
            return _error(400, str(exc), "invalid_request_error", keep_alive=keep), 0.0
        return self._chat(http, request, connection)

    def _chat(self, http: _Request, request: dict[str, Any],
              connection: int) -> tuple[bytes | None, float]:
        path, keep, key = http.path, http.keep_alive, prompt_hash(request)
        with self._lock:
            index, attempt = len(self._log), self._attempts[key] + 1
        fault = self._faults(index, request, attempt) if self._faults is not None else None
        kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind == "drop":
            self._record(connection, path, request, None, kind, key)
            return None, 0.0
        if fault is not None and fault.kind == "rate_limit":
            self._record(connection, path, request, 429, kind, key)
            wait = {"Retry-After": f"{fault.retry_after:g}",
                    "retry-after-ms": f"{fault.retry_after * 1000:.0f}"}
            return _error(429, "Rate limit reached (scripted).", "rate_limit_exceeded",
                          keep_alive=keep, headers=wait), 0.0
        if fault is not None and fault.kind == "server_error":
            self._record(connection, path, request, fault.status, kind, key)
            return _error(fault.status, "Scripted server error.", "server_error",
                          keep_alive=keep), 0.0
        try:
            text = "" if kind == "empty" else self._responder(request)
        except Exception as exc:
            self._record(connection, path, request, 500, "responder_error", key)
            return _error(500, f"responder failed: {exc}", "server_error", keep_alive=keep), 0.0
        self._record(connection, path, request, 200, kind, key)
        delay = self._latency + (fault.seconds if fault is not None else 0.0)
        return _response(200, _completion(index, request, text), keep_alive=keep), delay


def _load_answer_key(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError.one(path, None, "", f"cannot read answer key: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError.one(path, None, "", "answer key must map question substrings to text")
    return {str(k): v for k, v in data.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Foreground CLI; prints ``listening on <base_url>`` once ready (useful with ``--port 0``)."""
    parser = argparse.ArgumentParser(prog="python -m examharness.testing.scripted_server",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per 200 reply")
    parser.add_argument("--answer-key", type=Path, help="JSON {question substring: reply text}")
    parser.add_argument("--fallback", help="reply when no answer-key entry matches")
    parser.add_argument("--fault-fraction", type=float, default=0.0,
                        help="share of prompts whose first attempt fails")
    parser.add_argument("--fault-kinds", default="rate_limit,server_error",
                        help="comma list of rate_limit, server_error, drop, empty")
    parser.add_argument("--retry-after", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kinds = {"rate_limit": Fault.rate_limit(args.retry_after), "server_error": Fault.server_error(),
             "drop": Fault.drop(), "empty": Fault.empty()}
    try:
        responder = (answer_key_responder(_load_answer_key(args.answer_key), fallback=args.fallback)
                     if args.answer_key else echo_responder)
        chosen = [kinds[k.strip()] for k in args.fault_kinds.split(",") if k.strip()]
    except InputError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (KeyError, ValidationError) as exc:
        print(f"--fault-kinds: unknown kind {exc}", file=sys.stderr)
        return 1
    faults = (faults_on_first_attempts(args.fault_fraction, args.seed, chosen)
              if args.fault_fraction > 0 and chosen else None)
    server = ScriptedServer(responder=responder, latency=args.latency, faults=faults,
                            host=args.host, port=args.port)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(on_ready=lambda url: print(f"listening on {url}", flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
