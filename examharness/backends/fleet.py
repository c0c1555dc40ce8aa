"""An endpoint pool: one :class:`ChatBackend` over several OpenAI-compatible servers of one model.

Each request goes to the healthy endpoint with the fewest requests outstanding (ties: the one sent
fewer so far), within that endpoint's own concurrency limit (its ``max_concurrency`` column, else
the run's total ``--concurrency``). Each try on one endpoint is bounded by the request timeout.

When a try fails because of the endpoint (connection refused or dropped, timeout, 5xx), the same
request goes at once to another healthy endpoint it has not tried yet: an endpoint's failure does
not cost the item an attempt of its retry budget while another endpoint can answer. Only when
every healthy endpoint has failed this request does the error reach the runner (which backs off
and retries as for one endpoint). Other failures (429, a bad request) are the runner's as usual.

An endpoint that fails ``eject_after`` times in a row is ejected (one warning line); a permanent
refusal (401, 403, 404: wrong key, no such model there) ejects it at once, for good. A transient
ejection ends after ``cool_down`` seconds: the endpoint is sent requests again, and its next
failure ejects it again. When every endpoint is ejected the pool raises a permanent
:class:`BackendError` "no endpoint answers", which the runner turns into ``RunAborted``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from examharness.backends.base import BackendError, ChatBackend, ChatReply, Message, StageParams
from examharness.backends.endpoints import EndpointStats, add_sessions, pool_key, read_stats
from examharness.backends.openai_compat import OpenAIBackend
from examharness.records import Endpoint

EJECT_AFTER = 3
COOL_DOWN = 60.0
FAILOVER_KINDS = frozenset({"connection", "timeout", "http_500", "http_502", "http_503", "http_504"})
"""Failures that say the endpoint, not the request, is at fault."""


@dataclass
class _Member:
    endpoint: Endpoint
    backend: OpenAIBackend
    limit: int
    outstanding: int = 0
    streak: int = 0
    """Endpoint failures in a row."""
    ejected: str | None = None
    readmit_at: float | None = None
    """When a transient ejection ends (None: never, after a permanent refusal)."""
    requests: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)


class FleetBackend:
    """``complete`` as for one endpoint; ``stats()`` gives each endpoint's counts (see module doc)."""

    def __init__(
        self, *, model: str, endpoints: list[Endpoint], api_key: str | None, timeout: float,
        concurrency: int, warn: Callable[[str], None], eject_after: int = EJECT_AFTER,
        cool_down: float = COOL_DOWN,
    ) -> None:  # fmt: skip
        self.model = model
        self.base_url: str | None = pool_key([e.url for e in endpoints])
        limits = [e.max_concurrency or concurrency for e in endpoints]
        self.max_concurrency: int | None = sum(limits)
        self._members = [
            _Member(e, OpenAIBackend(model=model, base_url=e.url, api_key=api_key, timeout=timeout), limit)
            for e, limit in zip(endpoints, limits, strict=True)
        ]
        self._timeout, self._warn = timeout, warn
        self._eject_after, self._cool_down = eject_after, cool_down
        self._changed: asyncio.Condition | None = None

    def ready(self) -> None:
        """Each endpoint's client, made before a request's time starts (see ``base.ready``)."""
        for m in self._members:
            m.backend.ready()

    async def complete(self, messages: list[Message], params: StageParams) -> ChatReply:
        tried: set[int] = set()
        last: BackendError | None = None
        while True:
            member = await self._acquire(tried)
            if member is None:  # every healthy endpoint failed this request: the runner's turn
                assert last is not None
                raise last
            tried.add(id(member))
            try:
                return await self._try(member, messages, params)
            except BackendError as err:
                if err.kind not in FAILOVER_KINDS and not err.permanent:
                    raise
                # A refusal by one endpoint of the pool is not the run's end while others answer.
                last = BackendError(err.kind, str(err).removeprefix(f"{err.kind}: "), retryable=True,
                                    retry_after=err.retry_after) if err.permanent else err  # fmt: skip

    async def _try(self, member: _Member, messages: list[Message], params: StageParams) -> ChatReply:
        """One request on one endpoint; its slot is given back however it ends."""
        member.requests += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                reply = await member.backend.complete(messages, params)
        except TimeoutError as err:
            failure = BackendError("timeout", f"no complete reply within {self._timeout:g}s", retryable=True)
            self._failed(member, failure)
            raise failure from err
        except BackendError as err:
            self._failed(member, err)
            raise
        finally:
            await self._release(member)
        member.streak = 0
        member.latencies.append(time.monotonic() - started)
        return reply

    def _failed(self, member: _Member, err: BackendError) -> None:
        member.failures += 1
        if member.ejected is not None:
            return
        if err.permanent:
            self._eject(member, str(err), readmit=False)
        elif err.kind in FAILOVER_KINDS:
            member.streak += 1
            if member.streak >= self._eject_after:
                self._eject(member, f"{member.streak} failures in a row, the last {err}", readmit=True)

    def _eject(self, member: _Member, reason: str, *, readmit: bool) -> None:
        member.ejected = reason
        member.readmit_at = time.monotonic() + self._cool_down if readmit else None
        again = f"; tried again after {self._cool_down:g}s" if readmit else ""
        self._warn(f"endpoint {member.endpoint.url} ejected: {reason}{again}")

    def _readmit(self) -> None:
        now = time.monotonic()
        for m in self._members:
            if m.ejected is not None and m.readmit_at is not None and now >= m.readmit_at:
                m.ejected, m.readmit_at, m.streak = None, None, self._eject_after - 1

    def _untried(self, tried: set[int]) -> list[_Member]:
        self._readmit()
        return [m for m in self._members if m.ejected is None and id(m) not in tried]

    async def _acquire(self, tried: set[int]) -> _Member | None:
        """A slot on the least busy healthy endpoint this request has not tried (waiting for one
        while all are busy); None when every healthy endpoint has been tried."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            while True:
                if not self._untried(set()):
                    reasons = "; ".join(f"{m.endpoint.url}: {m.ejected}" for m in self._members)
                    raise BackendError("connection", f"no endpoint answers ({reasons})",
                                       retryable=False, permanent=True)  # fmt: skip
                untried = self._untried(tried)
                if not untried:
                    return None
                free = [m for m in untried if m.outstanding < m.limit]
                if free:
                    member = min(free, key=lambda m: (m.outstanding, m.requests))
                    member.outstanding += 1
                    return member
                await self._changed.wait()

    async def _release(self, member: _Member) -> None:
        """Give the slot back at once (even when cancelled while waking the waiters)."""
        member.outstanding -= 1
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def stats(self) -> list[EndpointStats]:
        return [
            EndpointStats(
                url=m.endpoint.url, requests=m.requests, replies=len(m.latencies), failures=m.failures,
                ejected=m.ejected is not None, reason=m.ejected,
                mean_latency_s=round(statistics.fmean(m.latencies), 4) if m.latencies else None,
                p95_latency_s=_p95(m.latencies),
            )
            for m in self._members
        ]

    async def aclose(self) -> None:
        for m in self._members:
            await m.backend.aclose()


def _p95(latencies: list[float]) -> float | None:
    if not latencies:
        return None
    if len(latencies) == 1:
        return round(latencies[0], 4)
    return round(statistics.quantiles(latencies, n=20, method="inclusive")[-1], 4)


def attempt_deadline(backend: ChatBackend, timeout: float | None) -> float | None:
    """The runner's deadline for one attempt: a pool bounds each endpoint try itself (so a silent
    endpoint costs that endpoint a failure, not the item an attempt) and takes no runner deadline."""
    return None if isinstance(backend, FleetBackend) else timeout


def with_pool_stats(summary: dict[str, Any], before: dict[str, Any], backend: ChatBackend) -> dict[str, Any]:
    """``summary`` with the pool's per-endpoint counts (added to earlier sessions') under ``endpoints``."""
    if not isinstance(backend, FleetBackend):
        return summary
    stats = add_sessions(read_stats(before), backend.stats())
    return {**summary, "endpoints": [s.model_dump() for s in stats]}
