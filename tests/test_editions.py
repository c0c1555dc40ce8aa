"""Scale editions (scales.py ``Scale.select``; scorecard.py; the --edition flags; every report).

The end-to-end tests run a real exam against the scripted server on 127.0.0.1 with the real
openai client, then score it in different editions of one scale.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from examharness.api import RunOptions, run_exams, score_run
from examharness.cli import main
from examharness.errors import InputError
from examharness.scales import Scale, list_scales, load_scale
from examharness.scoring import percentile_range
from examharness.testing import ScriptedServer

SCALES = Path(__file__).parents[1] / "exams" / "scales"

# A 10-point linear scale whose percentile table differs by edition (made up for the tests).
TWO_EDITIONS = """\
# Made up for examharness tests: one conversion, percentile tables of 2019 and 2023.
id: twoed
title: Two editions
source: made up (2023 table)
edition: 2023
edition_label: "2023 table"
raw_to_scaled: {kind: linear, intercept: 0, slope: 10, round_to: 1, min: 0, max: 10}
percentile:
  kind: table
  convention: below
  source: made up 2023
  rows: [[10, 90], [9, 80], [8, 70], [7, 60], [6, 50], [5, 40], [4, 30], [3, 20], [2, 10], [1, 5], [0, 0]]
editions:
  - edition: 2019
    label: "2019 table"
    source: made up (2019 table)
    percentile:
      kind: table
      convention: below
      source: made up 2019
      rows: [[10, 95], [9, 85], [8, 75], [7, 65], [6, 55], [5, 45], [4, 35], [3, 25], [2, 15], [1, 5], [0, 0]]
