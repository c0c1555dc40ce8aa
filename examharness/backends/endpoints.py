"""Endpoint pools: the ``--base-url`` values (or ``@FILE``) and the per-endpoint counts of a run.

``--base-url`` may be given several times, or as ``@FILE``: one URL per line, optionally followed
by that endpoint's own concurrency limit (``http://10.0.0.2:8000/v1 16``); ``#`` starts a comment.
A bad line is one ``FILE:LINE: field: problem`` error. The counts each endpoint of a pool kept
(:class:`EndpointStats`) go into ``run.json``'s summary under ``endpoints``, summed over sessions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from examharness.errors import InputError, Problem
from examharness.records import Endpoint


def pool_key(urls: list[str]) -> str:
    """The pool's identity in cache keys and ``run.json``: which endpoint answered does not matter,
    so a rerun on the same set of endpoints (in any order) hits the cache."""
    return " ".join(sorted(urls))


def _file_lines(path: Path) -> tuple[list[Endpoint], list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return [], [Problem(str(path), None, "--base-url", f"cannot read the endpoints file: {err}")]
    found: list[Endpoint] = []
    problems: list[Problem] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cols = line.split()
        if len(cols) > 2:
            problems.append(Problem(str(path), n, "url", "expected `URL [max_concurrency]`"))
            continue
        if not cols[0].startswith(("http://", "https://")):
            problems.append(Problem(str(path), n, "url", f"not an http(s) URL: {cols[0]!r}"))
            continue
        limit = None
        if len(cols) == 2:
            if not cols[1].isdigit() or int(cols[1]) < 1:
                what = f"not a positive integer: {cols[1]!r}"
                problems.append(Problem(str(path), n, "max_concurrency", what))
                continue
            limit = int(cols[1])
        found.append(Endpoint(url=cols[0], max_concurrency=limit))
    if not found and not problems:
        problems.append(Problem(str(path), None, "url", "no endpoints in the file"))
    return found, problems


def parse_base_urls(values: list[str]) -> list[Endpoint]:
    """Every ``--base-url`` value, ``@FILE`` ones read; a URL given twice is an error."""
    endpoints: list[Endpoint] = []
    problems: list[Problem] = []
    for value in values:
        if value.startswith("@"):
            found, bad = _file_lines(Path(value[1:]))
            endpoints.extend(found)
            problems.extend(bad)
        else:
            endpoints.append(Endpoint(url=value))
    urls = [e.url for e in endpoints]
    twice = next((u for u in urls if urls.count(u) > 1), None)
    if twice is not None and not problems:
        problems.append(Problem("command line", None, "--base-url", f"endpoint given twice: {twice}"))
    if problems:
        raise InputError(problems)
    return endpoints


class EndpointStats(BaseModel):
    """One endpoint's share of a run: what it was sent, what it answered, whether it was ejected."""

    url: str
    requests: int = 0
    replies: int = 0
    failures: int = 0
    ejected: bool = False
    reason: str | None = None
    """Why it was (last) ejected: the failure that tipped it over."""
    mean_latency_s: float | None = None
    p95_latency_s: float | None = None
    """Of the latest session that got replies from it (a percentile does not add across sessions)."""


def add_sessions(before: list[EndpointStats], session: list[EndpointStats]) -> list[EndpointStats]:
    """Counts summed per URL, mean latency weighted by replies; ``ejected`` is this session's."""
    old = {s.url: s for s in before}
    out = []
    for s in session:
        b = old.pop(s.url, None)
        if b is None:
            out.append(s)
            continue
        replies = b.replies + s.replies
        weighted = [(x.mean_latency_s, x.replies) for x in (b, s) if x.mean_latency_s is not None]
        mean = round(sum(m * r for m, r in weighted) / replies, 4) if weighted and replies else None
        out.append(s.model_copy(update={
            "requests": b.requests + s.requests, "replies": replies, "failures": b.failures + s.failures,
            "mean_latency_s": mean, "p95_latency_s": s.p95_latency_s if s.replies else b.p95_latency_s,
        }))  # fmt: skip
    return out + list(old.values())


def read_stats(summary: dict[str, Any]) -> list[EndpointStats]:
    return [EndpointStats.model_validate(s) for s in summary.get("endpoints") or []]


def describe_endpoints(summary: dict[str, Any]) -> list[str]:
    """One line per endpoint for the end of a run and for ``report`` (none for a single endpoint)."""
    lines = []
    for s in read_stats(summary):
        mean = f"{s.mean_latency_s:.3f}s" if s.mean_latency_s is not None else "-"
        p95 = f"{s.p95_latency_s:.3f}s" if s.p95_latency_s is not None else "-"
        state = f"EJECTED ({s.reason})" if s.ejected else "healthy"
        lines.append(f"  {s.url}: {s.requests} requests, {s.replies} replies, {s.failures} failures, "
                     f"latency mean {mean} p95 {p95}, {state}")  # fmt: skip
    return lines
