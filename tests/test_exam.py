"""Exam files: each malformed fixture gives exactly one ``FILE:LINE: field: message`` problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from examharness.errors import InputError
from examharness.exam import load_exam
from examharness.validate import validate_paths

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "exams"
SCALES = [ROOT / "exams" / "scales"]


def marked_line(path: Path) -> int:
    """The fixture's line that ends with ``# <- problem``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.endswith("# <- problem"))


CASES = [
    ("unknown_field.yaml", "sections.0.items.0.hint", "Extra inputs are not permitted"),
    ("bad_answer.yaml", "sections.0.items.0.answer", "answer 'E' is not one of the options A, B, C, D"),
    ("wrong_type.yaml", "sections.0.weight", "valid number"),
    ("duplicate_ids.yaml", "sections.0.items.1.id", "duplicate item id 'q1'"),
    ("broken_yaml.yaml", "(file)", "invalid YAML"),
    ("image_outside.yaml", "sections.0.items.0.images.0", "escapes the exam's folder"),
    ("missing_passage.yaml", "sections.0.items.0.passage", "unknown passage 'nowhere'"),
    ("missing_template.yaml", "sections.0.template", "template 'no_such_template' not found"),
    ("python_tag.yaml", "(file)", "is not allowed (plain data only)"),
]


@pytest.mark.parametrize(("name", "field", "message"), CASES)
def test_malformed_exam_gives_one_problem_at_its_line(name: str, field: str, message: str) -> None:
    path = FIXTURES / name
    problems = validate_paths([path], user_prompts=None, scale_dirs=SCALES)
    assert len(problems) == 1, [str(p) for p in problems]
    text = str(problems[0])
    assert text.startswith(f"{path}:{marked_line(path)}: {field}: "), text
    assert message in text


def test_python_tag_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    exam = tmp_path / "evil.yaml"
    exam.write_text(
        f'id: evil\ntitle: !!python/object/apply:os.system ["touch {marker}"]\n', encoding="utf-8"
    )
    with pytest.raises(InputError) as err:
        load_exam(exam)
    assert f"{exam}:2: (file): invalid YAML" in str(err.value)
    assert not marker.exists()


def test_demo_exam_validates() -> None:
    assert validate_paths([ROOT / "exams" / "demo"], user_prompts=None, scale_dirs=SCALES) == []


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    problems = validate_paths([tmp_path / "nope.yaml", tmp_path], user_prompts=None, scale_dirs=[])
    assert [p.message for p in problems] == ["no such file or folder", "no exam files (*.yaml) found"]


def test_unknown_scale_is_reported_at_its_line(tmp_path: Path) -> None:
    text = (FIXTURES / "bad_answer.yaml").read_text(encoding="utf-8").replace("answer: E", "answer: B")
    exam = tmp_path / "exam.yaml"
    exam.write_text(text.replace("# <- problem", "") + "scoring:\n  scale: no_such_scale\n", encoding="utf-8")
    problems = validate_paths([exam], user_prompts=None, scale_dirs=SCALES)
    assert len(problems) == 1
    line = len(exam.read_text(encoding="utf-8").splitlines())
    assert str(problems[0]).startswith(f"{exam}:{line}: scoring.scale: ")
    assert "no_such_scale" in problems[0].message


def test_known_scale_passes(tmp_path: Path) -> None:
    text = (FIXTURES / "bad_answer.yaml").read_text(encoding="utf-8").replace("answer: E", "answer: B")
    exam = tmp_path / "exam.yaml"
    exam.write_text(text + "scoring:\n  scale: lsat\n", encoding="utf-8")
    assert validate_paths([exam], user_prompts=None, scale_dirs=SCALES) == []


@pytest.mark.parametrize(
    ("answer", "message"),
    [('""', "exemplar answer '' is not one of its options"),
     ("AB", "exemplar answer 'AB' is not one of its options")],
)
def test_exemplar_answer_must_be_one_letter(tmp_path: Path, answer: str, message: str) -> None:
    text = (FIXTURES / "bad_answer.yaml").read_text(encoding="utf-8").replace("answer: E", "answer: B")
    text = text.replace(
        "    items:\n",
        "    exemplars:\n      - question: Q?\n        options: [x, y]\n"
        f"        answer: {answer}\n        explanation: because\n    items:\n",
    )
    exam = tmp_path / "exam.yaml"
    exam.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_exam(exam)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith("answer: " + answer))
    assert str(err.value).startswith(f"{exam}:{line}: sections.0.exemplars.0.answer: {message}")


def test_every_problem_of_a_file_is_reported_in_one_pass(tmp_path: Path) -> None:
    """Field errors do not hide cross-item ones (duplicate ids, unknown passages)."""
    bad = tmp_path / "multi.yaml"
    bad.write_text(
        "id: t\ntitle: T\nsource: me\nlicense: MIT\nsections:\n  - id: s\n    kind: multiple_choice\n"
        "    items:\n"
        "      - {id: a1, type: mc, question: q, options: [x, y], answer: C}\n"
        "      - {id: a1, type: mc, question: q, options: [x, y], answer: A, colour: red}\n"
        "      - {id: a3, type: mc, question: q, options: [x, y], answer: A, passage: nope}\n"
    )
    with pytest.raises(InputError) as info:
        load_exam(bad)
    assert [str(p).split(": ", 1)[1] for p in info.value.problems] == [
        "sections.0.items.0.answer: answer 'C' is not one of the options A, B",
        "sections.0.items.1.colour: Extra inputs are not permitted",
        "sections.0.items.1.id: duplicate item id 'a1'",
        "sections.0.items.2.passage: unknown passage 'nope'",
    ]
    assert [p.line for p in info.value.problems] == [9, 10, 10, 11]
