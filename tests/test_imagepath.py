"""``{{ image(path) }}`` reads only inside the exam's folder or a prompts folder."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from examharness.cli import main
from examharness.errors import InputError
from examharness.exam import load_exam
from examharness.prompts import Renderer

ROOT = Path(__file__).resolve().parents[1]
PNG = (ROOT / "exams" / "demo" / "images" / "books.png").read_bytes()
EXAM = """\
id: pictures
title: Pictures
source: written for the examharness tests
license: Apache-2.0
sections:
  - id: s
    kind: multiple_choice
    template: peek
    items:
      - {id: q1, type: mc, question: Which?, options: [a, b], answer: A}
"""


def _exam_with_template(tmp_path: Path, call: str) -> tuple[Path, Path]:
    """An exam in ``tmp_path/exam`` whose own ``prompts/peek.j2`` calls ``call`` on line 2."""
    folder = tmp_path / "exam"
    (folder / "prompts").mkdir(parents=True)
    exam = folder / "exam.yaml"
    exam.write_text(EXAM, encoding="utf-8")
    template = folder / "prompts" / "peek.j2"
    template.write_text(f"{{{{ item.question }}}}\n{call}\n", encoding="utf-8")
    return exam, template


@pytest.mark.parametrize(
    "call",
    ["{{ image('/etc/hostname') }}", "{{ image('../secret.png') }}",
     "{{ image('prompts/../../secret.png') }}", "{{ image('link.png') }}", "{{ image('a\\x00b.png') }}"],
)
def test_image_outside_the_exam_and_prompts_is_refused_by_validate(
    call: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "secret.png").write_bytes(b"not for the model")
    exam, template = _exam_with_template(tmp_path, call)
    (exam.parent / "link.png").symlink_to(tmp_path / "secret.png")
    assert main(["validate", str(exam)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{template}:2: template: unsafe template: image path "), lines[0]
    assert err == ""


def test_image_outside_is_refused_at_render_before_any_read(tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(b"not for the model")
    exam, template = _exam_with_template(tmp_path, "{{ image('../secret.png') }}")
    loaded = load_exam(exam)
    for vision in (True, False):
        with pytest.raises(InputError) as info:
            Renderer(vision=vision).render(loaded, loaded.exam.sections[0], 0)
        assert str(info.value).startswith(f"{template}:2: template: unsafe template: ")


def test_images_inside_the_exam_and_prompts_folders_are_embedded(tmp_path: Path) -> None:
    exam, _ = _exam_with_template(tmp_path, "{{ image('pics/one.png') }}{{ image('prompts/logo.png') }}")
    (exam.parent / "pics").mkdir()
    (exam.parent / "pics" / "one.png").write_bytes(PNG)
    shutil.copy(exam.parent / "pics" / "one.png", exam.parent / "prompts" / "logo.png")
    loaded = load_exam(exam)
    content = Renderer(vision=True).render(loaded, loaded.exam.sections[0], 0)[0]["content"]
    urls = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
    assert [base64.b64decode(url.split(",", 1)[1]) for url in urls] == [PNG, PNG]
