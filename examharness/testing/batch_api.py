"""The Files and Batches endpoints of the scripted server: a provider's batch engine in miniature.

``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}`` and ``/v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``. A batch moves
``validating`` → ``in_progress`` → ``finalizing`` → ``completed`` over ``polls_per_status``
retrieves each; when it completes, every entry is answered by the server's own chat logic (the
same scripted replies the chat endpoint gives) into an output file, and the entries ``fail``
picks get a 500 in an error file. A batch whose creation number is in ``expire`` ends ``expired``
with only its first ``answered_before_expiry`` entries answered, and one in ``invalid`` fails
validation (status ``failed``, with ``errors``). ``reject`` answers every call
with a permanent 401/403/404 (the 401 echoes the key, as the chat endpoint's does). Submissions
are counted (:attr:`BatchAPI.created`), so tests can check nothing was sent twice.

Like the rest of the server, handlers run one at a time on its event loop; the lock only guards
readers on other threads.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from examharness.testing._http import Request, error_response, json_response

Entry = Callable[[dict[str, Any]], dict[str, Any]]
"""A chat-completions request body -> the reply body (the server's chat logic)."""
_PROGRESSION = ("validating", "in_progress", "finalizing", "completed")
_FILE = re.compile(r"^(?:/v1)?/files(?:/([^/]+)(/content)?)?$")
_BATCH = re.compile(r"^(?:/v1)?/batches(?:/([^/]+)(/cancel)?)?$")


@dataclass
class _Batch:
    id: str
    input_file_id: str
    lines: list[dict[str, Any]]
    number: int
    metadata: dict[str, str] | None
    created_at: int = field(default_factory=lambda: int(time.time()))
    polls: int = 0
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    errors: list[dict[str, Any]] = field(default_factory=list)


class BatchAPI:
    def __init__(
        self, *, polls_per_status: int = 1, fail: Callable[[str], bool] | None = None,
        expire: frozenset[int] = frozenset(), answered_before_expiry: int = 0,
        reject: Literal[401, 403, 404] | None = None, invalid: frozenset[int] = frozenset(),
    ) -> None:  # fmt: skip
        self._per_status, self._fail, self._expire = max(1, polls_per_status), fail, expire
        self._invalid = invalid
        self._answered_before_expiry, self._reject = answered_before_expiry, reject
        self._files: dict[str, tuple[str, str, bytes]] = {}
        self._batches: dict[str, _Batch] = {}
        self._lock = threading.Lock()
        self._created: list[str] = []
        self._uploads = 0

    @property
    def created(self) -> list[str]:
        """Ids of the batches created, in order (one per submission)."""
        with self._lock:
            return list(self._created)

    @property
    def uploads(self) -> int:
        with self._lock:
            return self._uploads

    def batch_lines(self, batch_id: str) -> list[dict[str, Any]]:
        """The request lines of a created batch, as uploaded."""
        with self._lock:
            return list(self._batches[batch_id].lines)

    @staticmethod
    def handles(path: str) -> bool:
        return bool(_FILE.match(path) or _BATCH.match(path))

    def answer(self, http: Request, entry: Entry) -> tuple[int, bytes]:
        """``(status, HTTP reply)`` for one Files or Batches request."""
        keep = http.keep_alive
        if self._reject is not None:
            return self._reject, _reject(self._reject, http)
        try:
            if m := _FILE.match(http.path):
                return self._file(http, m.group(1), bool(m.group(2)))
            m = _BATCH.match(http.path)
            assert m is not None
            return self._batch(http, m.group(1), bool(m.group(2)), entry)
        except (ValueError, KeyError) as exc:
            return 400, error_response(
                400, f"scripted batch API: {exc}", "invalid_request_error", keep_alive=keep
            )

    def _file(self, http: Request, file_id: str | None, content: bool) -> tuple[int, bytes]:
        keep = http.keep_alive
        if http.method == "POST" and file_id is None:
            form = _multipart(http.body)
            if form.get("purpose") != b"batch" or "file" not in form:
                raise ValueError("upload a 'file' with purpose 'batch'")
            with self._lock:
                self._uploads += 1
            return 200, json_response(200, self._store(form.get("filename", b"input.jsonl").decode(),
                                                       "batch", form["file"]), keep_alive=keep)  # fmt: skip
        if http.method != "GET" or file_id not in self._files:
            return 404, error_response(404, f"no file {file_id}", "not_found", keep_alive=keep)
        if content:
            return 200, _raw_response(self._files[file_id][2], keep_alive=keep)
        return 200, json_response(200, self._file_object(file_id), keep_alive=keep)

    def _store(self, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        file_id = f"file-scripted-{len(self._files) + 1}"
        self._files[file_id] = (filename, purpose, data)
        return self._file_object(file_id)

    def _file_object(self, file_id: str) -> dict[str, Any]:
        name, purpose, data = self._files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": name, "purpose": purpose, "status": "processed"}  # fmt: skip

    def _batch(self, http: Request, batch_id: str | None, cancel: bool, entry: Entry) -> tuple[int, bytes]:
        keep = http.keep_alive
        if http.method == "POST" and batch_id is None:
            return 200, json_response(200, self._create(json.loads(http.body)), keep_alive=keep)
        batch = self._batches.get(batch_id or "")
        if batch is None:
            return 404, error_response(404, f"no batch {batch_id}", "not_found", keep_alive=keep)
        if cancel and http.method == "POST":
            if batch.status not in ("completed", "expired", "failed"):
                batch.status = "cancelled"
        elif http.method == "GET":
            self._advance(batch, entry)
        else:
            return 404, error_response(
                404, f"no route {http.method} {http.path}", "not_found", keep_alive=keep
            )
        return 200, json_response(200, _batch_object(batch), keep_alive=keep)

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            raise ValueError("endpoint must be /v1/chat/completions and completion_window 24h")
        name, _, data = self._files[str(body.get("input_file_id"))]
        lines = [json.loads(raw) for raw in data.splitlines() if raw.strip()]
        ids = [line["custom_id"] for line in lines]
        if len(set(ids)) != len(ids) or any(line.get("url") != "/v1/chat/completions" for line in lines):
            raise ValueError(f"{name}: custom_ids must be unique and every url /v1/chat/completions")
        with self._lock:
            batch = _Batch(f"batch_scripted_{len(self._created) + 1}", str(body["input_file_id"]), lines,
                           len(self._created), body.get("metadata"))  # fmt: skip
            batch.counts["total"] = len(lines)
            self._batches[batch.id] = batch
            self._created.append(batch.id)
        return _batch_object(batch)

    def _advance(self, batch: _Batch, entry: Entry) -> None:
        """One poll: the next status every ``polls_per_status`` polls; the answers at the end."""
        if batch.status in ("completed", "expired", "failed", "cancelled"):
            return
        batch.polls += 1
        status = _PROGRESSION[min(batch.polls // self._per_status, len(_PROGRESSION) - 1)]
        expiring = batch.number in self._expire
        if batch.number in self._invalid:
            batch.status = "failed"
            message = "Scripted: the model is not available for batches."
            batch.errors = [{"code": "invalid_model", "message": message, "param": "body.model", "line": 1}]
            return
        if status == "in_progress":
            batch.counts["completed"] = len(batch.lines) // 2
        if status != "completed":
            batch.status = status
            return
        answered = batch.lines[: self._answered_before_expiry] if expiring else batch.lines
        out, errors = [], []
        for n, line in enumerate(answered):
            if self._fail is not None and self._fail(line["custom_id"]):
                body = {"error": {"message": "Scripted entry failure.", "type": "server_error"}}
                errors.append(_result(batch, n, line["custom_id"], 500, body))
            else:
                out.append(_result(batch, n, line["custom_id"], 200, entry(line["body"])))
        batch.status = "expired" if expiring else "completed"
        batch.counts.update(completed=len(out), failed=len(errors))
        if out:
            batch.output_file_id = self._store("output.jsonl", "batch_output", _jsonl(out))["id"]
        if errors:
            batch.error_file_id = self._store("errors.jsonl", "batch_output", _jsonl(errors))["id"]


def _result(batch: _Batch, n: int, custom_id: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"batch_req_{batch.id}_{n}", "custom_id": custom_id, "error": None,
            "response": {"status_code": status, "request_id": f"req_{n}", "body": body}}  # fmt: skip


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _batch_object(b: _Batch) -> dict[str, Any]:
    return {
        "id": b.id, "object": "batch", "endpoint": "/v1/chat/completions",
        "input_file_id": b.input_file_id, "completion_window": "24h", "status": b.status,
        "errors": {"object": "list", "data": b.errors} if b.errors else None,
        "output_file_id": b.output_file_id, "error_file_id": b.error_file_id, "created_at": b.created_at,
        "request_counts": dict(b.counts), "metadata": b.metadata,
    }  # fmt: skip


def _multipart(body: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body; the file part's name is kept as ``filename``."""
    delimiter, _, _ = body.partition(b"\r\n")
    if not delimiter.startswith(b"--"):
        raise ValueError("expected a multipart/form-data upload")
    fields: dict[str, bytes] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name is not None:
            fields[name.group(1).decode()] = content.removesuffix(b"\r\n")
        filename = re.search(rb'filename="([^"]*)"', head)
        if filename is not None:
            fields["filename"] = filename.group(1)
    return fields


def _raw_response(data: bytes, *, keep_alive: bool) -> bytes:
    head = ["HTTP/1.1 200 OK", "Content-Type: application/octet-stream", f"Content-Length: {len(data)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}"]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def _reject(status: Literal[401, 403, 404], http: Request) -> bytes:
    from examharness.testing.script import Fault
    from examharness.testing.scripted_server import _fault_response

    return _fault_response(Fault.reject(status), http)
