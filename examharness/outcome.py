"""How a run session ended: the ``run.json`` summary, the top error reasons and the exit code.

The summary is written when a session starts and again however it ends (finished, aborted,
interrupted), so ``run.json`` never says ``summary: {}``. Item statuses are counted from the
records on disk (the whole run); costs are summed over sessions (a resumed run adds its requests
and tokens to those of the sessions before it).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from examharness.errors import EXIT_ITEM_ERRORS, EXIT_OK
from examharness.results import RunFolder
from examharness.runner import Counters

TOP_REASONS = 5
_ATTEMPTS = re.compile(r" \(after \d+ attempts?[^)]*\)$")
COSTS = ("requests_sent", "cache_hits", "retries", "prompt_tokens", "completion_tokens", "elapsed_s")
"""The summary keys a run adds up over its sessions (and a merged run over its shards)."""


def error_reasons(errors: Iterable[str | None]) -> dict[str, int]:
    """Error items per reason, most frequent first (the attempt count is left out of the reason)."""
    reasons = Counter(_ATTEMPTS.sub("", error or "unknown") for error in errors)
    return dict(reasons.most_common())


def run_summary(
    folder: RunFolder, before: dict[str, Any], session: Counters, *, stopped: str | None = None,
    fresh: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Totals for the whole run; ``stopped`` says why the session ended early (None: it finished).

    ``fresh``: the run's first session, whose counters saw every record ``items.jsonl`` holds, so
    it is not read again; otherwise the statuses are counted from the file."""
    if fresh:
        counts = {"items": session.done, "ok": session.ok, "empty": session.empty, "error": session.errors,
                  "letter_requests": session.letter_requests}  # fmt: skip
        errors: list[str | None] = list(session.error_texts)
    else:
        records = folder.read_outcomes()
        counts = {
            "items": len(records),
            "ok": sum(r.status == "ok" for r in records),
            "empty": sum(r.status == "empty" for r in records),
            "error": sum(r.status == "error" for r in records),
            "letter_requests": sum(any(st.stage == "answer" for st in r.stages) for r in records),
        }
        errors = [r.error for r in records if r.status == "error"]
    now_ = session.as_summary()
    summary: dict[str, Any] = {**counts, "sessions": int(before.get("sessions", 1 if before else 0)) + 1}
    for key in COSTS:
        summary[key] = round(float(before.get(key, 0)) + float(now_[key]), 3)
        if key != "elapsed_s":
            summary[key] = int(summary[key])
    summary["error_reasons"] = dict(list(error_reasons(errors).items())[:TOP_REASONS])
    summary["stopped"] = stopped
    return summary


def describe_errors(summary: dict[str, Any]) -> list[str]:
    """One line per top error reason, for the end of a run: ``  12 × http_500: ...``."""
    reasons: dict[str, int] = summary.get("error_reasons") or {}
    return [f"  {n} × {reason}" for reason, n in reasons.items()]


def exit_code(summary: dict[str, Any]) -> int:
    """0 when every item got an answer; EXIT_ITEM_ERRORS when some ended as ``error``."""
    return EXIT_ITEM_ERRORS if summary.get("error") else EXIT_OK
