"""Contamination check by substring match: the GPT-4 report's Appendix C method.

Both the exam items and the corpus are *normalised*: every character that is not a Unicode letter
or digit (spaces, punctuation, symbols, ``_``) is removed and the rest is case-folded (a stronger
lower-casing, so ``Σ``/``σ``/``ς`` and ``ß``/``ss`` compare equal). The report says "removing all
spaces and symbols, keeping only characters (including numbers)"; it does not say whether case is
kept, and ignoring it can only find more matches. From each item's question and context (the
passage; the options only when asked, never the answer) three random 50-character substrings
are drawn, seeded by ``seed`` and the item id so the same run always draws the same ones; an
item whose normalised text is 50 characters or shorter contributes its whole text. An item is
contaminated when any of its substrings occurs in one corpus document (a text file, or one
JSONL record: matches never span two records or two files).

The corpus is read once, whatever the number of items, in chunks (constant memory); the cost per
corpus byte does not grow with the number of items.

Modules, in data-flow order: ``method`` (normalisation, the text checked per item, sampled
substrings, the matcher), ``corpus`` (corpus files read as a stream of normalised text),
``check`` (the one-pass scan and ``run_contamination``), ``report`` (``contamination.json``: its
models, save and load, the text summary, the clean subset).
"""

from examharness.contamfile import (
    SCHEMA_VERSION,
    ContamHit,
    ContaminationReport,
    ExamContamination,
    SkippedFile,
    clean_item_ids,
)
from examharness.contamination.check import MAX_HITS_PER_PATTERN, run_contamination, scan
from examharness.contamination.corpus import (
    CHUNK_BYTES,
    MAX_JSONL_PROBLEMS,
    PIECE_CHARS,
    corpus_files,
)
from examharness.contamination.method import (
    SUBSTRING_LENGTH,
    SUBSTRINGS_PER_ITEM,
    ContamTarget,
    normalise,
    sample_substrings,
    targets_from_exam,
)
from examharness.contamination.report import load_report, render_text, save_report

__all__ = [
    "CHUNK_BYTES",
    "MAX_HITS_PER_PATTERN",
    "MAX_JSONL_PROBLEMS",
    "PIECE_CHARS",
    "SCHEMA_VERSION",
    "SUBSTRINGS_PER_ITEM",
    "SUBSTRING_LENGTH",
    "ContamHit",
    "ContamTarget",
    "ContaminationReport",
    "ExamContamination",
    "SkippedFile",
    "clean_item_ids",
    "corpus_files",
    "load_report",
    "normalise",
    "render_text",
    "run_contamination",
    "sample_substrings",
    "save_report",
    "scan",
    "targets_from_exam",
]
