"""Hostile exam files: each is rejected by ``examharness validate`` quickly, with exit code 1,
exactly one ``FILE:LINE: field: message`` line per problem, and no traceback.

The cases think like an attacker or a careless editor: alias and merge-key bombs, recursive
aliases, tags, huge and non-finite numbers, deep nesting, NUL bytes, binary, BOMs, duplicate keys,
unhashable ids and wrong types at every level. Each case is a small edit of one valid exam.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from examharness.cli import main
from examharness.exam import load_exam

BASE = """\
id: hostile
title: Hostile input
source: written for the examharness tests
license: Apache-2.0
sections:
  - id: s1
    kind: multiple_choice
    weight: 1
    items:
      - id: q1
        type: mc
        question: What is 1 + 1?
        options: ["1", "2", "3", "4"]
        answer: B
      - id: q2
        type: numeric
        question: What is 2 + 2?
        answer: ["4"]
        tolerance: 0
  - id: s2
    kind: free_response
    items:
      - id: f1
        type: free_response
        prompt: Explain.
        rubric: One point for anything.
        max_points: 1
"""
def _laughs() -> str:
    """Nine levels of nine aliases each: 9**9 values once expanded, in under 400 bytes."""
    names = "abcdefghi"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]" for p, n in itertools.pairwise(names)]
    return "\n".join(lines) + "\n"


LAUGHS = _laughs()
OPTIONS = 'options: ["1", "2", "3", "4"]'
MERGES = "m0: &m0 {a: 1, b: 2}\n" + "".join(
    f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}\n" for i in range(1, 40)
)


@dataclass(frozen=True)
class Case:
    name: str
    old: str
    new: str
    """``BASE`` with ``old`` replaced by ``new`` (``old == ""``: ``new`` is the whole file)."""
    expect: tuple[str, ...]
    """One substring per expected line, in order."""
    line: int | None = None
    """The line of the first problem, when the case pins it."""

    def text(self) -> str:
        return self.new if not self.old else BASE.replace(self.old, self.new, 1)


CASES = [
    Case("alias_bomb", "sections:", LAUGHS.replace("a:", "description: x\na:", 1) + "sections:",
         ("alias bomb",)),
    Case("alias_bomb_only", "", LAUGHS, ("alias bomb",)),
    Case("merge_bomb", "", MERGES, ("alias bomb",)),
    Case("recursive_alias", OPTIONS, "options: &o [\"1\", *o]",
         ("recursive YAML alias *o",), 13),
    Case("unknown_alias", "answer: B", "answer: *nowhere", ("unknown YAML alias *nowhere",), 14),
    Case("python_tag", "title: Hostile input", "title: !!python/object/apply:os.system [ls]",
         ("is not allowed",), 2),
    Case("set_tag", OPTIONS, "options: !!set {a, b}", ("is not allowed",), 13),
    Case("binary_tag", "question: What is 1 + 1?", "question: !!binary aGVsbG8=", ("is not allowed",), 12),
    Case("custom_tag", "answer: B", "answer: !shell B", ("is not allowed",), 14),
    Case("merge_scalar", "    weight: 1\n", "    weight: 1\n    <<: 5\n", ("merge key",), 9),
    Case("huge_max_tokens", "weight: 1", "weight: 1\n    max_tokens: 123456789012345678901234567890",
         ("out of range",), 9),
    Case("long_int", "weight: 1", "weight: 1\n    max_tokens: " + "9" * 5000, ("out of range",), 9),
    Case("big_max_tokens", "weight: 1", "weight: 1\n    max_tokens: 99999999999", ("less than or equal",), 9),
    Case("inf_weight", "weight: 1", "weight: .inf", ("finite number",), 8),
    Case("nan_weight", "weight: 1", "weight: .NaN", ("finite number",), 8),
    Case("overflow_weight", "weight: 1", "weight: 1.0e+400", ("finite number",), 8),
    Case("inf_max_points", "max_points: 1", "max_points: .inf", ("finite number",), 27),
    Case("nan_tolerance", "tolerance: 0", "tolerance: .nan", ("finite number",), 19),
    Case("inf_numeric_answer", 'answer: ["4"]', "answer: [.inf]", ("finite number",), 18),
    Case("word_numeric_answer", 'answer: ["4"]', 'answer: ["four", "B"]',
         ("'four' is neither a number",), 18),
    Case("nan_temperature", "weight: 1", "weight: 1\n    sampling: {temperature: .nan}",
         ("finite number",), 9),
    Case("deep_list", "title: Hostile input", "title: " + "[" * 5000 + "]" * 5000, ("nest",), 2),
    Case("deep_map", "title: Hostile input", "title: " + "{a: " * 3000 + "1" + "}" * 3000,
         ("nest",), 2),
    Case("deep_block", "title: Hostile input",
         "title:\n" + "".join(f"{' ' * (i + 1)}- \n" for i in range(200)), ("nested more than",), 66),
    Case("nul_byte_raw", "title: Hostile input", "title: Hostile\x00input",
         ("unacceptable character #x0000",), 2),
    Case("nul_in_image_path", "answer: B", 'answer: B\n        images: ["a\\0b.png"]', ("NUL byte",), 15),
    Case("control_chars", "title: Hostile input", "title: \x07\x1b[31m", ("unacceptable character",), 2),
    Case("list_section_id", "  - id: s1", "  - id: [s1, s2]", ("valid string",), 6),
    Case("map_item_id", "      - id: q1", "      - id: {a: 1}", ("valid string",), 10),
    Case("list_exam_id", "id: hostile", "id: [1, 2]", ("valid string",), 1),
    Case("date_title", "title: Hostile input", "title: 2026-01-01", ("valid string",), 2),
    Case("int_passage_key", "sections:", "passages:\n  7: {text: seven}\nsections:", ("valid string",), 6),
    Case("list_passage_ref", "answer: B", "answer: B\n        passage: [a, b]", ("valid string",), 15),
    Case("sections_mapping", "", "id: x\ntitle: t\nsource: s\nlicense: l\nsections: {a: 1}\n",
         ("valid list",), 5),
    Case("sections_string", "", "id: x\ntitle: t\nsource: s\nlicense: l\nsections: all of them\n",
         ("valid list",), 5),
    Case("items_string", "    items:\n      - id: q1", "    items: none\n    other:\n      - id: q1",
         ("valid list", "Extra inputs"), 9),
    Case("options_mapping", OPTIONS, "options: {a: 1, b: 2}", ("valid list",), 13),
    Case("options_nested", OPTIONS, "options: [[1], [2]]",
         ("valid string", "valid string"), 13),
    Case("mc_answer_list", "answer: B", "answer: [B]", ("valid string",), 14),
    Case("type_list", "type: mc", "type: [mc]", ("tag",), 10),
    Case("unknown_kind", "kind: free_response", "kind: oral", ("Input should be",), 21),
    Case("images_string", "answer: B", "answer: B\n        images: picture.png", ("valid list",), 15),
    Case("images_ints", "answer: B", "answer: B\n        images: [1]", ("valid string",), 15),
    Case("scale_list", "        max_points: 1\n", "        max_points: 1\nscoring:\n  scale: [a]\n",
         ("scoring.scale",), 29),
    Case("template_traversal", "weight: 1", "weight: 1\n    template: ../../../etc/passwd",
         ("should match pattern",), 9),
    Case("template_nul", "weight: 1", 'weight: 1\n    template: "a\\0b"', ("should match pattern",), 9),
    Case("duplicate_key", "title: Hostile input", "title: Hostile input\ntitle: again",
         ("duplicate key",), 3),
    Case("duplicate_keys_twice", "title: Hostile input",
         "title: Hostile input\ntitle: again\nsource: again", ("duplicate key", "duplicate key"), 3),
    Case("complex_key", "title: Hostile input", "? [a, b]\n: 1\ntitle: Hostile input",
         ("mapping key must be a plain value",), 2),
    Case("two_documents", "", BASE + "---\nid: second\n", ("expected one YAML document",), 28),
    Case("top_level_list", "", "- id: x\n- id: y\n", ("must be a YAML mapping",), 1),
    Case("top_level_scalar", "", "just words\n", ("must be a YAML mapping",), 1),
    Case("empty_file", "", "", ("must be a YAML mapping",), 1),
    Case("rubric_scale_inf", "", BASE.replace("kind: free_response", "kind: essay").replace(
        "type: free_response", "type: essay\n        scale: {min: 0, max: .inf}").replace(
        "        max_points: 1\n", ""), ("finite number",), 25),
    Case("version_huge", "id: hostile", "id: hostile\nversion: 12345678901234567",
         ("less than or equal",), 2),
]


def _run_validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.mark.timeout(10)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_exam_is_rejected_with_one_line_per_problem(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "exam.yaml"
    path.write_bytes(case.text().encode("utf-8"))
    code, lines, err = _run_validate(path, capsys)
    assert code == 1, (lines, err)
    assert "Traceback" not in err and err == "", err
    assert len(lines) == len(case.expect), lines
    for line, expected in zip(lines, case.expect, strict=True):
        assert re.match(rf"{re.escape(str(path))}:\d+: \S+: ", line), line
        assert expected in line, line
    if case.line is not None:
        assert lines[0].startswith(f"{path}:{case.line}: "), lines[0]


@pytest.mark.parametrize(
    ("name", "data"),
    [("binary", bytes(range(256)) * 4), ("utf16_bom", "\ufeffid: x\n".encode("utf-16")),
     ("latin1", "title: caf\xe9\n".encode("latin-1"))],
)
def test_unreadable_bytes_give_one_line(
    name: str, data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(data)
    code, lines, err = _run_validate(path, capsys)
    assert code == 1 and err == ""
    assert len(lines) == 1 and lines[0].startswith(f"{path}: (file): cannot read file"), lines


def test_utf8_bom_and_anchors_within_bounds_are_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anchors, aliases and merge keys are legitimate YAML: shared options and settings load."""
    text = BASE.replace('options: ["1", "2", "3", "4"]', 'options: &opts ["1", "2", "3", "4"]')
    text = text.replace("    weight: 1\n", "    weight: 1\n    sampling: &common {temperature: 0.3}\n")
    merged = "    kind: free_response\n    sampling: {<<: *common, max_tokens: 9}\n"
    text = text.replace("    kind: free_response\n", merged)
    text += (
        "      - id: f2\n        type: free_response\n        prompt: Again.\n"
        "        rubric: Same.\n        max_points: 1\n"
    )
    path = tmp_path / "exam.yaml"
    path.write_bytes(("\ufeff" + text).encode("utf-8"))
    code, lines, err = _run_validate(path, capsys)
    assert (code, lines) == (0, []), err
    exam = load_exam(path).exam
    assert exam.sections[1].sampling is not None
    assert exam.sections[1].sampling.temperature == 0.3 and exam.sections[1].sampling.max_tokens == 9


def test_merge_key_override_is_not_a_duplicate(tmp_path: Path) -> None:
    override = "    weight: 1\n    sampling: {<<: {temperature: 0.3}, temperature: 0.5}\n"
    text = BASE.replace("    weight: 1\n", override)
    path = tmp_path / "exam.yaml"
    path.write_text(text, encoding="utf-8")
    sampling = load_exam(path).exam.sections[0].sampling
    assert sampling is not None and sampling.temperature == 0.5


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", ["validate", "list", "run"])
def test_alias_bomb_is_refused_by_every_command(command: str, tmp_path: Path) -> None:
    """The 386-byte bomb of the issue, through the real CLI in a child process."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(LAUGHS, encoding="utf-8")
    assert len(bomb.read_bytes()) < 400
    result = subprocess.run(
        [sys.executable, "-m", "examharness.cli", command, str(bomb),
         *(["--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--no-cache", "--out", str(tmp_path)]
           if command == "run" else [])],
        capture_output=True, text=True, timeout=25, env={"OPENAI_API_KEY": "x", "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    output = (result.stdout + result.stderr).strip().splitlines()
    assert output == [f"{bomb}:7: (file): YAML aliases expand to more than 1,000,000 values (an alias bomb?)"]
