"""Family files: compute in FLOPs or as 6·N·D (recorded as such), and bad files as FILE:LINE lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from examharness.cli import main
from examharness.errors import InputError
from examharness.family import load_family, recorded_members

GOOD = """\
# Written for the tests.
name: tiny
members:
  - name: small
    label: "1/100"
    compute: {flops: 1.0e+20}
    backend: {base_url: "http://127.0.0.1:9/v1", model: small, api_key_env: SMALL_KEY}
  - name: big
    compute: {parameters: 1.0e+9, tokens: 2.0e+10}
    backend: {base_url: "http://127.0.0.1:9/v1", model: big}
  - name: embedded
    compute: {flops: 1e18}
    backend: {}
"""


def test_compute_is_resolved_and_recorded_with_its_method(tmp_path: Path) -> None:
    path = tmp_path / "family.yaml"
    path.write_text(GOOD, encoding="utf-8")
    members = {m.name: m for m in recorded_members(load_family(path))}
    assert members["small"].compute.flops == 1e20 and members["small"].compute.method == "flops"
    assert members["small"].api_key_env == "SMALL_KEY" and members["small"].label == "1/100"
    big = members["big"].compute
    assert (big.flops, big.method, big.parameters, big.tokens) == (6 * 1e9 * 2e10, "6ND", 1e9, 2e10)
    assert members["embedded"].model is None and members["embedded"].compute.flops == 1e18


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        (
            "compute: {flops: 1.0e+20}",
            "compute: {flops: 1.0e+20, tokens: 5}",
            6,
            "members.0.compute",
            "not both",
        ),
        (
            "compute: {parameters: 1.0e+9, tokens: 2.0e+10}",
            "compute: {parameters: 1.0e+9}",
            9,
            "members.1.compute",
            "both parameters and tokens",
        ),
        ("compute: {flops: 1e18}", "compute: {flops: -3}", 12, "members.2.compute.flops", "greater than 0"),
        ("  - name: big", "  - name: small", 8, "members.1.name", "used twice"),
        ("backend: {}", "backend: {base_url: 'http://x/v1'}", 13, "members.2.backend", "needs a model"),
        ('    label: "1/100"', '    lable: "1/100"', 5, "members.0.lable", "Extra inputs"),
    ],
)
def test_bad_family_files_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    path = tmp_path / "family.yaml"
    assert old in GOOD
    path.write_text(GOOD.replace(old, new), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_family(path)
    problem = err.value.problems[0]
    assert (problem.file, problem.line, problem.field) == (str(path), line, field)
    assert message in problem.message


def test_cli_reports_a_bad_family_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "family.yaml"
    path.write_text(GOOD.replace("name: tiny", "name: tiny family"), encoding="utf-8")
    text = tmp_path / "t.txt"
    text.write_text("hello world", encoding="utf-8")
    assert main(["loss", str(text), "--family", str(path), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{path}:2: name: ") and "pattern" in err[0]
