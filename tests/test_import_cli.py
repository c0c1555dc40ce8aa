"""``examharness import``: hostile or careless input is one line and exit 1, never a traceback,
and an existing exam file is only replaced with ``--force``."""

from __future__ import annotations

from pathlib import Path

import pytest

from examharness.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
AGIEVAL = FIXTURES / "agieval" / "good.jsonl"
MMLU_DEV, MMLU_TEST = FIXTURES / "mmlu" / "tiny_dev.csv", FIXTURES / "mmlu" / "tiny_test.csv"


def _mmlu(out: Path, *extra: str, dev: Path = MMLU_DEV, test: Path = MMLU_TEST) -> list[str]:
    files = ["--dev", str(dev), "--test", str(test)]
    return ["import", "mmlu", *files, "--out", str(out), "--shots", "2", *extra]


def _agieval(out: Path, *extra: str, file: Path = AGIEVAL) -> list[str]:
    return ["import", "agieval", str(file), "--out", str(out), *extra]


def _one_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["mmlu", "agieval"])
def test_empty_input_file(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "empty_test.csv" if kind == "mmlu" else "empty.jsonl"
    empty = _write(tmp_path / name, "" if kind == "mmlu" else "\n\n")
    out = tmp_path / "x.yaml"
    argv = _mmlu(out, test=empty) if kind == "mmlu" else _agieval(out, file=empty)
    assert _one_error(argv, capsys) == f"{empty}: (file): no items: the file has no (good) rows"
    assert not (tmp_path / "x.yaml").exists()


def test_deeply_nested_json_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = _write(tmp_path / "nested.jsonl", "[" * 100_000 + "]" * 100_000 + "\n")
    line = _one_error(_agieval(tmp_path / "x.yaml", file=bomb), capsys)
    assert line == f"{bomb}:1: (row): invalid JSON: nested too deeply"


@pytest.mark.parametrize("exam_id", ["../x", "a/b", "", ".hidden", "x y"])
def test_bad_exam_id(exam_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mmmlu = _write(tmp_path / "mmlu_FR_FR.csv", ",Question,A,B,C,D,Answer,Subject\n0,Q?,a,b,c,d,A,math\n")
    out = tmp_path / "x.yaml"
    mmmlu_argv = ["import", "mmmlu", str(mmmlu), "--out", str(out), "--id", exam_id]
    for argv in (_mmlu(out, "--id", exam_id), _agieval(out, "--id", exam_id), mmmlu_argv):
        assert _one_error(argv, capsys).startswith("command line: --id: exam id "), exam_id
    assert not out.exists()


def test_file_name_that_is_no_exam_id_asks_for_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    odd = _write(tmp_path / "my task.jsonl", AGIEVAL.read_text(encoding="utf-8"))
    assert _one_error(_agieval(tmp_path / "x.yaml", file=odd), capsys).startswith(f"{odd}: (file name): ")
    assert main(_agieval(tmp_path / "x.yaml", "--id", "my-task", file=odd)) == 0


def test_out_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_error(_mmlu(tmp_path), capsys)
    assert line == f"command line: --out: {tmp_path} is a folder; give the exam file to write"


def test_out_is_not_overwritten_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _write(tmp_path / "exam.yaml", "# edited by hand\n")
    for argv in (_mmlu(out), _agieval(out)):
        assert _one_error(argv, capsys) == f"command line: --out: {out} exists; use --force to overwrite it"
    assert out.read_text(encoding="utf-8") == "# edited by hand\n"
    assert main(_agieval(out, "--force")) == 0
    assert "agieval" in out.read_text(encoding="utf-8")


def test_unwritable_out_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = _write(tmp_path / "file", "")
    out = blocker / "exam.yaml"
    assert _one_error(_agieval(out), capsys).startswith(f"{out}: --out: cannot write: ")
