"""The lines of batch files: requests out, results back, and the ``custom_id`` that ties them.

The format is the OpenAI Batch API's, which vLLM's ``run_batch`` and other providers' batch
endpoints read and write too: a request line is ``{"custom_id", "method": "POST", "url":
"/v1/chat/completions", "body": {...}}``; a result line is ``{"id", "custom_id", "response":
{"status_code", "body"}, "error"}``. A ``custom_id`` names the exam, the item, the stage and the
sample (``sat/q12/explanation/0``, ids percent-encoded) and is parsed back strictly: a results
file is untrusted input, and a line that does not name a request we sent is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from examharness.backends.base import BackendError, ChatReply, Usage
from examharness.errors import InputError
from examharness.jsonfiles import parse_model

Stage = Literal["explanation", "answer", "response"]
CHAT_URL: Literal["/v1/chat/completions"] = "/v1/chat/completions"
Outcome = ChatReply | BackendError
"""What a batch said to one request: a reply, or the failure the item is recorded with."""


@dataclass(frozen=True)
class EntryId:
    """Which request a batch line is: ``exam/item/stage/sample``."""

    exam_id: str
    item_id: str
    stage: Stage
    sample: int

    def __str__(self) -> str:
        return f"{quote(self.exam_id, safe='')}/{quote(self.item_id, safe='')}/{self.stage}/{self.sample}"

    @classmethod
    def parse(cls, text: str) -> EntryId:
        """The id ``text`` names; ValueError says what is wrong with it."""
        parts = text.split("/")
        if len(parts) != 4:
            raise ValueError(f"custom_id {text[:80]!r} is not exam/item/stage/sample")
        exam, item, stage, sample = parts
        if stage not in get_args(Stage):
            raise ValueError(f"custom_id {text[:80]!r}: unknown stage {stage[:20]!r}")
        if not sample.isdigit() or str(int(sample)) != sample:
            raise ValueError(f"custom_id {text[:80]!r}: sample {sample[:20]!r} is not a number")
        entry = cls(unquote(exam), unquote(item), stage, int(sample))  # type: ignore[arg-type]
        if not entry.exam_id or not entry.item_id or str(entry) != text:
            raise ValueError(f"custom_id {text[:80]!r} is not in examharness's form")
        return entry


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RequestLine(Strict):
    """One line of a batch input file."""

    custom_id: str
    method: Literal["POST"] = "POST"
    url: Literal["/v1/chat/completions"] = CHAT_URL
    body: dict[str, Any]


class _Message(Strict):
    content: str | None = None


class _Choice(Strict):
    message: _Message
    finish_reason: str | None = None


class CompletionBody(Strict):
    """The part of a chat completion a record keeps."""

    choices: list[_Choice] = Field(min_length=1)
    usage: Usage | None = None


class _Response(Strict):
    status_code: int
    request_id: str | None = None
    body: dict[str, Any] | None = None


class _Error(Strict):
    code: str | None = None
    message: str | None = None


class ResultLine(Strict):
    """One line of a batch output or error file (OpenAI's format; vLLM's ``run_batch`` writes it too)."""

    id: str | None = None
    custom_id: str
    response: _Response | None = None
    error: _Error | None = None

    def outcome(self) -> Outcome:
        """The reply, or why there is none. ValidationError: a 200 whose body is not a chat completion."""
        if self.error is not None:
            what = f"{self.error.code or 'error'}: {self.error.message or 'no message'}"
            return BackendError("batch_entry", what[:300], retryable=False)
        if self.response is None:
            return BackendError("batch_entry", "the result line has neither a response nor an error",
                                retryable=False)  # fmt: skip
        body = self.response.body or {}
        if self.response.status_code != 200:
            error = body.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            what = f"HTTP {self.response.status_code}: {str(message or 'no message')[:300]}"
            return BackendError(f"http_{self.response.status_code}", what, retryable=False)
        completion = CompletionBody.model_validate(body)
        choice = completion.choices[0]
        return ChatReply(text=choice.message.content or "", finish_reason=choice.finish_reason,
                         usage=completion.usage or Usage())  # fmt: skip


def read_results(path: Path, expected: set[str], *, strict: bool = True) -> dict[str, Outcome]:
    """Every line of a results file by ``custom_id``. ``strict`` (an imported file): a line that
    cannot be read, names no request in ``expected`` or repeats one is an :class:`InputError`
    ``FILE:LINE: field: what is wrong``. Not strict (a provider's file, downloaded mid-run): such a
    line costs its own request (an ``error`` item with that line as the reason), not the run."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError.one(path, None, "(file)", f"cannot read: {err.strerror or err}") from None
    out: dict[str, Outcome] = {}
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            custom_id, outcome = _result(path, n, raw, expected, out)
        except InputError as err:
            if strict:
                raise
            loose = _loose_id(raw)
            if loose is not None and loose in expected and loose not in out:
                out[loose] = BackendError("batch_bad_result", str(err)[:300], retryable=False)
            continue
        out[custom_id] = outcome
    return out


def _result(
    path: Path, n: int, raw: bytes, expected: set[str], seen: dict[str, Outcome]
) -> tuple[str, Outcome]:
    line = parse_model(path, n, raw, ResultLine)
    try:
        EntryId.parse(line.custom_id)
    except ValueError as err:
        raise InputError.one(path, n, "custom_id", str(err)) from None
    if line.custom_id not in expected:
        raise InputError.one(path, n, "custom_id", f"{line.custom_id!r} is not a request of this batch")
    if line.custom_id in seen:
        raise InputError.one(path, n, "custom_id", f"{line.custom_id!r} has a result on an earlier line")
    try:
        return line.custom_id, line.outcome()
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(["response", "body", *map(str, first["loc"])])
        raise InputError.one(path, n, field, f"not a chat completion: {first['msg']}") from None


def _loose_id(raw: bytes) -> str | None:
    """The ``custom_id`` of a line that is otherwise unreadable, if it has one."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    found = data.get("custom_id") if isinstance(data, dict) else None
    return found if isinstance(found, str) else None


def read_requests(path: Path) -> list[RequestLine]:
    """A batch input file this run wrote (in the run folder)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError.one(path, None, "(file)", f"cannot read: {err.strerror or err}") from None
    return [
        parse_model(path, n, raw, RequestLine) for n, raw in enumerate(data.split(b"\n"), 1) if raw.strip()
    ]
