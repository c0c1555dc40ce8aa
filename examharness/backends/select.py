"""Which backend a run talks to: an OpenAI-compatible endpoint, or the embedded local server."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Literal

from examharness.backends.base import ChatBackend
from examharness.backends.openai_compat import OpenAIBackend
from examharness.errors import InputError
from examharness.records import Endpoint


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def open_backend(
    model: str | None, base_url: str | None, api_key_env: str, timeout: float | None, *,
    endpoints: list[Endpoint] | None = None, concurrency: int = 8, warn: Callable[[str], None] = _stderr,
) -> Iterator[tuple[ChatBackend, Literal["openai", "local"]]]:  # fmt: skip
    """An OpenAI-compatible backend, or the embedded local server when no model is given.

    ``endpoints`` (several ``--base-url``) replace ``base_url``: two or more make an endpoint
    pool (:mod:`examharness.backends.fleet`) whose total is ``concurrency``; ``warn`` gets its
    ejection lines."""
    if endpoints:
        base_url = endpoints[0].url
    if model is None:
        if base_url is not None:
            raise InputError.one("--base-url", None, "model", "--base-url needs --model NAME")
        from examharness.backends.local import local_server

        with local_server() as server:
            backend = OpenAIBackend(model=server.model, base_url=server.base_url, api_key=None,
                                    timeout=timeout or 600, max_concurrency=1)  # fmt: skip
            # The port is picked afresh each run; leave it out of cache keys so reruns hit.
            backend.base_url = None
            yield backend, "local"
        return
    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    api_key = os.environ.get(api_key_env)
    if api_key is None and base_url is None:
        raise InputError.one(
            "--api-key-env", None, "api_key", f"environment variable {api_key_env} is not set"
        )
    if endpoints and len(endpoints) > 1:
        from examharness.backends.fleet import FleetBackend

        yield FleetBackend(model=model, endpoints=endpoints, api_key=api_key, timeout=timeout or 120,
                           concurrency=concurrency, warn=warn), "openai"  # fmt: skip
        return
    limit = endpoints[0].max_concurrency if endpoints else None
    yield OpenAIBackend(model=model, base_url=base_url, api_key=api_key, timeout=timeout or 120,
                        max_concurrency=limit), "openai"  # fmt: skip
