"""A scriptable OpenAI-compatible chat-completions server on 127.0.0.1.

End-to-end tests, the benchmark and users dry-running a pipeline need a "model" that answers
instantly or after a fixed latency, says exactly what the script says, and fails on cue (429 with
``Retry-After``, 5xx, a dropped connection, a reply slower than the client timeout, an empty
reply, a permanent 401/403/404, a reply dripped one byte at a time, silence). It must never be
the bottleneck, so the HTTP layer (:mod:`examharness.testing._http`) is plain asyncio sending
every reply in one write with ``TCP_NODELAY``; what to say and when to fail comes from the
responders and fault policies in :mod:`examharness.testing.script`.

All request handling runs on the server's own event loop, one request at a time, so responders
and fault policies are never called concurrently; the lock only guards readers of the log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from examharness.errors import InputError
from examharness.testing._http import (
    Connection,
    Reply,
    Request,
    completion_body,
    error_response,
    json_response,
    logprob_completion_body,
)
from examharness.testing.batch_api import BatchAPI
from examharness.testing.script import (
    Fault,
    FaultPolicy,
    RequestRecord,
    Responder,
    Scorer,
    ScriptedReply,
    answer_key_responder,
    echo_responder,
    every_request,
    faults_on_first_attempts,
    last_user_message,
    prompt_hash,
)

__all__ = ["ScriptedServer", "main"]

_CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_MODELS_PATHS = frozenset({"/v1/models", "/models"})
_COMPLETIONS_PATHS = frozenset({"/v1/completions", "/completions"})
BodyMaker = Callable[[int, dict[str, Any], bool], dict[str, Any]]
"""``(request_index, request, empty) -> reply body``; ``empty`` is the scripted ``empty`` fault."""


class ScriptedServer:
    """OpenAI-compatible server: ``with ScriptedServer(...) as srv: use(srv.base_url)``.

    ``scorer`` (optional) also serves legacy ``/v1/completions`` with ``echo`` and ``logprobs``,
    the prompt log-probabilities a held-out loss needs; without it that route is a 404, like a
    chat-only API. Responders and scorers see the request's ``model``, so one server can play a
    whole model family. ``latency`` delays every 200 reply; error replies (429, 5xx) go out at
    once, like a gateway rejecting a request. ``batches`` (a
    :class:`~examharness.testing.batch_api.BatchAPI`) adds the Files and Batches endpoints.
    ``port=0`` picks a free port. Use as a context
    manager (background thread with its own event loop) or call :meth:`serve_forever` to run in
    the foreground.
    """

    def __init__(
        self,
        *,
        responder: Responder = echo_responder,
        latency: float = 0.0,
        faults: FaultPolicy | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = "scripted",
        scorer: Scorer | None = None,
        batches: BatchAPI | None = None,
    ) -> None:
        self._responder, self._latency, self._faults = responder, latency, faults
        self._batches = batches
        self._scorer = scorer
        self._host, self._port, self._model = host, port, model
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._attempts: Counter[str] = Counter()
        self._connections = 0
        self._in_flight = self._peak = 0
        self._open: set[Connection] = set()
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
            return dict(
                Counter(
                    r.prompt_hash
                    for r in self._log
                    if r.prompt_hash is not None and r.status == 200 and r.fault is None
                )
            )

    @property
    def peak_in_flight(self) -> int:
        """The most chat requests this server held at once (read, reply not yet sent): what a
        client's concurrency limit for this server must keep under."""
        with self._lock:
            return self._peak

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
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
        server = await self._loop.create_server(self._new_connection, self._host, self._port, backlog=1024)
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

    def _new_connection(self) -> Connection:
        self._connections += 1
        return Connection(self._answer, self._open, self._connections)

    def _record(
        self,
        connection: int,
        path: str,
        request: dict[str, Any] | None,
        status: int | None,
        fault: str | None,
        key: str | None = None,
    ) -> None:
        """Append one log entry, counting an attempt for chat requests (``key`` = prompt hash)."""
        with self._lock:
            attempt = 1
            if key is not None:
                self._attempts[key] += 1
                attempt = self._attempts[key]
            record = RequestRecord(
                index=len(self._log),
                time=time.time(),
                connection=connection,
                path=path,
                prompt_hash=key,
                last_user=last_user_message(request) if request else None,
                attempt=attempt,
                status=status,
                fault=fault,
            )
            self._log.append(record)

    def _answer(self, http: Request, connection: int) -> Reply:
        """What to send for one request (see :class:`~examharness.testing._http.Reply`)."""
        keep = http.keep_alive
        if self._batches is not None and self._batches.handles(http.path):
            status, data = self._batches.answer(http, self._batch_entry)
            self._record(connection, http.path, None, status, None)
            return Reply(data)
        if http.method == "GET" and http.path in _MODELS_PATHS:
            self._record(connection, http.path, None, 200, None)
            model = {"id": self._model, "object": "model", "created": 0, "owned_by": "examharness"}
            return Reply(json_response(200, {"object": "list", "data": [model]}, keep_alive=keep))
        chat = http.path in _CHAT_PATHS
        completions = http.path in _COMPLETIONS_PATHS and self._scorer is not None
        if http.method != "POST" or not (chat or completions):
            self._record(connection, http.path, None, 404, None)
            message = f"no route {http.method} {http.path}"
            return Reply(error_response(404, message, "not_found", keep_alive=keep))
        try:
            request = json.loads(http.body)
            if not isinstance(request, dict):
                raise ValueError("body must be a JSON object")
            if chat and not isinstance(request.get("messages"), list):
                raise ValueError("body must be a JSON object with a 'messages' list")
            if completions and not (isinstance(request.get("prompt"), str) and request.get("echo")
                                    and request.get("logprobs") is not None):  # fmt: skip
                raise ValueError("scripted completions answer only a string 'prompt' with echo and logprobs")
        except ValueError as exc:
            self._record(connection, http.path, None, 400, None)
            return Reply(error_response(400, str(exc), "invalid_request_error", keep_alive=keep))
        return self._chat(http, request, connection, self._chat_body if chat else self._logprob_body)

    def _chat(self, http: Request, request: dict[str, Any], connection: int, make_body: BodyMaker) -> Reply:
        """:meth:`_reply`, counted in flight until it is sent."""
        with self._lock:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
        return self._reply(http, request, connection, make_body)._replace(done=self._sent)

    def _sent(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _reply(self, http: Request, request: dict[str, Any], connection: int, make_body: BodyMaker) -> Reply:
        """Apply the fault policy, then answer with ``make_body(index, request, empty)``."""
        path, keep, key = http.path, http.keep_alive, prompt_hash(request)
        with self._lock:
            index, attempt = len(self._log), self._attempts[key] + 1
        fault = self._faults(index, request, attempt) if self._faults is not None else None
        kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind in ("drop", "silent"):
            self._record(connection, path, request, None, kind, key)
            return Reply(None, silent=fault.kind == "silent")
        if fault is not None and fault.kind in ("rate_limit", "server_error", "reject"):
            self._record(connection, path, request, 429 if kind == "rate_limit" else fault.status, kind, key)
            return Reply(_fault_response(fault, http))
        try:
            body = make_body(index, request, kind == "empty")
        except Exception as exc:
            self._record(connection, path, request, 500, "responder_error", key)
            return Reply(error_response(500, f"responder failed: {exc}", "server_error", keep_alive=keep))
        self._record(connection, path, request, 200, kind, key)
        reply = json_response(200, body, keep_alive=keep)
        if fault is not None and fault.kind == "drip":
            return Reply(reply, self._latency, drip=fault.seconds)
        return Reply(reply, self._latency + (fault.seconds if fault is not None else 0.0))

    def _chat_body(self, index: int, request: dict[str, Any], empty: bool) -> dict[str, Any]:
        said = ScriptedReply(text="") if empty else self._responder(request)
        reply = ScriptedReply(text=said) if isinstance(said, str) else said
        return completion_body(index, request, reply.text, reply.finish_reason)

    def _batch_entry(self, request: dict[str, Any]) -> dict[str, Any]:
        """One batch entry, answered as the chat endpoint would and logged as ``batch``."""
        with self._lock:
            index = len(self._log)
        body = self._chat_body(index, request, False)
        self._record(0, "batch", request, 200, None, prompt_hash(request))
        return body

    def _logprob_body(self, index: int, request: dict[str, Any], empty: bool) -> dict[str, Any]:
        assert self._scorer is not None
        return logprob_completion_body(index, request, [] if empty else self._scorer(request))


def _fault_response(fault: Fault, http: Request) -> bytes:
    """The error reply of a rate-limit, server-error or reject fault; errors go out at once."""
    keep = http.keep_alive
    if fault.kind == "rate_limit":
        wait = {"Retry-After": f"{fault.retry_after:g}", "retry-after-ms": f"{fault.retry_after * 1000:.0f}"}
        return error_response(
            429, "Rate limit reached (scripted).", "rate_limit_exceeded", keep_alive=keep, headers=wait
        )
    if fault.kind == "server_error":
        return error_response(fault.status, "Scripted server error.", "server_error", keep_alive=keep)
    if fault.status == 401:
        key = http.authorization.removeprefix("Bearer ").strip()
        message = f"Incorrect API key provided: {key}. You can find your API key in your account."
        return error_response(401, message, "invalid_api_key", keep_alive=keep)
    if fault.status == 403:
        message = "You are not allowed to use this model."
        return error_response(403, message, "permission_denied", keep_alive=keep)
    return error_response(404, "The model does not exist (scripted).", "model_not_found", keep_alive=keep)


def _load_answer_key(path: Path) -> dict[str, str | ScriptedReply]:
    """``{substring: reply}``; a reply is text or ``{"text": ..., "finish_reason": "length"}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError.one(path, None, "", f"cannot read answer key: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError.one(path, None, "", "answer key must map question substrings to replies")
    key: dict[str, str | ScriptedReply] = {}
    for needle, reply in data.items():
        try:
            key[str(needle)] = reply if isinstance(reply, str) else ScriptedReply.model_validate(reply)
        except ValidationError as exc:
            problem = "reply must be text or {text, finish_reason}"
            raise InputError.one(path, None, str(needle), problem) from exc
    return key


def _known(paths: list[Path], wrong_every: int) -> Responder:
    from examharness.testing.known import known_answers

    known = known_answers(paths, wrong_every=wrong_every)
    print(f"expected correct: {json.dumps(known.expected_correct, sort_keys=True)}", flush=True)
    return known.responder()


def main(argv: Sequence[str] | None = None) -> int:
    """Foreground CLI; prints ``listening on <base_url>`` once ready (useful with ``--port 0``)."""
    parser = argparse.ArgumentParser(
        prog="python -m examharness.testing.scripted_server",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per 200 reply")
    parser.add_argument(
        "--answer-key", type=Path,
        help='JSON {question substring: reply text or {"text": ..., "finish_reason": "length"}}',
    )
    parser.add_argument("--fallback", help="reply when no answer-key entry matches")
    parser.add_argument("--answers-from", type=Path, nargs="+", metavar="EXAM",
                        help="answer these exams' multiple-choice items (examharness.testing.known)")
    parser.add_argument("--wrong-every", type=int, default=0, metavar="N",
                        help="with --answers-from: answer every N-th item of each exam wrongly")
    parser.add_argument(
        "--fault-fraction", type=float, default=0.0, help="share of prompts whose first attempt fails"
    )
    parser.add_argument(
        "--fault-kinds",
        default="rate_limit,server_error",
        help="comma list of rate_limit, server_error, drop, empty",
    )
    parser.add_argument(
        "--always",
        choices=["unauthorized", "forbidden", "model_not_found", "drip", "silent", "empty"],
        help="misbehave on every request: 401 echoing the key, 403, 404, one byte per second, no answer",
    )
    parser.add_argument("--batch-polls", type=int, default=0, metavar="N",
                        help="also serve the Files and Batches APIs; a batch spends N polls in each status")
    parser.add_argument("--retry-after", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kinds = {
        "rate_limit": Fault.rate_limit(args.retry_after),
        "server_error": Fault.server_error(),
        "drop": Fault.drop(),
        "empty": Fault.empty(),
    }
    try:
        responder = (
            answer_key_responder(_load_answer_key(args.answer_key), fallback=args.fallback)
            if args.answer_key
            else _known(args.answers_from, args.wrong_every) if args.answers_from
            else echo_responder
        )
        chosen = [kinds[k.strip()] for k in args.fault_kinds.split(",") if k.strip()]
    except InputError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (KeyError, ValidationError) as exc:
        print(f"--fault-kinds: unknown kind {exc}", file=sys.stderr)
        return 1
    always = {
        "unauthorized": Fault.reject(401), "forbidden": Fault.reject(403),
        "model_not_found": Fault.reject(404), "drip": Fault.drip(1.0), "silent": Fault.silent(),
        "empty": Fault.empty(),
    }  # fmt: skip
    faults = (
        every_request(always[args.always])
        if args.always
        else faults_on_first_attempts(args.fault_fraction, args.seed, chosen)
        if args.fault_fraction > 0 and chosen
        else None
    )
    batches = BatchAPI(polls_per_status=args.batch_polls) if args.batch_polls else None
    server = ScriptedServer(
        responder=responder, latency=args.latency, faults=faults, host=args.host, port=args.port,
        batches=batches,
    )  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(on_ready=lambda url: print(f"listening on {url}", flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
