"""Held-out text sets for ``examharness loss``: plain-text files and JSONL, validated with FILE:LINE.

A ``.txt`` file is one text (its id is the file name); a ``.jsonl`` file holds one JSON object per
line with a ``text`` string and an optional ``id`` (default ``FILE:LINE``); a folder contributes every
``.txt``/``.jsonl`` file below it, sorted. Ids must be unique across the set: records and resumes key
on them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel

from examharness.errors import InputError, Problem


class HeldOutText(BaseModel):
    id: str
    text: str

    @property
    def n_bytes(self) -> int:
        return len(self.text.encode("utf-8"))


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(f for f in sorted(p.rglob("*")) if f.suffix in (".txt", ".jsonl") and f.is_file())
        else:
            out.append(p)
    return out


def _read_jsonl(path: Path, text: str, problems: list[Problem]) -> list[HeldOutText]:
    out: list[HeldOutText] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(Problem(str(path), n, "(line)", f"not JSON: {err.msg}"))
            continue
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"]:
            problems.append(Problem(str(path), n, "text", "each line needs a non-empty 'text' string"))
            continue
        text_id = row.get("id", f"{path.name}:{n}")
        if not isinstance(text_id, str | int):
            problems.append(Problem(str(path), n, "id", "must be a string or an integer"))
            continue
        out.append(HeldOutText(id=str(text_id), text=row["text"]))
    return out


def load_texts(paths: list[Path]) -> list[HeldOutText]:
    """Every text under ``paths``; :class:`InputError` lists every problem found."""
    problems: list[Problem] = []
    texts: list[HeldOutText] = []
    files = _files(paths)
    if not files:
        raise InputError.one(" ".join(map(str, paths)) or "(none)", None, "TEXTS", "no .txt or .jsonl files")
    for path in files:
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            problems.append(Problem(str(path), None, "(file)", f"cannot read file: {err}"))
            continue
        if path.suffix == ".jsonl":
            texts.extend(_read_jsonl(path, raw, problems))
        elif path.suffix == ".txt":
            if raw.strip():
                texts.append(HeldOutText(id=path.name, text=raw))
            else:
                problems.append(Problem(str(path), None, "(file)", "the text is empty"))
        else:
            problems.append(Problem(str(path), None, "(file)", "expected a .txt or .jsonl file"))
    seen: set[str] = set()
    for t in texts:
        if t.id in seen:
            problems.append(Problem(t.id, None, "id", "two texts share this id"))
        seen.add(t.id)
    if problems:
        raise InputError(problems)
    return texts


def texts_hash(texts: list[HeldOutText]) -> str:
    """Identity of a text set, so a resume refuses texts that changed under it."""
    blob = json.dumps([[t.id, t.text] for t in texts], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()
