"""Reading the corpus: files and folders, gzip, plain text or JSONL records, as normalised text.

The corpus is read once, in chunks (constant memory). A document is one text file or one JSONL
record's text field: matches never span two records or two files. A file that cannot be read
(binary, not UTF-8, corrupt gzip) and bad JSONL lines become :class:`SkippedFile` entries in the
report, never an error that stops the scan.
"""

from __future__ import annotations

import codecs
import gzip
import json
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from examharness.contamfile import SkippedFile
from examharness.contamination.method import Matcher, normalise
from examharness.errors import InputError

CHUNK_BYTES = 4 << 20
PIECE_CHARS = 4 << 10
"""Pieces of this size let a hit be mapped back to its original offset cheaply."""
MAX_JSONL_PROBLEMS = 10


class _Skip(Exception):
    """A corpus file (or the rest of one) that cannot be read as text."""


class _RawPiece(NamedTuple):
    text: str
    line: int
    offset: int
    """Character offset of ``text[0]`` in its document (the file, or the JSONL record's field)."""
    count_lines: bool
    new_doc: bool


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


def feed_file(
    stream: Stream,
    path: Path,
    text_field: str,
    chunk_bytes: int,
    on_match: Callable[[int, int], None],
    progress: Callable[[int], None],
    skipped: list[SkippedFile],
) -> None:
    """Feed one corpus file through ``stream`` (see :meth:`Stream.feed` for ``on_match``).

    ``progress`` gets the on-disk bytes of ``path`` consumed so far. A file, or the rest of one,
    that cannot be read is appended to ``skipped`` instead of raising.
    """
    try:
        chunks = _chunks(path, chunk_bytes, progress)
        if _is_jsonl(path):
            pieces = _JsonlReader(str(path), text_field, skipped).pieces(chunks)
        else:
            pieces = _text_pieces(chunks)
        for batch in pieces:
            stream.feed(batch, on_match)
    except _Skip as err:
        skipped.append(SkippedFile(file=str(path), reason=str(err)))
    except (OSError, EOFError, zlib.error) as err:
        skipped.append(SkippedFile(file=str(path), reason=f"unreadable: {err}"))


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


class Stream:
    """The normalised text of one corpus file, fed chunk by chunk.

    The last ``length - 1`` normalised characters are carried into the next buffer so a match
    across a chunk boundary is found; a match is reported only from the buffer where it ends, so
    it is reported once. JSONL records are joined with ``\\n``, which no pattern contains.
    """

    def __init__(self, matcher: Matcher) -> None:
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
