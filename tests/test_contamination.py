"""Contamination check: normalisation, sampling, and the one-pass corpus scan."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from examharness.contamination import (
    ContaminationReport,
    ContamTarget,
    clean_item_ids,
    load_report,
    normalise,
    render_text,
    sample_substrings,
    save_report,
    scan,
    targets_from_exam,
)
from examharness.errors import InputError
from examharness.exam import Exam

PASSAGE = (
    "The quick brown fox, having jumped over the lazy dog in 1999, ran into the forest "
    "where nobody ever found it again; the dog, for its part, slept on."
)
OTHER = (
    "Photosynthesis converts light energy into chemical energy stored in glucose, "
    "releasing oxygen as a by-product of splitting water molecules."
)


def _targets() -> list[ContamTarget]:
    return [
        ContamTarget(exam_id="x", item_id="planted", text=PASSAGE),
        ContamTarget(exam_id="x", item_id="absent", text=OTHER),
    ]


def _disguise(text: str) -> str:
    """Same letters and digits, different spacing, punctuation and case."""
    return "  ".join(text.upper().split(" ")).replace(",", " ;").replace("1999", "1-9-9-9")


def _dirty(report: ContaminationReport) -> set[str]:
    return {item for exam in report.exams for item in exam.contaminated}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "helloworld"),
        ("a_b-c 1.2\n3", "abc123"),
        ("Straße", "strasse"),
        ("ΟΔΟΣ οδος", "οδοσοδοσ"),
        ("Café © “quoted” — 42", "caféquoted42"),
        ("   ...   ", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_normalise_by_pieces_equals_whole() -> None:
    text = "Ünïcode — MIXED text, ß and ΣΑΣ; 123. " * 5
    assert "".join(normalise(text[i : i + 7]) for i in range(0, len(text), 7)) == normalise(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("What is 2 + 2?", ["whatis22"]), ("", []), ("!!!", []), ("x" * 50, ["x" * 50])],
)
def test_short_texts_use_the_whole_text(text: str, expected: list[str]) -> None:
    assert sample_substrings(text, rng=random.Random(1)) == expected


def test_long_texts_give_three_substrings_of_50() -> None:
    found = sample_substrings(PASSAGE, rng=random.Random(3))
    assert 1 <= len(found) <= 3
    assert all(len(s) == 50 and s in normalise(PASSAGE) for s in found)


def test_planted_item_found_absent_not(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    original = "Preamble line.\nSome text " + _disguise(PASSAGE) + " and more.\n"
    corpus.write_text(original, encoding="utf-8")
    report = scan(_targets(), [corpus], seed=7)
    assert _dirty(report) == {"planted"}
    assert report.exams[0].share_contaminated == 0.5
    assert report.hits and all(h.item_id == "planted" for h in report.hits)
    for hit in report.hits:
        assert normalise(original[hit.offset :]).startswith(hit.pattern)
        assert normalise(original[hit.offset + 1 :]).startswith(hit.pattern) is False
        assert hit.line == original.count("\n", 0, hit.offset) + 1


def test_seeding_is_stable(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(PASSAGE)
    runs = [scan(_targets(), [corpus], seed=s) for s in (1, 1, 2)]
    patterns = [sorted(h.pattern for h in run.hits) for run in runs]
    assert patterns[0] == patterns[1] != patterns[2]


@pytest.mark.parametrize("chunk_bytes", [16, 37, 64, 1 << 20])
def test_match_across_chunk_boundaries_found_once(tmp_path: Path, chunk_bytes: int) -> None:
    corpus = tmp_path / "c.txt"
    original = "é filler\nünïcode. " * 9 + PASSAGE + " tail"
    corpus.write_text(original, encoding="utf-8")
    short = ContamTarget(exam_id="x", item_id="short", text="nobody EVER found")
    report = scan([*_targets(), short], [corpus], seed=1, chunk_bytes=chunk_bytes)
    assert _dirty(report) == {"planted", "short"}
    per_pattern = [h.pattern for h in report.hits]
    assert len(per_pattern) == len(set(per_pattern))
    for hit in report.hits:
        assert normalise(original[hit.offset : hit.offset + 80]).startswith(hit.pattern)
        assert hit.line == original.count("\n", 0, hit.offset) + 1


def test_gz_jsonl_and_folders(tmp_path: Path) -> None:
    nested = tmp_path / "corpus" / "deeper"
    nested.mkdir(parents=True)
    record = {"text": "intro " + PASSAGE, "other": OTHER}
    (nested / "a.jsonl.gz").write_bytes(gzip.compress((json.dumps(record) + "\n").encode()))
    (tmp_path / "corpus" / "b.txt.gz").write_bytes(gzip.compress(b"nothing here"))
    report = scan(_targets(), [tmp_path / "corpus"], seed=0)
    assert _dirty(report) == {"planted"}
    assert [Path(f).name for f in report.corpus_files] == ["b.txt.gz", "a.jsonl.gz"]
    assert {h.line for h in report.hits} == {1}
    other_field = scan(_targets(), [tmp_path / "corpus"], seed=0, text_field="other")
    assert _dirty(other_field) == {"absent"}


def test_matches_never_span_two_jsonl_records(tmp_path: Path) -> None:
    half = len(PASSAGE) // 2
    lines = [json.dumps({"text": PASSAGE[:half]}), json.dumps({"text": PASSAGE[half:]})]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    target = ContamTarget(exam_id="x", item_id="planted", text=PASSAGE[half - 30 : half + 30])
    assert _dirty(scan([target], [tmp_path / "c.jsonl"], seed=0)) == set()


def test_binary_and_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01" + PASSAGE.encode())
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") + PASSAGE.encode())
    lines = ['{"text": "fine"}', "{not json", '{"body": "no text"}', json.dumps({"text": PASSAGE})]
    (tmp_path / "c.jsonl").write_text("\n".join(lines))
    report = scan(_targets(), [tmp_path], seed=0)
    assert _dirty(report) == {"planted"}
    assert {h.file for h in report.hits} == {str(tmp_path / "c.jsonl")}
    reasons = {(Path(s.file).name, s.line): s.reason for s in report.skipped}
    expected = {("blob.bin", None), ("latin1.txt", None), ("c.jsonl", 2), ("c.jsonl", 3)}
    assert set(reasons) == expected
    assert "binary" in reasons[("blob.bin", None)]
    assert "UTF-8" in reasons[("latin1.txt", None)]


def test_missing_corpus_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        scan(_targets(), [tmp_path / "nope"], seed=0)


def test_no_targets_and_empty_corpus(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    report = scan([], [tmp_path], seed=0)
    assert report.exams == [] and report.hits == [] and report.skipped == []


def _exam() -> Exam:
    items = [
        {"type": "mc", "id": "q1", "question": "Which animal ran into the forest?",
         "options": ["The fox OPTIONTEXT", "The dog"], "answer": "A", "passage": "p1",
         "explanation": "EXPLANATIONTEXT"},
        {"type": "numeric", "id": "q2", "question": "How many legs?", "answer": [98765]},
    ]
    return Exam.model_validate({
        "id": "demo", "title": "Demo", "source": "test", "license": "CC0",
        "passages": {"p1": {"text": PASSAGE}},
        "sections": [
            {"id": "s1", "kind": "multiple_choice", "items": items},
            {"id": "s2", "kind": "free_response", "items": [
                {"type": "free_response", "id": "q3", "prompt": "Explain it.",
                 "rubric": "RUBRICTEXT", "max_points": 2, "reference": "REFERENCETEXT"}]},
        ],
    })


@pytest.mark.parametrize("include_options", [False, True])
def test_targets_never_contain_answers(include_options: bool) -> None:
    targets = targets_from_exam(_exam(), include_options)
    assert [t.item_id for t in targets] == ["q1", "q2", "q3"]
    text = " ".join(t.text for t in targets)
    assert PASSAGE in targets[0].text and "Which animal" in targets[0].text
    assert ("OPTIONTEXT" in text) is include_options
    for secret in ("98765", "EXPLANATIONTEXT", "RUBRICTEXT", "REFERENCETEXT"):
        assert secret not in text


def test_report_round_trip_and_clean_ids(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(PASSAGE)
    report = scan(_targets(), [corpus], seed=0)
    save_report(report, tmp_path / "contamination.json")
    loaded = load_report(tmp_path / "contamination.json")
    assert loaded == report and loaded.schema_version == 1
    assert clean_item_ids(loaded, "x") == {"absent"}
    assert clean_item_ids(loaded, "unknown") == set()
    assert "planted" in render_text(loaded) and "MB/s" in render_text(loaded)
    (tmp_path / "bad.json").write_text('{"schema_version": 1}')
    with pytest.raises(InputError):
        load_report(tmp_path / "bad.json")
