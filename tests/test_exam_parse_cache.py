"""The parse cache (``load_exam(parse_cache=...)``) serves the exam it validated, as validated,
until the file's bytes change; an image the exam names that went missing since is still reported
with its line, as a fresh parse reports it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from examharness.errors import InputError
from examharness.exam import load_exam


def _exam(folder: Path) -> Path:
    items = [{"id": f"q{i}", "type": "mc", "question": f"Question {i}?", "options": ["a", "b", "c", "d"],
              "answer": "ABCD"[i % 4], "images": ["fig.png"] if i == 2 else []}
             for i in range(4)]  # fmt: skip
    doc = {"id": "img", "title": "Images", "source": "written for examharness tests", "license": "CC0",
           "passages": {"p": {"text": "A passage.", "images": ["passage.png"]}},
           "sections": [{"id": "s", "kind": "multiple_choice", "items": items}]}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("fig.png", "passage.png"):
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    path = folder / "img.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_a_cached_exam_is_the_exam_parsed(tmp_path: Path) -> None:
    path, cache = _exam(tmp_path / "exams"), tmp_path / "parsed"
    fresh = load_exam(path, parse_cache=cache)
    assert len(list(cache.glob("*.json"))) == 1
    cached = load_exam(path, parse_cache=cache)
    assert cached == fresh and cached.exam.model_dump() == load_exam(path).exam.model_dump()


@pytest.mark.parametrize(("image", "line"), [("fig.png", "images.0"), ("passage.png", "passages.p.images.0")])
def test_an_image_gone_since_it_was_cached_is_reported(tmp_path: Path, image: str, line: str) -> None:
    path, cache = _exam(tmp_path / "exams"), tmp_path / "parsed"
    load_exam(path, parse_cache=cache)
    (path.parent / image).unlink()
    with pytest.raises(InputError) as err:
        load_exam(path, parse_cache=cache)
    assert f"image file {image!r} not found" in str(err.value) and line in str(err.value)
