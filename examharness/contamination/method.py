"""What is matched and how: normalisation, the text checked per item, sampled substrings, the matcher.

Full-length patterns are found through 24-character anchors: every 50-character occurrence
contains an anchor that starts at a multiple of 27 in the normalised stream, so only those
positions are hashed (numpy), looked up in a bitmap and a sorted hash table, and confirmed by
comparing strings. The cost per corpus byte so does not grow with the number of items; a
``pyahocorasick`` automaton over 30,000 patterns measured 8x slower than over 30. Shorter patterns
(items shorter than 50 characters) do go through a ``pyahocorasick`` automaton, in the same pass.
"""

from __future__ import annotations

import random
import re
import string

import ahocorasick
import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided
from pydantic import BaseModel

from examharness.exam import CodeItem, EssayItem, Exam, FreeResponseItem, MCItem, MultiSelectItem

SUBSTRINGS_PER_ITEM = 3
SUBSTRING_LENGTH = 50
_BITMAP_BITS = 24

_ASCII_LOWER = bytes.maketrans(string.ascii_uppercase.encode(), string.ascii_lowercase.encode())
_ASCII_DROP = bytes(c for c in range(128) if not chr(c).isalnum())
_NOT_ALNUM = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    """Keep only Unicode letters and digits, case-folded. Fast path: ASCII via ``bytes.translate``.

    Works character by character, so normalising pieces and joining them equals normalising the
    whole; the offset mapping relies on that.
    """
    out = text.encode("utf-8", "surrogatepass").translate(_ASCII_LOWER, _ASCII_DROP)
    folded = out.decode("utf-8", "surrogatepass")
    return folded if folded.isascii() else _NOT_ALNUM.sub("", folded.casefold())


# ---- targets and patterns ---------------------------------------------------------------------


class ContamTarget(BaseModel):
    """The text of one item that is checked: question and context, never the answer."""

    exam_id: str
    item_id: str
    text: str


def targets_from_exam(exam: Exam, include_options: bool = False) -> list[ContamTarget]:
    """One target per item: passage text, then question (or prompt), then options if asked."""
    targets: list[ContamTarget] = []
    for _section, item in exam.items():
        parts = [exam.passages[item.passage].text] if item.passage in exam.passages else []
        if isinstance(item, FreeResponseItem | EssayItem | CodeItem):
            parts.append(item.prompt)
        else:
            parts.append(item.question)
            if include_options and isinstance(item, MCItem | MultiSelectItem):
                parts.extend(item.options)
        targets.append(ContamTarget(exam_id=exam.id, item_id=item.id, text="\n".join(parts)))
    return targets


def sample_substrings(
    text: str,
    k: int = SUBSTRINGS_PER_ITEM,
    length: int = SUBSTRING_LENGTH,
    rng: random.Random | None = None,
) -> list[str]:
    """``k`` random ``length``-character substrings of ``normalise(text)`` (duplicates dropped).

    The whole normalised text when it is not longer than ``length``; none when it is empty.
    """
    norm = normalise(text)
    if len(norm) <= length:
        return [norm] if norm else []
    rng = rng or random.Random(0)
    starts = [rng.randrange(len(norm) - length + 1) for _ in range(k)]
    return list(dict.fromkeys(norm[s : s + length] for s in starts))


def item_rng(seed: int, target: ContamTarget) -> random.Random:
    """A string seed is hashed with SHA-512 by ``random``: stable across runs and machines."""
    return random.Random(f"{seed}\x1f{target.exam_id}\x1f{target.item_id}")


# ---- matching ---------------------------------------------------------------------------------


class Matcher:
    """Finds every occurrence of the patterns in a normalised buffer, in one pass over it."""

    def __init__(self, patterns: list[str], length: int) -> None:
        self.patterns = patterns
        self.length = length
        self.anchor = 8 * (length // 16)
        self.step = length - self.anchor + 1
        long_ids = [i for i, p in enumerate(patterns) if len(p) == length and self.anchor >= 8]
        self.short: ahocorasick.Automaton | None = None
        short_ids = sorted(set(range(len(patterns))) - set(long_ids))
        if short_ids:
            self.short = ahocorasick.Automaton()
            for i in short_ids:
                self.short.add_word(patterns[i], i)
            self.short.make_automaton()
        rng = np.random.default_rng(20230315)
        self.weights = rng.integers(1, 2**63, size=self.anchor // 2, dtype=np.uint64) * 2 + 1
        self._index_anchors(long_ids)

    def _hash(self, rows: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint64]:
        words = np.ascontiguousarray(rows).view(np.uint64)
        out: npt.NDArray[np.uint64] = (words * self.weights).sum(axis=1, dtype=np.uint64)
        return out

    def _index_anchors(self, long_ids: list[int]) -> None:
        codes = np.array(long_ids, dtype=np.int64)
        chars = _code_points("".join(self.patterns[i] for i in long_ids)).reshape(-1, self.length)
        hashes = [self._hash(chars[:, o : o + self.anchor]) for o in range(self.step)]
        all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        all_codes = np.concatenate([codes * self.step + o for o in range(self.step)])
        order = np.argsort(all_hashes, kind="stable")
        self.hashes, self.codes = all_hashes[order], all_codes[order]
        self.bitmap = np.zeros(1 << (_BITMAP_BITS - 3), dtype=np.uint8)
        slot = self.hashes >> np.uint64(64 - _BITMAP_BITS)
        bit = np.left_shift(1, (slot & np.uint64(7)).astype(np.uint8)).astype(np.uint8)
        np.bitwise_or.at(self.bitmap, (slot >> np.uint64(3)).astype(np.intp), bit)

    def find(self, buf: str, new_from: int, grid_from: int) -> list[tuple[int, int]]:
        """(start, pattern id) of occurrences in ``buf`` that end at or after ``new_from``."""
        found: list[tuple[int, int]] = []
        n, size = len(buf), self.length
        rows = (n - grid_from - self.anchor) // self.step + 1
        if len(self.hashes) and rows > 0:
            chars = _code_points(buf)[grid_from:]
            grid = as_strided(chars, shape=(rows, self.anchor), strides=(4 * self.step, 4))
            hashes = self._hash(grid)
            slot = hashes >> np.uint64(64 - _BITMAP_BITS)
            maybe = (
                self.bitmap[(slot >> np.uint64(3)).astype(np.intp)] >> (slot & np.uint64(7)).astype(np.uint8)
            ) & 1
            rows_maybe = np.flatnonzero(maybe)
            lows = np.searchsorted(self.hashes, hashes[rows_maybe], side="left")
            highs = np.searchsorted(self.hashes, hashes[rows_maybe], side="right")
            sure = highs > lows
            confirmed = (a[sure].tolist() for a in (rows_maybe, lows, highs))
            for r, lo, hi in zip(*confirmed, strict=True):
                for code in self.codes[lo:hi].tolist():
                    pid, offset = divmod(code, self.step)
                    s = grid_from + r * self.step - offset
                    end = s + size
                    if s >= 0 and new_from < end <= n and buf[s:end] == self.patterns[pid]:
                        found.append((s, pid))
        if self.short is not None:
            for end, pid in self.short.iter(buf):
                if end >= new_from:
                    found.append((end - len(self.patterns[pid]) + 1, pid))
        return found


def _code_points(text: str) -> npt.NDArray[np.uint32]:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