"""


def two_editions(folder: Path) -> Scale:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "twoed.yaml").write_text(TWO_EDITIONS)
    return load_scale("twoed", [folder])


@pytest.mark.parametrize(
    ("asked", "chosen", "noted"),
    [
        (None, 2023, False),   # default: the newest
        (2023, 2023, False),
        (2019, 2019, False),
        (2021, 2019, True),    # no 2021 edition: the newest one before it
        (2030, 2023, True),
        (2010, 2019, True),    # older than every edition: the oldest, noted
    ],
)
def test_select_picks_edition(tmp_path: Path, asked: int | None, chosen: int, noted: bool) -> None:
    scale, note = two_editions(tmp_path).select(asked)
    assert scale.edition == chosen and scale.editions == []
    assert (note is not None) == noted
    if noted:
        assert note is not None and f"no edition {asked}" in note and f"used {chosen}" in note
    low_at_9 = {2023: 80, 2019: 85}[chosen]
    assert percentile_range(scale, 9).low == low_at_9


def test_selected_edition_inherits_the_conversion_and_cites_both(tmp_path: Path) -> None:
    base = two_editions(tmp_path)
    old, _ = base.select(2019)
    assert old.raw_to_scaled == base.raw_to_scaled
    assert old.edition_label == "2019 table"
    assert old.source.startswith("made up (2019 table)") and "made up (2023 table)" in old.source


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("editions:\n  - {edition: 2019, label: x, source: s}\n",
         "editions: a scale with other editions must name its own (top-level edition: YEAR)"),
        ("edition: 2023\neditions:\n  - {edition: 2023, label: x, source: s}\n",
         "editions.0.edition: edition 2023 is listed twice"),
        ("edition: 2023\neditions:\n  - {edition: 2019, source: s}\n", "editions.0.label: Field required"),
        ("edition: 23\n", "edition: Input should be greater than or equal to 1900"),
    ],
)
def test_bad_editions_name_file_line_and_field(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: bad\ntitle: Bad\nsource: s\n"
                    "raw_to_scaled: {kind: linear, intercept: 0, slope: 1, round_to: 1, min: 0, max: 1}\n"
                    + textwrap.dedent(body))
    with pytest.raises(InputError) as info:
        load_scale(path, [])
    lines = [str(p) for p in info.value.problems]
    assert len(lines) == 1 and lines[0].startswith(f"{path}:") and expected in lines[0], lines


def test_every_shipped_scale_names_its_editions() -> None:
    for name in list_scales(SCALES):
        scale = load_scale(name, [SCALES])
        assert scale.edition is not None and scale.edition_label, name
        newest, note = scale.select(None)
        assert newest.edition == max(scale.edition_years()) and note is None


# ---- end to end: run, score, report, chart in editions ------------------------------------


def _exam(tmp_path: Path, edition: int | None = None) -> Path:
    items = [{"id": f"q{i}", "type": "mc", "question": f"Question zq{i}zq?",
              "options": ["w", "x", "y", "z"], "answer": "A"} for i in range(10)]
    scoring: dict[str, Any] = {"scale": "twoed"}
    if edition is not None:
        scoring["edition"] = edition
    doc = {"id": "ed", "title": "Editions", "source": "written for this test", "license": "Apache-2.0",
           "sections": [{"id": "mc", "kind": "multiple_choice", "sampling": {"mode": "single"},
                         "items": items}],
           "scoring": scoring}  # fmt: skip
    two_editions(tmp_path / "exams" / "scales")
    path = tmp_path / "exams" / "ed.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _reply(request: dict[str, Any]) -> str:
    i = int(re.search(r"zq(\d+)zq", request["messages"][-1]["content"]).group(1))  # type: ignore[union-attr]
    return "The answer is [A]" if i < 9 else "The answer is [B]"  # 9 of 10 right -> scaled 9


def _run(tmp_path: Path, exam: Path, **kw: Any) -> Path:
    with ScriptedServer(responder=_reply) as srv:
        run_dir, _ = run_exams(RunOptions(
            paths=[exam], model="scripted", base_url=srv.base_url, out=tmp_path / "results",
            cache_path=tmp_path / "cache.sqlite", **kw))  # fmt: skip
    return run_dir


def test_run_scores_in_newest_edition_and_score_edition_overrides(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, _exam(tmp_path))
    e = score_run(run_dir, n_boot=0).exams[0]
    assert e.scaled == 9 and e.edition is not None and e.edition.year == 2023
    assert e.percentile is not None and e.percentile.low == 80
    old = score_run(run_dir, n_boot=0, edition=2019).exams[0]
    assert old.edition is not None and old.edition.year == 2019 and old.edition.label == "2019 table"
    assert old.percentile is not None and old.percentile.low == 85
    assert old.approximation is None
    odd = score_run(run_dir, n_boot=0, edition=2021).exams[0]
    assert odd.edition is not None and odd.edition.year == 2019
    assert odd.approximation is not None and "no edition 2021" in odd.approximation


def test_exam_file_picks_edition_and_run_flag_wins_and_sticks(tmp_path: Path) -> None:
    exam = _exam(tmp_path, edition=2019)
    run_dir = _run(tmp_path, exam)
    assert score_run(run_dir, n_boot=0).exams[0].edition.year == 2019  # type: ignore[union-attr]
    flagged = _run(tmp_path, exam, edition=2023)
    assert json.loads((flagged / "run.json").read_text())["edition"] == 2023
    assert score_run(flagged, n_boot=0).exams[0].edition.year == 2023  # type: ignore[union-attr]


def test_every_report_names_the_edition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _run(tmp_path, _exam(tmp_path))
    assert main(["score", str(run_dir), "--bootstrap", "0"]) == 0
    capsys.readouterr()
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "ed: scale twoed, edition 2023 (2023 table); source: made up (2023 table)" in out
    assert main(["report", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exams"][0]["edition"]["year"] == 2023
    before = (run_dir / "scores.json").read_text()
    assert main(["report", str(run_dir), "--json", "--edition", "2019"]) == 0
    rescored = json.loads(capsys.readouterr().out)["exams"][0]
    assert rescored["edition"]["year"] == 2019 and rescored["percentile"]["low"] == 85
    assert (run_dir / "scores.json").read_text() == before, "report --edition must not rewrite the run"
    html = tmp_path / "r.html"
    assert main(["report", str(run_dir), "--html", str(html), "--edition", "2019"]) == 0
    capsys.readouterr()
    page = html.read_text()
    assert "twoed 2019" in page and "Scale editions used: twoed 2019." in page
    assert main(["chart", str(run_dir), "--json"]) == 0
    chart = json.loads(capsys.readouterr().out)
    assert "Scale editions used: twoed 2023." in chart["notes"]


def test_bad_edition_flag_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "nowhere", "--edition", "twenty"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--edition" in err[0] and "invalid int value" in err[0]
