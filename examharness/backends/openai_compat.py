"""Any OpenAI-compatible chat completions endpoint through the official ``openai`` SDK.

Covers api.openai.com, Azure OpenAI (``*.openai.azure.com`` base URLs) and self-hosted servers
(vLLM, llama.cpp, Ollama, LM Studio, OpenRouter). The SDK's own retries are off
(``max_retries=0``): the runner retries, so that every attempt is counted.

Requests go through the SDK's documented generic ``client.post`` (auth, Azure deployment paths,
HTTP errors as the SDK's exception classes) with a plain JSON body, and the reply is read by one
small pydantic model straight from the bytes. ``chat.completions.create`` would walk every message
through the SDK's typed transform and build its full response model: about a third of the client's
CPU per request, which on a large run is most of what the harness adds to the requests themselves.
The SDK's own aiohttp transport (``openai[aiohttp]``, ``DefaultAioHttpClient``) halves the
remaining client CPU per request against its default httpx transport.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from examharness.backends.base import BackendError, ChatReply, StageParams, Usage
from examharness.redact import Redactor

if TYPE_CHECKING:
    import openai

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
PERMANENT_STATUS = {401, 403, 404}
"""A wrong key, a forbidden model, a model or endpoint that does not exist: every item would fail."""


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if headers is None:
        return None
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000 if name == "retry-after-ms" else seconds
    return None


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    content: str | None = None


class _Choice(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: _Message = _Message()
    finish_reason: str | None = None


class _Completion(BaseModel):
    """The part of a chat completion the harness records."""

    model_config = ConfigDict(extra="ignore")
    choices: list[_Choice] = []
    usage: Usage | None = None


_BEARER: Any = {"security": {"bearer_auth": True}}


def classify(err: Exception) -> BackendError:
    """Map an SDK exception to a :class:`BackendError` the runner can act on."""
    import openai

    if isinstance(err, openai.APITimeoutError):
        return BackendError("timeout", "the request timed out", retryable=True)
    if isinstance(err, openai.APIConnectionError):
        return BackendError("connection", str(err.__cause__ or err), retryable=True)
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        message = f"HTTP {status}: {str(err.message)[:300]}"
        retry_after = _retry_after(err.response.headers)
        return BackendError(
            f"http_{status}", message, retryable=status in RETRYABLE_STATUS, retry_after=retry_after,
            permanent=status in PERMANENT_STATUS,
        )  # fmt: skip
    return BackendError("client", f"{type(err).__name__}: {err}", retryable=False)


class OpenAIBackend:
    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        timeout: float = 120.0,
        max_concurrency: int | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self._redact = Redactor([api_key])
        self._length_param = "max_tokens"
        self.max_concurrency = max_concurrency
        # Where requests go; ``base_url`` is what cache keys name (the embedded server clears it).
        self._endpoint, self._api_key, self._timeout = base_url, api_key, timeout
        self._sdk: openai.AsyncOpenAI | None = None

    def ready(self) -> None:
        """Make the SDK client (importing the SDK takes about a second). The runner calls this
        before a request's deadline starts; a rerun served wholly from the cache never does."""
        self._client  # noqa: B018

    @property
    def _client(self) -> openai.AsyncOpenAI:
        if self._sdk is None:
            import openai

            http = openai.DefaultAioHttpClient(timeout=self._timeout)
            if self._endpoint and ".openai.azure.com" in self._endpoint:
                self._sdk = openai.AsyncAzureOpenAI(
                    azure_endpoint=self._endpoint, api_key=self._api_key,
                    api_version=os.environ.get("OPENAI_API_VERSION", "2024-10-21"),
                    max_retries=0, timeout=self._timeout, http_client=http,
                )  # fmt: skip
            else:
                self._sdk = openai.AsyncOpenAI(
                    base_url=self._endpoint, api_key=self._api_key or "not-needed",
                    max_retries=0, timeout=self._timeout, http_client=http,
                )  # fmt: skip
        return self._sdk

    async def complete(self, messages: list[dict[str, Any]], params: StageParams) -> ChatReply:
        """One request; the API key never appears in the reply text or an error message."""
        try:
            reply = await self._complete(messages, params)
        except Exception as err:
            self._redact.exception(err)
            raise
        return replace(reply, text=self._redact(reply.text))

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The SDK client, for the Files and Batches APIs (:mod:`examharness.batch`)."""
        return self._client

    @property
    def redact(self) -> Redactor:
        return self._redact

    def request_body(self, messages: list[dict[str, Any]], params: StageParams) -> dict[str, Any]:
        """The chat-completions request body this backend sends (a batch line's ``body`` too)."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": params.temperature,
                                self._length_param: params.max_tokens}  # fmt: skip
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = params.stop
        return body

    async def _complete(self, messages: list[dict[str, Any]], params: StageParams) -> ChatReply:
        import openai

        body = self.request_body(messages, params)
        try:
            raw = await self._client.post("/chat/completions", cast_to=bytes, body=body, options=_BEARER)
        except openai.BadRequestError as err:
            if self._length_param == "max_tokens" and "max_completion_tokens" in str(err.message):
                # Newer OpenAI models take max_completion_tokens instead; switch once, then retry.
                self._length_param = "max_completion_tokens"
                return await self._complete(messages, params)
            raise classify(err) from err
        except openai.OpenAIError as err:
            raise classify(err) from err
        try:
            resp = _Completion.model_validate_json(raw)
        except ValidationError as err:
            detail = err.errors()[0]["msg"] if err.errors() else str(err)
            message = f"the reply is not a chat completion: {detail}"
            raise BackendError("bad_reply", message, retryable=True) from err
        if not resp.choices:
            raise BackendError("no_choices", "the reply had no choices", retryable=True)
        choice = resp.choices[0]
        return ChatReply(text=choice.message.content or "", finish_reason=choice.finish_reason,
                         usage=resp.usage or Usage())  # fmt: skip

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
