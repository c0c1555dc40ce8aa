"""``examharness translate``, ``import mmmlu`` and ``chart --languages`` end to end.

A scripted loopback translator (a marked dictionary translation, :mod:`examharness.testing.translator`)
translates through the real CLI and the real ``openai`` client; misbehaving units are caught one by
one; a translated exam run against a loopback model with known answers gives exact per-language
counts, and the language chart's data equal them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from examharness.exam import load_exam
from examharness.testing import ScriptedServer, last_user_message
from examharness.testing.translator import BREAKS, dictionary_translator, marked_translation
from examharness.translate.protect import Broken, check_kept, mask, unmask

WORDS = {"what": "qué", "is": "es", "which": "cuál", "answer": "respuesta"}

EXAM: dict[str, Any] = {
    "id": "tiny",
    "title": "Tiny exam",
    "source": "written for the tests",
    "license": "Apache-2.0",
    "passages": {"p1": {"text": "The table lists 12 apples and 30 pears."}},
    "sections": [
        {
            "id": "mc",
            "kind": "multiple_choice",
            "template": "mmlu_kshot",
            "instruction": "The following are multiple choice questions (with answers) about fruit.",
            "sampling": {"mode": "single", "temperature": 0, "max_tokens": 5},
            "exemplars": [
                {
                    "question": "What is 2 + 2?",
                    "options": ["3", "4", "5", "6"],
                    "answer": "B",
                    "explanation": "",
                }
            ],
            "items": [
                {
                    "id": "q1",
                    "type": "mc",
                    "question": "What is $x^2$ when x = 3?",
                    "options": ["6", "9", "12", "3"],
                    "answer": "B",
                },
                {
                    "id": "q2",
                    "type": "mc",
                    "passage": "p1",
                    "question": "Which fruit is more common?",
                    "options": ["apples", "pears"],
                    "answer": "B",
                },
                {
                    "id": "q3",
                    "type": "mc",
                    "question": "What does `len('ab')` return? Answer: a number.",
                    "options": ["1", "2", "3", "0"],
                    "answer": "B",
                },
                {"id": "q4", "type": "numeric", "question": "What is 7 times 6?", "answer": ["42"]},
            ],
        }
    ],
}


def write_exam(folder: Path, data: dict[str, Any] = EXAM) -> Path:
    path = folder / f"{data['id']}.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("# written by the tests\n" + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def cli(*args: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return subprocess.run(
        [sys.executable, "-m", "examharness.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("What is $x^2$ when x = 3?", ["$x^2$"]),
        (
            "Compute $$\\int_0^1 x\\,dx$$ and \\(a+b\\) and \\[c\\]",
            ["$$\\int_0^1 x\\,dx$$", "\\(a+b\\)", "\\[c\\]"],
        ),
        ("Run `f(x)` then ```\nprint(1)\n```", ["`f(x)`", "```\nprint(1)\n```"]),
        ("Answer: B costs $5 and $6", ["Answer:", "$5 and $"]),
        ("plain text, 3 apples", []),
    ],
)
def test_mask_round_trip(text: str, kept: list[str]) -> None:
    m = mask(text, start=2)
    assert list(m.spans) == kept
    assert all(span not in m.text for span in kept)
    assert unmask(m.text, m.spans, start=2) == text


def test_unmask_and_number_checks_catch_breakage() -> None:
    m = mask("Is $a$ or $b$ larger?")
    with pytest.raises(Broken, match="missing"):
        unmask(m.text.replace("⟦1⟧", ""), m.spans)
    with pytest.raises(Broken, match="repeated"):
        unmask(m.text + " ⟦0⟧", m.spans)
    with pytest.raises(Broken, match="numbers"):
        check_kept("Train at 9:40, 3.5 km", "Tren a las 9:40, 3,5 km", ())
    check_kept("Train at 9:40, 3.5 km", "Tren a las 9:40 con 3.5 km", ())
    with pytest.raises(Broken, match="glossary"):
        check_kept("Ask the Federal Reserve", "Pregunta a la Reserva Federal", ("Federal Reserve",))


def test_translate_round_trip_through_the_cli(tmp_path: Path) -> None:
    source = write_exam(tmp_path / "exams")
    with ScriptedServer(responder=dictionary_translator(WORDS)) as srv:
        proc = cli(
            "translate",
            str(source),
            "--to",
            "es,fr",
            "--model",
            "translator",
            "--base-url",
            srv.base_url,
            "--out",
            str(tmp_path / "out"),
            tmp_path=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        n_requests = len(srv.requests)
    assert n_requests == 2 * 7  # per language: instruction, passage, exemplar, four items
    for lang in ("es", "fr"):
        loaded = load_exam(tmp_path / "out" / f"tiny-{lang}.yaml")  # validates like any exam
        exam = loaded.exam
        assert exam.id == f"tiny-{lang}" and exam.language == lang
        info = exam.translation
        assert info is not None and info.translator == "translator" and info.language == lang
        assert info.source_hash == load_exam(source).content_hash and info.dropped == []
        items = {i.id: i for _, i in exam.items()}
        q1, q3 = items["q1"], items["q3"]
        assert q1.question == marked_translation("What is ⟦0⟧ when x = 3?", lang, WORDS).replace(
            "⟦0⟧", "$x^2$"
        )
        assert "`len('ab')`" in q3.question and "Answer:" in q3.question  # type: ignore[union-attr]
        assert q1.options == [f"«{lang}» {o}" for o in ("6", "9", "12", "3")]  # type: ignore[union-attr]
        assert q1.answer == "B"  # type: ignore[union-attr]
        assert exam.passages["p1"].text.startswith(f"«{lang}» ") and "12" in exam.passages["p1"].text
        section = exam.sections[0]
        assert section.instruction is not None and section.instruction.startswith(f"«{lang}»")
        assert section.exemplars[0].question == f"«{lang}» qué es 2 + 2?"
    rendered = cli("render", str(tmp_path / "out" / "tiny-es.yaml"), "--item", "q1", tmp_path=tmp_path)
    assert rendered.returncode == 0 and rendered.stdout.rstrip().endswith("Answer:")
    assert "A. «es» 6" in rendered.stdout  # letters and "Answer:" stay English


def test_every_broken_unit_is_caught_and_the_rest_kept(tmp_path: Path) -> None:
    items = [
        {
            "id": f"b{k}",
            "type": "mc",
            "question": f"Question {kind} number {k}: is $y$ {k + 10}?",
            "options": [f"yes {kind}", f"no {kind}", "maybe"],
            "answer": "A",
        }
        for k, kind in enumerate(BREAKS)
    ]
    items.append(
        {"id": "good", "type": "mc", "question": "A fine question?", "options": ["x", "y"], "answer": "B"}
    )
    data = EXAM | {"id": "breaks", "passages": {}, "sections": [EXAM["sections"][0] | {"items": items}]}
    source = write_exam(tmp_path / "exams", data)
    breaks = {f"Question {kind} ": kind for kind in BREAKS}
    with ScriptedServer(responder=dictionary_translator(WORDS, breaks)) as srv:
        proc = cli(
            "translate",
            str(source),
            "--to",
            "de",
            "--model",
            "t",
            "--base-url",
            srv.base_url,
            "--max-attempts",
            "1",
            tmp_path=tmp_path,
        )
    assert proc.returncode == 0, proc.stderr
    exam = load_exam(tmp_path / "exams" / "breaks-de.yaml").exam
    assert [i.id for _, i in exam.items()] == ["good"]
    assert exam.translation is not None and exam.translation.dropped == [f"b{k}" for k in range(len(BREAKS))]
    reported = [line for line in proc.stderr.splitlines() if "not translated into de" in line]
    assert len(reported) == len(BREAKS)
    for k, kind in enumerate(BREAKS):
        assert any(f": b{k}: " in line for line in reported), kind


def test_failed_requests_resume_without_resending_finished_units(tmp_path: Path) -> None:
    source = write_exam(tmp_path / "exams")
    cache = ["--no-cache"]
    failing = dictionary_translator(WORDS)

    def flaky(request: dict[str, Any]) -> str:
        if "7 times 6" in last_user_message(request):
            raise LookupError("scripted failure")  # the server answers 500
        return failing(request)

    args = ["--to", "es", "--model", "t", "--max-attempts", "1", *cache]
    with ScriptedServer(responder=flaky) as srv:
        first = cli("translate", str(source), "--base-url", srv.base_url, *args, tmp_path=tmp_path)
    assert first.returncode == 3, first.stderr
    assert "run the same command again" in first.stderr
    assert not (tmp_path / "exams" / "tiny-es.yaml").exists()
    assert (tmp_path / "exams" / "tiny-es.yaml.parts.jsonl").exists()
    with ScriptedServer(responder=dictionary_translator(WORDS)) as srv:
        second = cli("translate", str(source), "--base-url", srv.base_url, *args, tmp_path=tmp_path)
        assert second.returncode == 0, second.stderr
        assert len(srv.requests) == 1  # only the unit that failed
    assert not (tmp_path / "exams" / "tiny-es.yaml.parts.jsonl").exists()
    assert load_exam(tmp_path / "exams" / "tiny-es.yaml").exam.translation is not None
    refused = cli("translate", str(source), "--base-url", "http://127.0.0.1:9", *args, tmp_path=tmp_path)
    assert refused.returncode == 1 and "pass --force" in refused.stderr


def test_cached_translation_costs_no_request(tmp_path: Path) -> None:
    source = write_exam(tmp_path / "exams")
    cache = ["--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "o"), "--force"]
    with ScriptedServer(responder=dictionary_translator(WORDS)) as srv:
        assert (
            cli(
                "translate",
                str(source),
                "--to",
                "es",
                "--model",
                "t",
                "--base-url",
                srv.base_url,
                *cache,
                tmp_path=tmp_path,
            ).returncode
            == 0
        )
        n = len(srv.requests)
        again = cli(
            "translate",
            str(source),
            "--to",
            "es",
            "--model",
            "t",
            "--base-url",
            srv.base_url,
            *cache,
            tmp_path=tmp_path,
        )
        assert again.returncode == 0 and len(srv.requests) == n and "7 from cache" in again.stdout


def write_mmmlu(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """Rows of (question, answer letter, subject), with the published files' unnamed index column."""
    lines = [",Question,A,B,C,D,Answer,Subject"]
    for k, (question, answer, subject) in enumerate(rows):
        lines.append(f'{k},"{question}",uno,dos,tres,cuatro,{answer},{subject}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_import_mmmlu(tmp_path: Path) -> None:
    csv_file = tmp_path / "mmlu_ES_LA.csv"
    write_mmmlu(
        csv_file,
        [
            ("P1, con coma", "A", "anatomy"),
            ("P2", "B", "anatomy"),
            ("P3", "C", "virology"),
            ("P4", "D", "anatomy"),
        ],
    )
    out = tmp_path / "es.yaml"
    proc = cli("import", "mmmlu", str(csv_file), "--out", str(out), "--shots", "1", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    exam = load_exam(out).exam
    assert exam.language == "es-LA" and exam.id == "mmmlu-es-LA"
    assert [(s.id, [i.id for i in s.items], len(s.exemplars)) for s in exam.sections] == [
        ("anatomy", ["mmmlu-es-LA-3", "mmmlu-es-LA-5"], 1)
    ]  # virology has one row: it became the exemplar, and a section needs items
    assert exam.sections[0].exemplars[0].question == "P1, con coma"  # type: ignore[union-attr]
    bad = tmp_path / "mmlu_FR_FR.csv"
    write_mmmlu(bad, [("Q", "E", "law")])
    proc = cli("import", "mmmlu", str(bad), "--out", str(tmp_path / "fr.yaml"), tmp_path=tmp_path)
    assert (
        proc.returncode == 1
        and proc.stderr.startswith(f"{bad}:2: Answer:")
        and "Traceback" not in proc.stderr
    )
    empty = tmp_path / "none.csv"
    empty.write_text("", encoding="utf-8")
    proc = cli(
        "import",
        "mmmlu",
        str(empty),
        "--language",
        "de",
        "--out",
        str(tmp_path / "x.yaml"),
        tmp_path=tmp_path,
    )
    assert proc.returncode == 1 and "header" in proc.stderr


def test_language_variants_run_with_exact_counts_and_chart(tmp_path: Path) -> None:
    """es: 3 of 4 right; fr: 1 of 4 right (the scripted model answers by question marker)."""
    answers = "ABCD"
    rows = [(f"QM{k} question", answers[k], "anatomy") for k in range(4)]
    folder = tmp_path / "exams"
    folder.mkdir()
    for lang in ("es", "fr"):
        write_mmmlu(tmp_path / f"mmlu_{lang.upper()}.csv", [(f"{lang}-{q}", a, s) for q, a, s in rows])
        proc = cli(
            "import",
            "mmmlu",
            str(tmp_path / f"mmlu_{lang.upper()}.csv"),
            "--out",
            str(folder / f"{lang}.yaml"),
            tmp_path=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
    right = {"es": {0, 1, 2}, "fr": {3}}
    key = {
        f"{lang}-QM{k} question": answers[k] if k in right[lang] else answers[(k + 1) % 4]
        for lang in ("es", "fr")
        for k in range(4)
    }

    def respond(request: dict[str, Any]) -> str:
        text = last_user_message(request)
        hits = [needle for needle in key if needle in text.rsplit("Answer:", 2)[-2]]
        return f" {key[hits[0]]}"

    with ScriptedServer(responder=respond) as srv:
        proc = cli(
            "run",
            str(folder),
            "--model",
            "m",
            "--base-url",
            srv.base_url,
            "--out",
            str(tmp_path / "r"),
            "--no-cache",
            tmp_path=tmp_path,
        )
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    report = json.loads(cli("report", str(run_dir), "--json", tmp_path=tmp_path).stdout)
    by_lang = {row["language"]: row for row in report["languages"]}
    assert by_lang["es"]["accuracy"] == pytest.approx(75.0) and by_lang["fr"]["accuracy"] == pytest.approx(
        25.0
    )
    assert by_lang["es"]["items"] == 4
    text = cli("report", str(run_dir), tmp_path=tmp_path).stdout
    assert "accuracy by language" in text and "Spanish (es)" in text
    png = tmp_path / "fig5.png"
    chart = cli(
        "chart",
        "--languages",
        str(run_dir),
        "--published",
        "gpt-4-technical-report",
        "--out",
        str(png),
        "--json",
        tmp_path=tmp_path,
    )
    assert chart.returncode == 0, chart.stderr
    data = json.loads(chart.stdout)
    mine = {s["language"]: s["accuracy"] for s in data["series"][0]["scores"]}
    assert mine == {"es": pytest.approx(75.0), "fr": pytest.approx(25.0)}
    gpt4 = {s["language"]: s["accuracy"] for s in data["series"][1]["scores"]}
    assert gpt4["es"] == 84.0 and gpt4["te"] == 62.0 and len(gpt4) == 27
    assert {b["label"]: b["accuracy"] for b in data["baselines"]}["GPT-3.5 (English)"] == 70.1
    assert data["languages"] == ["fr", "es"]  # the run's languages, lowest accuracy at the bottom
    assert png.stat().st_size > 10_000
    published = json.loads(cli("chart", "--languages", "--json", tmp_path=tmp_path).stdout)
    assert len(published["languages"]) == 27 and published["languages"][-1] == "en"
    assert published["languages"][0] == "te"
    nothing = cli(
        "chart", "--languages", "--published", str(tmp_path / "missing.json"), "--json", tmp_path=tmp_path
    )
    assert nothing.returncode == 1 and "Traceback" not in nothing.stderr
