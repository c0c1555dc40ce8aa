"""A scripted loopback family with known laws, end to end through the CLI and the real openai client.

One scripted server plays every member (replies depend on the request's ``model``):

* held-out loss: member m's tokens cost L(C_m) = a·C^b + c nats on average (times member noise);
* capability: each problem j has difficulty d_j (mean exactly 1), so member m's pass rate on it is
  exp(−α·C_m^(−k)·d_j) and −E_P[log pass rate] = α·C_m^(−k) (times member noise); with K samples
  seeded 0..K−1 the first round(p·K) samples answer correctly, so the measured pass rates are p
  to within 1/(2K).

``examharness scaling`` fitted on the six smaller members must recover a, b, c, α and k, and
predict the held-out member (100× the compute of the largest fitted one) inside its band.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import LETTERS, marker_of, write_mc_exam

from examharness.cli import main
from examharness.testing import ScriptedServer, per_token_loss_scorer

A, B, C_IRR = 150.0, -0.1, 1.8
ALPHA, K = 1.0 * 1e17**0.1, 0.1
COMPUTES = [1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e24]
SAMPLES = 10
PROBLEMS = 12


def true_loss(c: float) -> float:
    return A * c**B + C_IRR


def true_capability(c: float) -> float:
    return ALPHA * c ** (-K)


def names() -> list[str]:
    return [f"m{int(math.log10(c))}" for c in COMPUTES]


def write_family(path: Path, base_url: str) -> None:
    members = [
        {"name": n, "compute": {"flops": c}, "backend": {"base_url": base_url, "model": n}}
        for n, c in zip(names(), COMPUTES, strict=True)
    ]
    members[-1]["label"] = "big"
    text = "# A scripted family for the tests.\n" + yaml.safe_dump({"name": "scripted", "members": members})
    path.write_text(text, encoding="utf-8")


def write_texts(path: Path) -> None:
    rng = np.random.default_rng(1)
    words = ["alpha", "beta", "gamma", "delta", "echo", "fox", "golf", "hotel", "india", "juliet", "kilo"]
    with path.open("w", encoding="utf-8") as f:
        for i in range(12):
            text = " ".join(rng.choice(words, 40).tolist()) + "."
            f.write(json.dumps({"id": f"doc{i}", "text": text}) + "\n")


class Family:
    """The scripted members' behaviour: per-model loss and per-problem pass counts."""

    def __init__(self, exam_answers: dict[str, str]) -> None:
        rng = np.random.default_rng(7)
        noise = 1 + rng.normal(0, 0.003, len(COMPUTES))
        self.loss = {n: true_loss(c) * e for n, c, e in zip(names(), COMPUTES, noise, strict=True)}
        difficulty = rng.uniform(0.5, 1.5, PROBLEMS)
        difficulty /= difficulty.mean()
        markers = sorted(exam_answers)
        self.answers = exam_answers
        self.passes: dict[str, dict[str, int]] = {}
        cap_noise = 1 + rng.normal(0, 0.01, len(COMPUTES))
        for n, c, e in zip(names(), COMPUTES, cap_noise, strict=True):
            rates = np.exp(-true_capability(c) * e * difficulty)
            self.passes[n] = {m: round(p * SAMPLES) for m, p in zip(markers, rates, strict=True)}

    def respond(self, request: dict[str, Any]) -> str:
        marker = marker_of(request)
        right = self.answers[marker]
        passed = int(request["seed"]) < self.passes[str(request["model"])][marker]
        letter = right if passed else LETTERS[(LETTERS.index(right) + 1) % 4]
        return f"Worked it out.\nThe answer is therefore [{letter}]"


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("family")
    exam = write_mc_exam(tmp / "exams" / "cap.yaml", PROBLEMS, exam_id="cap")
    family = Family(exam.answers)
    texts = tmp / "texts.jsonl"
    write_texts(texts)
    with ScriptedServer(responder=family.respond, scorer=per_token_loss_scorer(family.loss)) as server:
        write_family(tmp / "family.yaml", server.base_url)
        common = ["--out", str(tmp / "results"), "--cache", str(tmp / "cache.sqlite")]
        assert main(["loss", str(texts), "--family", str(tmp / "family.yaml"), *common]) == 0
        assert main(["run", str(exam.path), "--family", str(tmp / "family.yaml"), "--family-samples",
                     str(SAMPLES), "--no-score", "--bootstrap", "0", *common]) == 0  # fmt: skip
    results = tmp / "results"
    loss_dir = next(p for p in results.iterdir() if "-loss-" in p.name)
    family_dir = next(p for p in results.iterdir() if "-family-" in p.name)
    return {"loss": loss_dir, "family": family_dir, "tmp": tmp}


