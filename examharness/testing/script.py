"""What the scripted server says and when it misbehaves: responders, faults and the request log.

Everything here is pure and needs no server, so tests can build responders and fault policies
(and check them) on their own; :class:`~examharness.testing.scripted_server.ScriptedServer`
calls them one request at a time on its event loop, never concurrently.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class ScriptedReply(BaseModel):
    """A reply with its ``finish_reason``: ``length`` scripts an answer cut off at ``max_tokens``."""

    model_config = ConfigDict(frozen=True)

    text: str
    finish_reason: Literal["stop", "length"] = "stop"


Responder = Callable[[dict[str, Any]], str | ScriptedReply]
"""Turns a chat-completions request body into the reply text (finish reason ``stop``) or a
:class:`ScriptedReply`."""

Scorer = Callable[[dict[str, Any]], list[tuple[str, float]]]
"""Turns a completions request body into its prompt's tokens and their log-probabilities."""

FaultPolicy = Callable[[int, dict[str, Any], int], "Fault | None"]
"""``(request_index, request_json, attempt_for_this_prompt) -> Fault | None``; attempts from 1."""


class Fault(BaseModel):
    """One scripted misbehaviour for one request; build it with the classmethods.

    ``rate_limit``: 429 with ``Retry-After`` (and ``retry-after-ms``) and an OpenAI error body;
    ``server_error``: 5xx; ``drop``: close the connection unanswered (a connection error);
    ``slow``: a normal reply ``seconds`` late (meant to outlast the client timeout);
    ``empty``: a well-formed 200 whose content is ``""``;
    ``reject``: a permanent 401/403/404 with an OpenAI error body; the 401 body echoes the
    caller's key back, as some servers do, so tests can check it is never stored;
    ``drip``: a normal reply sent one byte every ``seconds`` (defeats per-read timeouts);
    ``silent``: the request is read and never answered.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["rate_limit", "server_error", "drop", "slow", "empty", "reject", "drip", "silent"]
    retry_after: float = 1.0
    status: Literal[401, 403, 404, 500, 502, 503, 504] = 500
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

    @classmethod
    def reject(cls, status: Literal[401, 403, 404] = 401) -> Fault:
        return cls(kind="reject", status=status)

    @classmethod
    def drip(cls, seconds_per_byte: float = 1.0) -> Fault:
        return cls(kind="drip", seconds=seconds_per_byte)

    @classmethod
    def silent(cls) -> Fault:
        return cls(kind="silent")


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
    """Stable identity of a prompt: the messages only, so retries of one prompt share it; for a
    completions request the prompt and the model (a family's members each score the same text)."""
    if "messages" in request:
        blob = json.dumps(request.get("messages"), sort_keys=True, ensure_ascii=False)
    else:
        blob = json.dumps([request.get("prompt"), request.get("model")], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def last_user_message(request: dict[str, Any]) -> str:
    """Text of the last ``user`` message; list-of-parts content contributes its text parts."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(
                    str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
                )
    return ""


def echo_responder(request: dict[str, Any]) -> str:
    """Default responder: repeats the last user message, handy for smoke tests."""
    return f"You said: {last_user_message(request)}"


def answer_key_responder(key: dict[str, str] | dict[str, str | ScriptedReply], *,
                         fallback: str | None = None) -> Responder:
    """Reply with ``key[s]`` for the longest key ``s`` found in the last user message.

    Keys are unique substrings of each question, so both stages of a two-stage request (which
    repeat the question) find the same item. With no match and no ``fallback`` the responder
    raises LookupError, which the server turns into a 500 so a wrong key fails loudly.
    """
    ordered: list[tuple[str, str | ScriptedReply]] = sorted(
        key.items(), key=lambda kv: len(kv[0]), reverse=True
    )

    def respond(request: dict[str, Any]) -> str | ScriptedReply:
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


def word_tokens(text: str) -> list[str]:
    """Split text into tokens that join back to it: each word with the whitespace after it."""
    tokens = re.findall(r"\s*\S+\s*", text) if text.strip() else [text]
    return tokens if "".join(tokens) == text else [*tokens, text[len("".join(tokens)) :]]


def per_token_loss_scorer(nats_by_model: Mapping[str, float], *, spread: float = 0.2) -> Scorer:
    """A family whose held-out loss is known exactly: model ``m``'s scored tokens (all but the
    first, which has no context) cost ``nats_by_model[m]`` nats on average in every text; each
    token's cost is scaled by 1 ± ``spread`` from a hash of the token, rescaled so that each
    text's mean is exact. An unknown model raises LookupError, which the server turns into a 500."""

    def score(request: dict[str, Any]) -> list[tuple[str, float]]:
        loss = nats_by_model[str(request.get("model"))]
        tokens = word_tokens(str(request.get("prompt") or ""))
        weights = [
            1 + spread * (2 * int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big") / 2**64 - 1)
            for t in tokens
        ]
        mean = sum(weights[1:]) / max(len(weights) - 1, 1)
        return [(t, -loss * w / mean) for t, w in zip(tokens, weights, strict=True)]

    return score


def every_request(fault: Fault) -> FaultPolicy:
    """Apply ``fault`` to every chat request: a wrong key, a dead model, a hung server."""

    def policy(index: int, request: dict[str, Any], attempt: int) -> Fault | None:
        return fault

    return policy
