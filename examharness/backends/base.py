"""The one seam between the runner and any model: send messages, get text back or a classified error.

Backends do not retry. They say whether a failure is worth retrying and, for 429, how long the
server asked to wait; the runner owns the retry policy so every attempt is counted and recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

Message = dict[str, Any]
"""One chat message as the OpenAI API takes it: ``{"role": ..., "content": str | list[part]}``."""


class StageParams(BaseModel):
    """Generation parameters of one request: part of the cache key."""

    model_config = ConfigDict(extra="ignore")

    temperature: float
    max_tokens: int
    seed: int | None = None
    stop: list[str] | None = None


class Usage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ChatReply:
    text: str
    finish_reason: str | None
    usage: Usage


class BackendError(Exception):
    """A request that did not produce a reply. ``retryable`` failures may succeed later;
    ``permanent`` ones (a wrong key, no such model) will fail for every item, so the run stops."""

    def __init__(
        self, kind: str, message: str, *, retryable: bool, retry_after: float | None = None,
        permanent: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.retryable = retryable
        self.retry_after = retry_after
        self.permanent = permanent


class ChatBackend(Protocol):
    model: str
    base_url: str | None
    max_concurrency: int | None
    """Requests the backend can usefully take at once (the embedded server answers one at a time)."""

    async def complete(self, messages: list[Message], params: StageParams) -> ChatReply:
        """One chat completion; raise :class:`BackendError` on failure."""
        ...

    async def aclose(self) -> None: ...


def ready(backend: ChatBackend) -> None:
    """Let a backend do its slow setup (imports, clients) before a request's deadline starts,
    if it has a ``ready()`` method: a backend may put that off until it is first needed."""
    prepare = getattr(backend, "ready", None)
    if prepare is not None:
        prepare()
