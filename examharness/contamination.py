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

The corpus is read once, whatever the number of items, in chunks (constant memory). Full-length
patterns are found through 24-character anchors: every 50-character occurrence contains an
anchor that starts at a multiple of 27 in the normalised stream, so only those positions are
hashed (numpy), looked up in a bitmap and a sorted hash table, and confirmed by comparing
strings. The cost per corpus byte so does not grow with the number of items; a ``pyahocorasick``
automaton over 30,000 patterns measured 8x slower than over 30. Shorter patterns (items shorter
than 50 characters) do go through a ``pyahocorasick`` automaton, in the same pass.
"""

from __future__ import annotations

import codecs
import gzip
import json
import random
import re
import string
import time
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import ahocorasick
import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided
from pydantic import BaseModel, ValidationError

from examharness.errors import InputError
from examharness.exam import (
    EssayItem,
    Exam,
    FreeResponseItem,
    MCItem,
    MultiSelectItem,
    load_exam,
)

SCHEMA_VERSION = 1
SUBSTRINGS_PER_ITEM = 3
SUBSTRING_LENGTH = 50
CHUNK_BYTES = 4 << 20
PIECE_CHARS = 4 << 10
"""Pieces of this size let a hit be mapped back to its original offset cheaply."""
MAX_HITS_PER_PATTERN = 3
MAX_JSONL_PROBLEMS = 10
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
        if isinstance(item, FreeResponseItem | EssayItem):
            parts.append(item.prompt)
        else:
            parts.append(item.question)
            if include_options and isinstance(item, MCItem | MultiSelectItem):
                parts.extend(item.options)
        targets.append(ContamTarget(exam_id=exam.id, item_id=item.id, text="\n".join(parts)))
    return targets


def sample_substrings(
    text: str, k: int = SUBSTRINGS_PER_ITEM, length: int = SUBSTRING_LENGTH,
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


def _item_rng(seed: int, target: ContamTarget) -> random.Random:
    """A string seed is hashed with SHA-512 by ``random``: stable across runs and machines."""
    return random.Random(f"{seed}\x1f{target.exam_id}\x1f{target.item_id}")


# ---- matching ---------------------------------------------------------------------------------


class _Matcher:
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
            maybe = (self.bitmap[(slot >> np.uint64(3)).astype(np.intp)]
                     >> (slot & np.uint64(7)).astype(np.uint8)) & 1
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


# ---- reading the corpus -----------------------------------------------------------------------


class _Skip(Exception):
    """A corpus file (or the rest of one) that cannot be read as text."""


class _RawPiece(NamedTuple):
    text: str
    line: int
    offset: int
    """Character offset of ``text[0]`` in its document (the file, or the JSONL record's field)."""
    count_lines: bool
    new_doc: bool


class SkippedFile(BaseModel):
    """A corpus file, or one line of a JSONL file, that was not scanned, and why."""

    file: str
    line: int | None = None
    reason: str


def corpus_files(paths: list[Path]) -> list[Path]:
    """Files to scan: each file as given, each folder's files recursively in sorted order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.exists():
            files.append(path)
        else:
            raise InputError.one(path, None, "--corpus", "no such file or folder")
    return files


def _is_jsonl(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((".jsonl", ".ndjson"))


def _chunks(path: Path, size: int, progress: Callable[[int], None]) -> Iterator[bytes]:
    """Decompressed chunks of ``path`` (gzip by magic number); reports on-disk bytes consumed."""
    with path.open("rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=raw) if is_gzip else raw  # type: ignore[assignment]
        first = True
        while chunk := stream.read(size):
            if first and b"\x00" in chunk[:8192]:
                raise _Skip("binary file (NUL byte in the first 8 KiB)")
            first = False
            progress(raw.tell())
            yield chunk


def _text_pieces(chunks: Iterator[bytes]) -> Iterator[list[_RawPiece]]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset, done = 1, 0, 0
    for chunk in _with_end(chunks):
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as err:
            where = done + err.start
            raise _Skip(f"not UTF-8 text (byte {where}); not scanned from there on") from None
        done += len(chunk)
        pieces = []
        for i in range(0, len(text), PIECE_CHARS):
            part = text[i : i + PIECE_CHARS]
            pieces.append(_RawPiece(part, line, offset, True, False))
            line += part.count("\n")
            offset += len(part)
        yield pieces


def _with_end(chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield from chunks
    yield b""


class _JsonlReader:
    """Records of a JSONL file as pieces; bad lines become :class:`SkippedFile` entries."""

    def __init__(self, file: str, field: str, skipped: list[SkippedFile]) -> None:
        self.file, self.field, self.skipped, self.bad = file, field, skipped, 0

    def pieces(self, chunks: Iterator[bytes]) -> Iterator[list[_RawPiece]]:
        rest, line_no = b"", 0
        for chunk in _with_end(chunks):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop() if chunk else b""
            batch: list[_RawPiece] = []
            for raw in lines:
                line_no += 1
                text = self._field(raw, line_no)
                for i in range(0, len(text), PIECE_CHARS):
                    batch.append(_RawPiece(text[i : i + PIECE_CHARS], line_no, i, False, i == 0))
            yield batch
        if self.bad > MAX_JSONL_PROBLEMS:
            more = self.bad - MAX_JSONL_PROBLEMS
            reason = f"{more} more bad lines skipped"
            self.skipped.append(SkippedFile(file=self.file, reason=reason))

    def _field(self, raw: bytes, line_no: int) -> str:
        if not raw.strip():
            return ""
        try:
            record = json.loads(raw)
        except ValueError as err:
            return self._bad(line_no, f"not valid JSON ({err})")
        value = record.get(self.field) if isinstance(record, dict) else None
        if not isinstance(value, str):
            return self._bad(line_no, f"no string field {self.field!r}")
        return value

    def _bad(self, line_no: int, reason: str) -> str:
        self.bad += 1
        if self.bad <= MAX_JSONL_PROBLEMS:
            self.skipped.append(SkippedFile(file=self.file, line=line_no, reason=reason))
        return ""


class _Piece(NamedTuple):
    raw: _RawPiece
    norm_start: int
    norm_end: int


class _Stream:
    """The normalised text of one corpus file, fed chunk by chunk.

    The last ``length - 1`` normalised characters are carried into the next buffer so a match
    across a chunk boundary is found; a match is reported only from the buffer where it ends, so
    it is reported once. JSONL records are joined with ``\\n``, which no pattern contains.
    """

    def __init__(self, matcher: _Matcher) -> None:
        self.matcher = matcher
        self.carry = ""
        self.pos = 0
        self.pieces: list[_Piece] = []
        self.starts: list[int] | None = None

    def feed(self, raw_pieces: list[_RawPiece], on_match: Callable[[int, int], None]) -> None:
        """Call ``on_match(pattern id, stream position)`` for each match this chunk completes.

        ``on_match`` may call :meth:`locate` for that position.
        """
        parts: list[str] = []
        cursor = self.pos + len(self.carry)
        for raw in raw_pieces:
            if raw.new_doc and cursor:
                parts.append("\n")
                cursor += 1
            norm = normalise(raw.text)
            self.pieces.append(_Piece(raw, cursor, cursor + len(norm)))
            parts.append(norm)
            cursor += len(norm)
        buf = self.carry + "".join(parts)
        self.starts = None
        grid_from = (-self.pos) % self.matcher.step
        for start, pid in self.matcher.find(buf, len(self.carry), grid_from):
            on_match(pid, self.pos + start)
        keep = min(self.matcher.length - 1, len(buf))
        self.pos += len(buf) - keep
        self.carry = buf[len(buf) - keep :]
        self.pieces = [p for p in self.pieces if p.norm_end > self.pos]

    def locate(self, position: int) -> tuple[int, int]:
        """(line, character offset in the document) of a normalised-stream position."""
        if self.starts is None:
            self.starts = [p.norm_start for p in self.pieces]
        index = bisect_right(self.starts, position) - 1
        piece = self.pieces[index].raw
        j = _char_index(piece.text, position - self.pieces[index].norm_start)
        line = piece.line + (piece.text.count("\n", 0, j) if piece.count_lines else 0)
        return line, piece.offset + j


def _char_index(text: str, k: int) -> int:
    """Index of the character of ``text`` that yields normalised character ``k`` (binary search)."""
    lo, hi, count = 0, len(text), 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        size = len(normalise(text[lo:mid]))
        if count + size > k:
            hi = mid
        else:
            lo, count = mid, count + size
    return lo


# ---- the report -------------------------------------------------------------------------------


class ContamHit(BaseModel):
    """Where one sampled substring of an item was found (at most 3 places per substring)."""

    exam_id: str
    item_id: str
    pattern: str
    """The normalised substring that matched."""
    file: str
    line: int
    """1-based line of the file where the match starts (the record's line for JSONL)."""
    offset: int
    """Character offset where the match starts, in the original (decompressed, decoded) text:
    from the start of the file for text files, from the start of the record's field for JSONL."""


class ExamContamination(BaseModel):
    exam_id: str
    n_items: int
    item_ids: list[str]
    contaminated: list[str]
    """Ids of items with at least one sampled substring found in the corpus."""
    share_contaminated: float


class ContaminationReport(BaseModel):
    """``contamination.json``: everything needed to score the clean subset of each exam."""

    schema_version: int = SCHEMA_VERSION
    method: str = "GPT-4 technical report, Appendix C: substring match on normalised text"
    seed: int
    include_options: bool = False
    text_field: str = "text"
    substrings_per_item: int = SUBSTRINGS_PER_ITEM
    substring_length: int = SUBSTRING_LENGTH
    corpus_files: list[str]
    exams: list[ExamContamination]
    hits: list[ContamHit]
    skipped: list[SkippedFile]
    """Unreadable or binary files and bad JSONL lines: reported, not fatal."""
    bytes_scanned: int
    """On-disk bytes read (compressed size for ``.gz``)."""
    seconds: float
    mb_per_s: float


def scan(
    targets: list[ContamTarget], corpus_paths: list[Path], seed: int, text_field: str = "text",
    progress: Callable[[int, int], None] | None = None, *, chunk_bytes: int = CHUNK_BYTES,
) -> ContaminationReport:
    """Check every target against the corpus in one streaming pass."""
    started = time.perf_counter()
    files = corpus_files(corpus_paths)
    owners: dict[str, list[int]] = {}
    for t, target in enumerate(targets):
        for pattern in sample_substrings(target.text, rng=_item_rng(seed, target)):
            owners.setdefault(pattern, []).append(t)
    patterns = list(owners)
    matcher = _Matcher(patterns, SUBSTRING_LENGTH)
    places: list[list[tuple[str, int, int]]] = [[] for _ in patterns]
    skipped: list[SkippedFile] = []
    total, done = sum(f.stat().st_size for f in files), 0
    for file in files:
        stream = _Stream(matcher)

        def on_match(pid: int, position: int, file: Path = file, stream: _Stream = stream) -> None:
            if len(places[pid]) < MAX_HITS_PER_PATTERN:
                places[pid].append((str(file), *stream.locate(position)))

        def tick(at: int, base: int = done) -> None:
            if progress is not None:
                progress(base + at, total)

        try:
            chunks = _chunks(file, chunk_bytes, tick)
            if _is_jsonl(file):
                pieces = _JsonlReader(str(file), text_field, skipped).pieces(chunks)
            else:
                pieces = _text_pieces(chunks)
            for batch in pieces:
                stream.feed(batch, on_match)
        except _Skip as err:
            skipped.append(SkippedFile(file=str(file), reason=str(err)))
        except (OSError, EOFError, zlib.error) as err:
            skipped.append(SkippedFile(file=str(file), reason=f"unreadable: {err}"))
        done += file.stat().st_size
    hits = [
        ContamHit(exam_id=targets[t].exam_id, item_id=targets[t].item_id, pattern=patterns[pid],
                  file=f, line=line, offset=offset)
        for pid, found in enumerate(places)
        for f, line, offset in found
        for t in owners[patterns[pid]]
    ]
    seconds = time.perf_counter() - started
    return ContaminationReport(
        seed=seed, text_field=text_field, corpus_files=[str(f) for f in files],
        exams=_per_exam(targets, hits), hits=hits, skipped=skipped, bytes_scanned=done,
        seconds=round(seconds, 3), mb_per_s=round(done / 1e6 / max(seconds, 1e-9), 1),
    )


def _per_exam(targets: list[ContamTarget], hits: list[ContamHit]) -> list[ExamContamination]:
    dirty = {(h.exam_id, h.item_id) for h in hits}
    ids: dict[str, list[str]] = {}
    for target in targets:
        ids.setdefault(target.exam_id, []).append(target.item_id)
    return [
        ExamContamination(
            exam_id=exam_id, n_items=len(items), item_ids=items,
            contaminated=[i for i in items if (exam_id, i) in dirty],
            share_contaminated=sum((exam_id, i) in dirty for i in items) / len(items),
        )
        for exam_id, items in ids.items()
    ]


def clean_item_ids(report: ContaminationReport, exam_id: str) -> set[str]:
    """Ids of the exam's items NOT found in the corpus: the subset for the uncontaminated score.

    Empty for an exam the report did not check (nothing is known to be clean); tell the two
    apart with ``report.exams``.
    """
    for exam in report.exams:
        if exam.exam_id == exam_id:
            return set(exam.item_ids) - set(exam.contaminated)
    return set()


def save_report(report: ContaminationReport, path: Path) -> None:
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")


def load_report(path: Path) -> ContaminationReport:
    try:
        return ContaminationReport.model_validate_json(path.read_bytes())
    except OSError as err:
        raise InputError.one(path, None, "(file)", f"cannot read: {err.strerror}") from None
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(map(str, first["loc"]))
        raise InputError.one(path, None, field, first["msg"]) from None


def render_text(report: ContaminationReport, max_hits: int = 20) -> str:
    """A plain-text summary for the terminal: one line per exam, then hits and skipped files."""
    lines = [f"{'exam':30} {'items':>6} {'contaminated':>12} {'share':>7}"]
    for e in report.exams:
        lines.append(f"{e.exam_id:30} {e.n_items:6d} {len(e.contaminated):12d} "
                     f"{e.share_contaminated:7.1%}")
    if report.hits:
        lines.append(f"\nhits (first {min(max_hits, len(report.hits))} of {len(report.hits)}):")
        lines += [f"  {h.exam_id}/{h.item_id}  {h.file}:{h.line} (char {h.offset})  {h.pattern}"
                  for h in report.hits[:max_hits]]
    if report.skipped:
        lines.append(f"\nskipped ({len(report.skipped)}):")
        lines += [f"  {s.file}{f':{s.line}' if s.line else ''}: {s.reason}" for s in report.skipped]
    lines.append(f"\n{len(report.corpus_files)} corpus files, {report.bytes_scanned / 1e6:.1f} MB "
                 f"in {report.seconds:.1f} s ({report.mb_per_s:.0f} MB/s)")
    return "\n".join(lines)


def run_contamination(
    exam_paths: list[Path], corpus_paths: list[Path], seed: int = 0, include_options: bool = False,
    text_field: str = "text", progress: Callable[[int, int], None] | None = None,
) -> ContaminationReport:
    """What ``examharness contamination`` does: load the exams, scan, return the report."""
    targets = [
        target for path in exam_paths
        for target in targets_from_exam(load_exam(path).exam, include_options)
    ]
    report = scan(targets, corpus_paths, seed, text_field, progress)
    return report.model_copy(update={"include_options": include_options})
