"""``report --html``: one self-contained HTML file for a run — summary, chart, every transcript.

Built from the run folder's files alone (``run.json``, ``items.jsonl``, ``grades.jsonl``,
``scores.json``); nothing is recomputed and no model is called. The file must be safe to open
even though it shows text a model wrote: the page is the Jinja template
``templates/report.html.j2`` rendered in its own autoescaping environment, so every piece of model
or exam text is escaped (quotes too) and only the template writes markup; nothing is loaded from
outside the file (the chart is an inline PNG, the style inline), and a Content-Security-Policy meta
tag forbids scripts, so a missed escape still cannot run anything.
"""

from __future__ import annotations

import base64
from io import BytesIO
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from examharness.chart import ChartSeries, build_chart_data, draw_chart
from examharness.code.views import pass_at_k_lines
from examharness.errors import InputError
from examharness.records import ExamScore, GradedItem, ItemRecord, RunConfig, RunScores, StageRecord
from examharness.report import edition_note, editions_summary, health, percentile_text, scale_text
from examharness.results import RunFolder

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
 max-width:1100px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:32px 0 8px;padding-bottom:4px;
 border-bottom:1px solid #d0d7de}h3{font-size:1.05em;margin:24px 0 6px}
.meta{color:#57606a;margin:0 0 16px}.meta code{font-size:.9em}
table{border-collapse:collapse;width:100%;margin:8px 0 12px;font-size:.93em}
th,td{border:1px solid #d0d7de;padding:5px 9px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num{text-align:right;white-space:nowrap}
.note{color:#57606a;font-size:.9em;margin:2px 0}.warn{color:#9a6700}
figure{margin:12px 0}figure img{max-width:100%;border:1px solid #d0d7de}
figcaption{color:#57606a;font-size:.9em}
details{border:1px solid #d0d7de;border-radius:6px;margin:6px 0;background:#fff}
summary{cursor:pointer;padding:6px 10px;background:#f6f8fa;border-radius:6px}
details[open] summary{border-bottom:1px solid #d0d7de;border-radius:6px 6px 0 0}
details>div{padding:4px 12px 10px}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid #e5e8eb;
 border-radius:4px;padding:8px 10px;margin:4px 0 8px;font-size:.88em;max-height:480px;overflow:auto}
.role{font-weight:600;font-size:.85em;color:#57606a;text-transform:uppercase;margin-top:6px}
.s{display:inline-block;padding:0 7px;border-radius:10px;font-size:.85em;margin:0 6px}
.s-correct,.s-graded{background:#dafbe1;color:#116329}.s-incorrect{background:#ffebe9;color:#a40e26}
.s-error,.s-grading_error{background:#a40e26;color:#fff}
.s-unparseable,.s-empty,.s-refused,.s-ungraded{background:#fff8c5;color:#7d4e00}
img.part{max-width:420px;display:block;margin:4px 0}
table.facts{width:auto;min-width:60%}table.facts th{width:11em;background:#fafbfc;font-weight:500}
h4{font-size:.95em;margin:14px 0 4px}
"""


def _env() -> SandboxedEnvironment:
    """The report's own environment: autoescaping on (prompts render without it, in ``prompts``)."""
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.2f}".rstrip("0")


def _interval(ci: tuple[float, float] | None) -> str:
    return "-" if ci is None else f"{_num(ci[0])}–{_num(ci[1])}"


def _summary_row(e: ExamScore) -> dict[str, str]:
    ci = [f"raw {_interval(e.ci.raw)}"]
    if e.ci.scaled is not None:
        ci.append(f"scaled {_interval(e.ci.scaled)}")
    if e.ci.percentile is not None:
        ci.append(f"percentile {_interval(e.ci.percentile)}")
    return {
        "title": e.title, "raw": f"{_num(e.raw)} / {_num(e.max_raw)} ({e.accuracy:.0%})",
        "scaled": _num(e.scaled) + (f" ({scale_text(e)})" if e.scale else ""),
        "percentile": "-" if e.percentile is None else percentile_text(e.percentile.low, e.percentile.high),
        "ci": "; ".join(ci), "health": health(e.items),
    }  # fmt: skip


def _notes(e: ExamScore) -> list[str]:
    notes = [*e.provisional]
    if (edition := edition_note(e)) is not None:
        notes.append(edition)
    if e.approximation:
        notes.append(f"approximation: {e.approximation}")
    if e.contamination is not None:
        c = e.contamination
        notes.append(f"contamination: {len(c.contaminated)} item(s) ({c.share:.0%}); "
                     f"reported: {c.reported} ({c.rule})")  # fmt: skip
    if e.agreement:
        notes.append(f"grader agreement: exact {e.agreement.exact:.0%}, "
                     f"adjacent {e.agreement.adjacent:.0%}")  # fmt: skip
    return notes + pass_at_k_lines(e.pass_at_k)


def _chart(scores: RunScores) -> dict[str, str] | None:
    """The run's Figure-4-style bars: percentile lower bounds, or accuracy when none has one."""
    if not scores.exams:
        return None
    titles = [e.title for e in scores.exams]
    named = [(e.title if titles.count(e.title) == 1 else f"{e.title} ({e.exam})", e) for e in scores.exams]
    with_pct = any(e.percentile is not None for e in scores.exams)
    values: dict[str, float | None]
    if with_pct:
        values = {n: e.percentile.low if e.percentile else None for n, e in named}
        left_out = [n for n, v in values.items() if v is None]
        caption = "Estimated percentile lower bound among test takers, per exam."
        if left_out:
            caption += f" Not drawn (no percentile scale): {', '.join(left_out)}."
    else:
        values = {n: round(e.accuracy * 100, 2) for n, e in named}
        caption = "No exam in this run has a percentile scale, so the bars show accuracy (% of points)."
    if (editions := editions_summary(scores.exams)) is not None:
        caption += f" {editions}"
    data = build_chart_data([ChartSeries(label=scores.model, values=values)], scores.model)
    if not with_pct:
        data = data.model_copy(update={"y_label": "Accuracy (% of points)"})
    fig = draw_chart(data)
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    return {"alt": data.title, "png": png, "caption": caption}


def _parts(content: Any) -> list[dict[str, str]]:
    """A message's content: text, or content parts (text, embedded data: images, anything else)."""
    if isinstance(content, str):
        return [{"text": content}]
    parts = []
    for part in content if isinstance(content, list) else [content]:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif isinstance(part, dict) and part.get("type") == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            embedded = url.startswith("data:image/")
            parts.append({"image": url} if embedded else {"text": f"[image: {url[:200]}]"})
        else:
            parts.append({"text": str(part)})
    return parts


def _stage(stage: StageRecord, previous: list[dict[str, Any]]) -> dict[str, Any]:
    p = stage.params
    facts = [f"temperature {p.temperature:g}", f"max_tokens {p.max_tokens}", f"seed {p.seed}",
             f"finish {stage.finish_reason or '-'}",
             "cached" if stage.cached else f"{stage.attempts} attempt(s)",
             f"{stage.usage.prompt_tokens}+{stage.usage.completion_tokens} tokens"]  # fmt: skip
    shared = 0
    while shared < min(len(previous), len(stage.messages)) and previous[shared] == stage.messages[shared]:
        shared += 1
    rest = stage.messages[shared:]
    messages = [{"role": m.get("role", "?"), "parts": _parts(m.get("content"))} for m in rest]
    reply = "(no reply)" if stage.reply is None else stage.reply
    return {"name": stage.stage, "facts": ", ".join(facts), "shared": shared, "messages": messages,
            "reply": reply}  # fmt: skip


def _item(g: GradedItem, record: ItemRecord | None) -> dict[str, Any]:
    facts = [("section", g.section_id), ("type", g.item_type), ("status", g.status),
             ("points", f"{_num(g.points)} / {_num(g.max_points)}"),
             ("extracted answer", g.answer or "-"), ("how", g.how or "-"), ("graded by", g.graded_by),
             ("grader rationale", g.rationale or "-")]  # fmt: skip
    if g.reads:
        facts.append(("grader reads", ", ".join(_num(r) for r in g.reads)))
    stages = []
    previous: list[dict[str, Any]] = []
    for stage in record.stages if record is not None else []:
        stages.append(_stage(stage, previous))
        previous = stage.messages
    return {
        "id": g.item_id, "status": g.status, "points": f"{_num(g.points)} / {_num(g.max_points)}",
        "answer": g.answer, "facts": facts, "not_run": record is None,
        "error": record.error if record is not None else None, "stages": stages,
    }  # fmt: skip


def _when(stamp: str | None) -> str:
    return "not finished" if stamp is None else stamp[:19].replace("T", " ") + " UTC"


def _run_facts(cfg: RunConfig) -> list[dict[str, str]]:
    s = cfg.summary
    facts = [{"label": "model", "code": cfg.model, "after": f"({cfg.backend})"},
             {"label": "run", "code": cfg.run_id},
             {"label": f"started {_when(cfg.created_at)}"}, {"label": f"finished {_when(cfg.finished_at)}"},
             {"label": f"seed {cfg.seed}"}, {"label": "vision" if cfg.vision else "text only"},
             {"label": f"examharness {cfg.examharness_version}"}]  # fmt: skip
    if s:
        costs = (f"{s.get('requests_sent', 0)} requests, {s.get('cache_hits', 0)} from cache, "
                 f"{s.get('prompt_tokens', 0)}+{s.get('completion_tokens', 0)} tokens")  # fmt: skip
        facts.append({"label": costs})
    return facts


def render_html(
    cfg: RunConfig, scores: RunScores, records: list[ItemRecord], grades: list[GradedItem]
) -> str:
    """The whole page as a string (pure: the caller reads the files and writes the result)."""
    by_key = {r.key: r for r in records}
    exams = [{
        "id": e.exam, "title": e.title, "notes": _notes(e),
        "transcripts": [_item(g, by_key.get((g.exam_id, g.item_id))) for g in grades if g.exam_id == e.exam],
    } for e in scores.exams]  # fmt: skip
    return _env().get_template(TEMPLATE).render(
        csp=CSP, style=Markup(STYLE), title=f"examharness · {cfg.model} · {cfg.run_id}", model=cfg.model,
        facts=_run_facts(cfg), summary=[_summary_row(e) for e in scores.exams], exams=exams,
        chart=_chart(scores),
    ) + "\n"  # fmt: skip


def write_html_report(run_dir: Path, out: Path, scores: RunScores | None = None) -> None:
    """Write the run's report to ``out`` as one self-contained HTML file (``scores``: the run's
    ``scores.json`` unless given, e.g. rescored with another scale edition)."""
    folder = RunFolder.open(run_dir)
    cfg, scores = folder.read_config(), scores or folder.read_scores()
    grades = list(folder.read_grades().values())
    page = render_html(cfg, scores, folder.read_items(), grades)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as err:
        raise InputError.one(out, None, "--html", f"cannot write: {err.strerror or err}") from None
