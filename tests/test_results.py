"""The run folder (``results.RunFolder``): damaged, unknown-version and unwritable files give one
``FILE[:LINE]: ...`` line and exit 1 in every command that reads a run, and change nothing; a
resumed run sets damaged ``items.jsonl`` lines aside and asks their items again."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runs import NO_KEY_ENV, ExamSpec, answer_key, first_right, run_on, write_exam

from examharness import api
from examharness.cli import main
from examharness.errors import InputError
from examharness.jsonfiles import read_model
from examharness.records import RunConfig
from examharness.results import DAMAGED_ITEMS_FILE, RunFolder
from examharness.testing import ScriptedServer


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scored run (4 MC items, 1 free-response) whose server is gone: nothing can re-ask."""
    tmp = tmp_path_factory.mktemp("scored")
    exam = write_exam(tmp / "exams", ExamSpec("delta", "Delta Exam", n_mc=4, n_fr=1, scale=None))
    with ScriptedServer(responder=answer_key([exam], first_right("delta", 2)), model="m") as srv:
        return run_on(srv, tmp, [exam], "m")


@pytest.fixture
def run(scored: Path, tmp_path: Path) -> Path:
    """A private copy of the scored run, next to its exam file's folder (paths are absolute)."""
    return Path(shutil.copytree(scored, tmp_path / scored.name))


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.iterdir())}  # fmt: skip