def scaling_json(
    measured: dict[str, Path], capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, Any]:
    capsys.readouterr()
    argv = ["scaling", "--loss", str(measured["loss"]), "--capability", str(measured["family"]),
            "--cutoff", "1e22", "--bootstrap", "300", "--json", *extra]  # fmt: skip
    assert main(argv) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_fit_recovers_the_laws_and_predicts_the_big_member(
    measured: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data = scaling_json(measured, capsys)
    loss = data["loss"]
    assert loss["metric"] == "nats_per_token" and len(loss["fitted"]) == 6 and loss["texts"] == 12
    law = loss["law"]
    assert law["b"] == pytest.approx(B, rel=0.15)
    assert law["c"] == pytest.approx(C_IRR, abs=0.25)
    assert math.log(law["a"]) == pytest.approx(math.log(A), abs=0.5)
    (big,) = loss["predictions"]
    assert big["member"] == "m24" and big["label"] == "big" and big["compute"] == 1e24
    assert big["predicted"] == pytest.approx(true_loss(1e24), rel=0.03)
    assert big["band"]["low"] <= big["actual"] <= big["band"]["high"]
    assert abs(big["error"]) < 0.03 * big["actual"]

    cap = data["capability"]
    assert cap["law"]["k"] == pytest.approx(K, rel=0.1)
    assert math.log(cap["law"]["alpha"]) == pytest.approx(math.log(ALPHA), abs=0.5)
    assert len(cap["problems"]) == PROBLEMS and cap["excluded"] == []
    (big,) = cap["predictions"]
    assert big["predicted"] == pytest.approx(true_capability(1e24), rel=0.1)
    assert big["band"]["low"] <= big["actual"] <= big["band"]["high"]
    assert data["cutoff"] == 1e22


def test_pass_rates_and_accuracy_are_stored_per_member(measured: dict[str, Path]) -> None:
    rates = json.loads((measured["family"] / "pass_rates.json").read_text())
    by_member = {m["member"]: m for m in rates["members"]}
    assert set(by_member) == set(names())
    small = by_member["m17"]
    assert small["samples"] == SAMPLES and len(small["problems"]) == PROBLEMS
    assert all(p["n"] == SAMPLES and p["errors"] == 0 for p in small["problems"])
    assert by_member["m17"]["accuracy"]["cap"] < by_member["m24"]["accuracy"]["cap"]
    assert (measured["family"] / "m17" / "sample-0" / "grades.jsonl").exists()


def test_charts_are_written(
    measured: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    scaling_json(measured, capsys, "--charts", str(tmp_path / "charts"))
    names_ = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert names_ == ["fig1-loss.png", "fig2-capability.png", "fig3-accuracy-cap.png"]
    assert all((tmp_path / "charts" / n).stat().st_size > 10_000 for n in names_)


def test_a_rerun_costs_no_requests_and_resume_finishes_a_loss_run(
    measured: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = measured["tmp"]
    records = (measured["loss"] / "loss.jsonl").read_text().splitlines()
    (measured["loss"] / "loss.jsonl").write_text("\n".join(records[:-5]) + "\n" + records[-5][:20])
    # The server is gone: the cut records can only come back from the cache.
    argv = [
        "loss",
        "--resume",
        str(measured["loss"]),
        "--cache",
        str(tmp / "cache.sqlite"),
        "--max-attempts",
        "1",
    ]
    assert main(argv) == 0
    summary = json.loads((measured["loss"] / "loss.json").read_text())
    assert all(m["ok"] == 12 and m["error"] == 0 for m in summary["members"])
    run = json.loads((measured["loss"] / "loss_run.json").read_text())
    assert run["summary"]["requests_sent"] == 0 and run["summary"]["cache_hits"] == 5
