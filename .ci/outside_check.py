"""CI's outside check: the installed examharness, from an empty folder, on exams it did not ship with.

Run by ``.ci/run`` with the python of a fresh venv holding only the built wheel (no ``local``
extra, no source tree on the path), in an empty temporary folder. Every step goes through the
``examharness`` command and a scripted server that knows the answers
(``python -m examharness.testing.scripted_server --answers-from ... --wrong-every N``):

1. the demo exam, copied out of the checkout: validate, render, run, report; its scale (made up
   for the demo) must give the hand-computed scaled score and percentile range;
2. the shipped report suite: run, every exam's raw score is what the server was told to earn,
   SAT Math's scaled score and percentile follow from its conversion and percentile tables, and
   ``chart --published gpt-4-technical-report --json`` puts the run beside GPT-4 on the SAT Math,
   SAT EBRW and LSAT rows.

Usage: ``python outside_check.py REPO_DIR`` (REPO_DIR only supplies the demo exam to copy).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

BIN = Path(sys.executable).parent
KEYLESS = {"OPENAI_API_KEY": "not-used"}


def sh(*args: str) -> str:
    """Run an examharness command; any failure stops the check with its output."""
    result = subprocess.run([str(BIN / "examharness"), *args], capture_output=True, text=True,
                            env={"PATH": str(BIN), "HOME": str(Path.cwd()), **KEYLESS})
    if result.returncode != 0:
        sys.exit(f"FAILED: examharness {' '.join(args)}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"FAILED: {message}")
    print(f"ok: {message}")


class Server:
    """The scripted server as a child process, answering ``exams`` (every ``wrong_every``-th wrong)."""

    def __init__(self, exams: Path, wrong_every: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "examharness.testing.scripted_server", "--port", "0",
             "--answers-from", str(exams), "--wrong-every", str(wrong_every)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        self.expected: dict[str, int] = json.loads(first.removeprefix("expected correct: "))
        self.url = self.proc.stdout.readline().strip().removeprefix("listening on ")

    def run(self, exams: Path, *extra: str) -> Path:
        out = sh("run", str(exams), "--model", "scripted", "--base-url", self.url, "--no-cache",
                 "--concurrency", "16", "--max-attempts", "1", "--bootstrap", "200", *extra)  # fmt: skip
        return Path(out.strip().splitlines()[-1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def report(run: Path) -> dict[str, dict[str, Any]]:
    return {e["exam"]: e for e in json.loads(sh("report", str(run), "--json"))["exams"]}


def demo(repo: Path) -> None:
    exams = Path("my-exams")
    shutil.copytree(repo / "exams" / "demo", exams / "demo")
    sh("validate", str(exams))
    shown = sh("render", str(exams / "demo" / "demo.yaml"), "--item", "mc-1")
    check("Choose from the following options" in shown, "render uses the installed mc_fewshot template")
    server = Server(exams, wrong_every=4)
    try:
        run = server.run(exams)
    finally:
        server.stop()
    got = report(run)["demo"]
    # 3 of 4 multiple-choice points; free response (2) and essay (6) ungraded: raw 3/12 = 25 %.
    # Demo scale: 20 + 60 x 0.25 = 35 -> rounded half up to 40; table (below): 40 -> 25, next 50 -> 50.
    check(server.expected == {"demo": 3} and got["raw"] == 3 and got["max_raw"] == 12, "demo raw 3/12")
    check(got["scaled"] == 40, f"demo scaled score 40 (got {got['scaled']})")
    check(got["percentile"] == {"low": 25.0, "high": 50.0}, f"demo percentile 25-50 (got {got['percentile']})")
    sh("chart", str(run), "--out", str(run / "figure4.png"))
    check((run / "figure4.png").read_bytes()[:4] == b"\x89PNG", "demo chart written next to the run")


def sat_math_expected(scale: Path, raw: float, max_raw: float) -> tuple[float, float, float]:
    """SAT Math by hand from the shipped scale file: accuracy onto the 58-question chart, then the
    at-or-below percentile table (low = the next lower score's percent)."""
    data = yaml.safe_load(scale.read_text(encoding="utf-8"))
    table = data["raw_to_scaled"]
    form_raw = int(raw / max_raw * table["form_max_raw"] + 0.5)
    scaled = dict(table["rows"])[form_raw]
    pct = sorted((s, p) for s, p in data["percentile"]["rows"] if p is not None)
    high = dict(pct)[scaled]
    lower = [p for s, p in pct if s < scaled]
    return scaled, (lower[-1] if lower else 0.0), high


def suite() -> None:
    import examharness.builtin as builtin

    shipped = builtin.exams_dir() / "suite"
    check(shipped.is_dir() and "site-packages" in str(shipped), f"the suite ships in the package ({shipped})")
    server = Server(shipped, wrong_every=5)
    started = time.monotonic()
    try:
        run = server.run(shipped)
    finally:
        server.stop()
    print(f"suite run: {time.monotonic() - started:.1f}s")
    got = report(run)
    check({k: v["raw"] for k, v in got.items()} == server.expected,
          f"every suite exam's raw score is what the server earned: {server.expected}")
    math = got["sat-math"]
    want = sat_math_expected(builtin.scales_dir() / "sat_math.yaml", math["raw"], math["max_raw"])
    have = (math["scaled"], math["percentile"]["low"], math["percentile"]["high"])
    check(have == want, f"SAT Math scaled and percentile by hand {want}, got {have}")
    for exam in ("sat-ebrw", "lsat"):
        check(got[exam]["scaled"] is not None and got[exam]["percentile"] is not None, f"{exam} is scaled")
    data = json.loads(sh("chart", str(run), "--published", "gpt-4-technical-report", "--json"))
    mine = next(s for s in data["series"] if s["label"] == "scripted")["values"]
    gpt4 = next(s for s in data["series"] if s["label"] == "GPT-4")["values"]
    for row, exam in (("SAT Math", "sat-math"), ("SAT EBRW", "sat-ebrw"), ("LSAT", "lsat")):
        check(mine.get(row) == got[exam]["percentile"]["low"] and gpt4.get(row) is not None,
              f"chart row {row!r}: the run ({mine.get(row)}) beside GPT-4 ({gpt4.get(row)})")


def main() -> None:
    repo = Path(sys.argv[1]).resolve()
    demo(repo)
    suite()


if __name__ == "__main__":
    main()
