"""report --html: one self-contained file; model text escaped; safe and readable in a browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from runs import ExamSpec, first_right, make_run, write_exam

from examharness.cli import main
from examharness.htmlreport import CSP, write_html_report

PAYLOAD = "<script>alert(1)</script> then <img src=x onerror=alert(1)> and \"quotes\" & 'ticks'"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose model replies carry markup, rendered to report.html through the CLI."""
    tmp = tmp_path_factory.mktemp("html")
    alpha = write_exam(tmp / "exams", ExamSpec("alpha", "Alpha <b>Exam</b>", n_mc=4, n_fr=1))
    beta = write_exam(tmp / "exams", ExamSpec("beta", "Beta Exam", n_mc=2, scale=None))
    run = make_run(tmp, [alpha, beta], model="xss-model", right=first_right("alpha", 3),
                   replies={"alpha:q1": PAYLOAD, "alpha:fr1": PAYLOAD})  # fmt: skip
    out = tmp / "report.html"
    assert main(["report", str(run), "--html", str(out)]) == 0
    return out


def test_model_and_exam_text_is_escaped(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert "<img src=x" not in text and "<b>Exam" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&#34;quotes&#34; &amp; &#39;ticks&#39;" in text
    assert "Alpha &lt;b&gt;Exam&lt;/b&gt;" in text
    # the payload shows up in the explanation reply, the answer stage's history and the FR reply
    assert text.count("&lt;img src=x onerror=alert(1)&gt;") == 3


def test_page_is_self_contained_with_a_strict_policy(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP.replace(chr(39), "&#39;")}">' in text
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert '"Segoe UI"' in text and "details>div" in text  # the style is the template's, not escaped


def test_page_has_summary_chart_and_every_transcript(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "3 / 6 (50%)" in text  # alpha: q1-q3 right of 4 MC + an ungraded 2-point FR item
    assert "ungraded 1" in text
    assert "Not drawn (no percentile scale): Beta Exam." in text
    assert text.count("<details>") == 7
    for stage in ("Stage: explanation", "Stage: answer", "Stage: response"):
        assert stage in text
    assert "Reply with only the letter of your final answer." in text
    assert "answer-stage:" in text  # how the answer was found


def test_accuracy_is_drawn_when_no_exam_has_a_percentile(tmp_path: Path) -> None:
    exam = write_exam(tmp_path / "exams", ExamSpec("plain", "Plain Exam", n_mc=4, scale=None))
    run = make_run(tmp_path, [exam], model="m", right=first_right("plain", 1))
    write_html_report(run, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "bars show accuracy" in text and "data:image/png;base64," in text


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    assert exe is not None
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium not installed (Debian: apt-get install chromium)")  # fmt: skip
def test_headless_chromium_renders_it_without_running_script(page: Path, tmp_path: Path) -> None:
    url = page.resolve().as_uri()
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,1600", url, profile=tmp_path / "p1")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1200)
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005  # text and a chart, not a blank page
    dom = _chromium("--dump-dom", url, profile=tmp_path / "p2").stdout
    assert "<script" not in dom.lower()
    assert "<img src=\"x\"" not in dom and "onerror" not in dom.replace("onerror=alert(1)&gt;", "")
    assert re.search(r"<title>examharness · xss-model · [^<]+</title>", dom)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
