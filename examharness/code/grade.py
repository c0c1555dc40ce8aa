"""Grade a code item from its stored samples (no execution here: the runner stored the verdicts).

Points are the item's expected pass@1, ``c / n`` (1 or 0 with one sample at temperature 0, the
report's pass@1). The status reads like the other item kinds: ``correct`` when at least one
sample passed every test (the problem was solved), ``incorrect`` when programs ran and none
passed, ``unparseable`` / ``empty`` when no sample held a program, ``error`` when a request
failed. ``passes`` keeps ``n`` and ``c`` for pass@k; ``rationale`` says how each sample ended.
"""

from __future__ import annotations

from typing import Any

from examharness.code.models import CodeSample, PassCount


def _describe(sample: CodeSample) -> str:
    if sample.result is None:
        return f"sample {sample.sample + 1}: {sample.status} ({sample.how})"
    r = sample.result
    detail = r.failed_test or r.detail
    said = f" ({detail})" if detail and r.outcome != "pass" else ""
    return f"sample {sample.sample + 1}: {r.outcome}{said}"


def grade_code(samples: list[CodeSample], base: dict[str, Any], record_status: str) -> dict[str, Any]:
    """Fields of the :class:`~examharness.records.GradedItem` for one code item."""
    n = len(samples)
    c = sum(s.passed for s in samples)
    rationale = "; ".join(_describe(s) for s in samples) or None
    passes = PassCount(n=n, c=c) if n else None
    ran = [s for s in samples if s.result is not None]
    how = ",".join(dict.fromkeys(s.how for s in ran)) if ran else (samples[0].how if samples else "no reply")
    if not ran:
        empty = record_status == "empty" or all(s.status == "empty" for s in samples)
        status = "empty" if empty else "unparseable"
        return {**base, "status": status, "points": 0.0, "how": how, "rationale": rationale, "passes": passes}
    return {
        **base, "status": "correct" if c else "incorrect", "points": c / n,
        "answer": f"{c}/{n} passed", "how": how, "rationale": rationale, "passes": passes,
    }  # fmt: skip
