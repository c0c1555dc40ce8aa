"""Answer extraction: turn a model's free-text reply into a letter choice or a number.

Pure functions, no I/O, every pattern compiled once (option-text patterns once per option set).
Rules are named and tiered, as in lm-evaluation-harness's strict and flexible filters: ``strict``
rules read an explicit answer statement (the GPT-4 report's "The answer is therefore [C]",
Appendix A.8, and its equivalents in the languages of the report's multilingual MMLU); ``loose``
rules infer the answer from marks, mentions and option text. :class:`Extraction` records the rule
(``how``) and ``tier`` so every grade can be audited, and the runner asks for the letter when only
a loose rule found one.

No answer is one of three statuses, kept apart on purpose: ``empty`` (blank reply), ``refused``
(the reply declines — "I cannot answer", "no figure is provided" — and states no answer) and
``unparseable`` (it neither answers readably nor declines). A hedged answer ("I can't be certain,
but the answer is likely C") is an answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from examharness.extract.model import Extraction, Status, Tier, letters

if TYPE_CHECKING:
    from examharness.extract.choice import extract_choice
    from examharness.extract.numeric import extract_numeric, numeric_matches, parse_number

_LAZY = {"extract_choice": "choice", "extract_numeric": "numeric", "numeric_matches": "numeric",
         "parse_number": "numeric"}  # fmt: skip
"""Loaded on first use (PEP 562): the rules compile a few hundred patterns, which a rerun whose
grades all come from the memo, or a view of a run folder, never needs."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value  # looked up once
    return value


__all__ = [
    "Extraction",
    "Status",
    "Tier",
    "extract_choice",
    "extract_numeric",
    "letters",
    "numeric_matches",
    "parse_number",
]