def _replace_line(path: Path, n: int, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[n - 1] = new
    path.write_bytes(b"\n".join(lines))


def _set_version(path: Path) -> None:
    data = json.loads(path.read_text())
    data["schema_version"] = 99
    path.write_text(json.dumps(data))


Damage = Callable[[Path], None]
DAMAGES: dict[str, tuple[Damage, str, str]] = {
    # name: (how, the "FILE[:LINE]:" prefix the message starts with, what it says)
    "items garbage line": (lambda r: _replace_line(r / "items.jsonl", 2, b'{"exam_id": "delta", "ite'),
                           "items.jsonl:2:", "not valid JSON"),
    "items invalid utf-8": (lambda r: _replace_line(r / "items.jsonl", 3, b'{"exam_id": "\xff\xfe"}'),
                            "items.jsonl:3:", "not UTF-8"),
    "items unknown version": (lambda r: _replace_line(r / "items.jsonl", 1, b'{"schema_version": 2}'),
                              "items.jsonl:1: schema_version:", "unknown schema_version 2"),
    "grades bad line": (lambda r: _replace_line(r / "grades.jsonl", 1, b'{"exam_id": 5}'),
                        "grades.jsonl:1:", "exam_id"),
    "run.json empty": (lambda r: (r / "run.json").write_bytes(b""), "run.json:", "empty file"),
    "run.json truncated": (lambda r: (r / "run.json").write_bytes((r / "run.json").read_bytes()[:200]),
                           "run.json:", "not valid JSON"),
    "run.json unknown version": (lambda r: _set_version(r / "run.json"), "run.json: schema_version:",
                                 "unknown schema_version 99: this examharness reads version 1"),
    "scores garbage": (lambda r: (r / "scores.json").write_bytes(b"\x00garbage{"), "scores.json:",
                       "not valid JSON"),
    "scores unknown version": (lambda r: _set_version(r / "scores.json"), "scores.json: schema_version:",
                               "unknown schema_version 99"),
}  # fmt: skip

Command = Callable[[Path, Path], list[str]]
COMMANDS: dict[str, Command] = {
    "score": lambda r, tmp: ["score", str(r), "--bootstrap", "0"],
    "report": lambda r, tmp: ["report", str(r)],
    "report --html": lambda r, tmp: ["report", str(r), "--html", str(tmp / "r.html")],
    "chart": lambda r, tmp: ["chart", str(r), "--json"],
    "compare": lambda r, tmp: ["compare", str(r), str(r)],
    "grade export": lambda r, tmp: ["grade", "export", str(r), "--out", str(tmp / "g.csv")],
    "grade import": lambda r, tmp: ["grade", "import", str(r), str(tmp / "blank.csv")],
    "run --resume": lambda r, tmp: ["run", "--resume", str(r), "--no-score", "--api-key-env", NO_KEY_ENV],
}
READS: dict[str, set[str]] = {
    # which commands read which damaged file (and so must refuse it)
    "items": {"score", "report --html", "grade export"},
    "grades": {"score", "report --html", "compare", "grade export"},
    "run.json": {"score", "report --html", "compare", "grade export", "grade import", "run --resume"},
    "scores": {"report", "report --html", "chart", "compare"},
}
CASES = [(d, c) for d in DAMAGES for c in sorted(READS[d.split()[0]])]


@pytest.mark.parametrize(("damage", "command"), CASES, ids=[f"{d}-{c}" for d, c in CASES])
def test_damaged_file_is_one_line_and_changes_nothing(
    run: Path, tmp_path: Path, damage: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    how, prefix, what = DAMAGES[damage]
    how(run)
    (tmp_path / "blank.csv").write_text("exam_id,item_id,points\n")
    before = _snapshot(run)
    capsys.readouterr()
    assert main(COMMANDS[command](run, tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"{run / prefix.split(':')[0]}:") and prefix.split(":", 1)[1] in err, err
    assert what in err, err
    assert _snapshot(run) == before


def test_torn_last_items_line_is_a_killed_run_not_damage(run: Path) -> None:
    """A killed writer's unfinished last line: the item counts as not run, nothing is refused."""
    items = run / "items.jsonl"
    items.write_bytes(items.read_bytes() + b'{"exam_id": "delta", "item_id": "q9", "sta')
    assert len(RunFolder.open(run).read_items()) == 5
    assert api.score_run(run, n_boot=0).exams[0].items.total == 5


def test_not_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = str(tmp_path)
    for args in (["score", where], ["report", where], ["compare", where, where]):
        assert main(args) == 1
        assert capsys.readouterr().err == f"{tmp_path}: run: not a run folder (no run.json)\n"


def test_unwritable_run_folder_is_one_line(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Something in the way of the atomic write (a directory where the temporary file goes) stands
    in for a read-only folder, which the tests' root user could write anyway."""
    (run / "grades.jsonl.tmp").mkdir()
    before = _snapshot(run)
    assert main(["score", str(run), "--bootstrap", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{run / 'grades.jsonl'}: (file): cannot write:") and err.count("\n") == 1, err
    assert _snapshot(run) == before


def test_unwritable_outputs_are_one_line(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for args in (["report", str(run), "--html", str(blocker / "r.html")],
                 ["grade", "export", str(run), "--all", "--out", str(blocker / "g.csv")]):  # fmt: skip
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"{blocker / ''}") and "cannot write" in err and err.count("\n") == 1, err


def test_unknown_version_names_the_file(run: Path) -> None:
    _set_version(run / "run.json")
    with pytest.raises(InputError, match=r"run\.json: schema_version: unknown schema_version 99"):
        read_model(run / "run.json", RunConfig)


@pytest.fixture
def served_run(tmp_path: Path) -> Iterator[tuple[ScriptedServer, Path]]:
    exam = write_exam(tmp_path / "exams", ExamSpec("eps", "Eps Exam", n_mc=4, scale=None))
    with ScriptedServer(responder=answer_key([exam], first_right("eps", 4)), model="m") as srv:
        yield srv, run_on(srv, tmp_path, [exam], "m")


def test_resume_sets_damaged_lines_aside_and_asks_again(served_run: tuple[ScriptedServer, Path]) -> None:
    srv, run = served_run
    items = run / "items.jsonl"
    lost = json.loads(items.read_bytes().split(b"\n")[1])["item_id"]
    _replace_line(items, 2, b"garbage \xff")
    with pytest.raises(InputError, match=r"items\.jsonl:2: .*run --resume"):
        api.score_run(run, n_boot=0)
    sent = len(srv.requests)
    warnings: list[str] = []
    opts = api.RunOptions(resume=run, api_key_env=NO_KEY_ENV, max_attempts=1, use_cache=False)
    api.run_exams(opts, warn=warnings.append)
    assert len(warnings) == 1 and warnings[0].startswith(f"{items}:2: ") and "asked again" in warnings[0]
    assert (run / DAMAGED_ITEMS_FILE).read_bytes() == b"garbage \xff\n"
    asked = [r for r in srv.requests[sent:] if r.prompt_hash is not None]
    assert 1 <= len(asked) <= 2 and f"[[eps:{lost}]]" in (asked[0].last_user or "")
    scores = api.score_run(run, n_boot=0).exams[0]
    assert (scores.items.total, scores.items.correct) == (4, 4)
