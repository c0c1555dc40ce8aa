"""Code items in exam files: fields, section kinds, one FILE:LINE line per problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from examharness.errors import InputError
from examharness.exam import CodeItem, load_exam

HEADER = "# Written for examharness's tests.\nid: code-exam\ntitle: Code\nsource: tests\nlicense: MIT\n"
ITEM = """      - id: add
        type: code
        prompt: "def add(a, b):"
        entry_point: add
        tests: "def check(candidate):\\n    assert candidate(1, 2) == 3\\n"
"""


def write(tmp_path: Path, kind: str, item: str = ITEM) -> Path:
    path = tmp_path / "exam.yaml"
    path.write_text(f"{HEADER}sections:\n  - id: s\n    kind: {kind}\n    items:\n{item}", encoding="utf-8")
    return path


def test_code_section_loads_with_defaults(tmp_path: Path) -> None:
    item = load_exam(write(tmp_path, "code")).exam.sections[0].items[0]
    assert isinstance(item, CodeItem)
    assert (item.language, item.time_limit_s, item.memory_mb, item.preamble) == ("python", 10.0, 512, "")


@pytest.mark.parametrize(
    ("kind", "item", "message"),
    [
        ("multiple_choice", ITEM, "sections.0.items.0.type: item 'add' of type 'code' cannot be in a"),
        ("code", ITEM.replace("entry_point: add", "entry_point: 'a; b'"), "sections.0.items.0.entry_point:"),
        ("code", ITEM + "        language: rust\n", "sections.0.items.0.language:"),
        ("code", ITEM + "        memory_mb: 1\n", "sections.0.items.0.memory_mb:"),
        ("code", ITEM.replace("        tests:", "        test:"), "sections.0.items.0"),
    ],
)
def test_bad_code_items_name_the_line(tmp_path: Path, kind: str, item: str, message: str) -> None:
    path = write(tmp_path, kind, item)
    with pytest.raises(InputError) as err:
        load_exam(path)
    assert message in str(err.value) and f"{path}:" in str(err.value)
    done = subprocess.run([sys.executable, "-m", "examharness", "validate", str(path)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
