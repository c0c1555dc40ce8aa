"""Prompt log-probabilities from an OpenAI-compatible *completions* endpoint (``echo`` + ``logprobs``).

Held-out loss needs log p(token | preceding text) for every token of a text the model did not
write. The legacy completions API gives it when asked to echo the prompt with log-probabilities;
vLLM and llama-cpp-python's server accept that shape (llama-cpp-python only when started with
``logits_all``). llama-cpp-python (0.3.x) pairs each echoed token with the distribution *after*
it unless the prompt starts with a BOS token, which it strips; the embedded model adds none, so
its texts are sent after its BOS token's text (``bos_text``). One token is generated (some
servers refuse ``max_tokens=0``, and llama-cpp-python reads 0 as "until the context is full");
it is cut off by its text offset, or by the prompt token count when a server gives no offsets.

A server without prompt log-probabilities (a chat-only API, llama.cpp's own ``llama-server``,
which returns log-probabilities for generated tokens only) raises :class:`BackendError` of kind
``no_prompt_logprobs``: not retryable, and the loss command turns it into one clear line.
"""

from __future__ import annotations

from typing import Any

import openai
from pydantic import BaseModel

from examharness.backends.base import BackendError
from examharness.backends.openai_compat import classify
from examharness.redact import Redactor

UNSUPPORTED = "no_prompt_logprobs"
HINT = "the backend cannot return prompt log-probabilities (completions with echo and logprobs)"


class PromptLogprobs(BaseModel):
    """One text's tokens as the server split it, with log p of each given what precedes it.

    ``logprobs[i]`` is None where the server gives none (the first token, which has no context).
    """

    tokens: list[str]
    logprobs: list[float | None]
    prompt_tokens: int


class CompletionsLogprobs:
    """``prompt_logprobs(text)`` through ``POST {base_url}/completions``; the runner retries."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        timeout: float = 120.0,
        max_concurrency: int | None = None,
        bos_text: str = "",
    ) -> None:
        self.model = model
        self.bos_text = bos_text
        """Prepended to every text: the BOS token of a model whose tokenizer adds none, for
        llama-cpp-python (see :data:`examharness.backends.local.LOCAL_BOS_TEXT`)."""
        self.base_url = base_url
        self.max_concurrency = max_concurrency
        self._redact = Redactor([api_key])
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", max_retries=0, timeout=timeout
        )

    async def prompt_logprobs(self, text: str) -> PromptLogprobs:
        """One request; like :class:`OpenAIBackend`, the API key never appears in an error message."""
        try:
            return await self._prompt_logprobs(text)
        except Exception as err:
            self._redact.exception(err)
            raise

    async def _prompt_logprobs(self, text: str) -> PromptLogprobs:
        try:
            resp = await self._client.completions.create(
                model=self.model,
                prompt=self.bos_text + text,
                max_tokens=1,
                temperature=0.0,
                echo=True,
                logprobs=1,
            )
        except openai.NotFoundError as err:
            raise BackendError(UNSUPPORTED, f"{HINT}: HTTP 404 on /completions", retryable=False) from err
        except openai.BadRequestError as err:
            message = str(err.message)
            if "echo" in message or "logprob" in message:
                raise BackendError(UNSUPPORTED, f"{HINT}: {message[:200]}", retryable=False) from err
            raise classify(err) from err
        except openai.OpenAIError as err:
            raise classify(err) from err
        if not resp.choices:
            raise BackendError("no_choices", "the reply had no choices", retryable=True)
        choice = resp.choices[0]
        generated = len(choice.text or "") > len(self.bos_text + text)
        prompt_tokens = resp.usage.prompt_tokens if resp.usage else None
        return _prompt_part(text, choice.logprobs, prompt_tokens, generated)

    async def aclose(self) -> None:
        await self._client.close()


def _prompt_part(text: str, logprobs: Any, prompt_tokens: int | None, generated: bool) -> PromptLogprobs:
    """Keep the prompt's tokens: those starting inside the text (by character offset), else the
    first ``prompt_tokens`` but never the last token when the reply text shows one was generated
    (llama-cpp-python leaves the generated token out of the list; vLLM keeps it). A reply
    with no per-token log-probabilities, or one that covers only the generated token, means the
    server does not echo them."""
    tokens = list(getattr(logprobs, "tokens", None) or [])
    values = list(getattr(logprobs, "token_logprobs", None) or [])
    offsets = list(getattr(logprobs, "text_offset", None) or [])
    if not tokens or len(values) != len(tokens):
        raise BackendError(
            UNSUPPORTED, f"{HINT}: the reply has no per-token log-probabilities", retryable=False
        )
    if len(offsets) == len(tokens):
        n = sum(1 for o in offsets if o < len(text))
    else:
        n = min(prompt_tokens if prompt_tokens is not None else len(tokens), len(tokens) - generated)
    if n < 1 or (all(v is None for v in values[:n]) and n > 1):
        raise BackendError(UNSUPPORTED, f"{HINT}: the reply covers the generated token only", retryable=False)
    return PromptLogprobs(
        tokens=[str(t) for t in tokens[:n]],
        logprobs=[None if v is None else float(v) for v in values[:n]],
        prompt_tokens=n,
    )
