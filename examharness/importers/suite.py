"""The report suite: the GPT-4 report's exams that open item banks cover, as files in ``exams/suite/``.

``python -m examharness.importers.suite --data ../shared/data --out exams/suite`` regenerates every
file from the public banks through the same importers a user runs, so the committed files are
reproducible byte for byte (CI regenerates them and runs ``git diff --exit-code``). What ships:

* **SAT Math** (AGIEval ``sat-math``, MIT) on the ``sat_math`` conversion.
* **SAT Evidence-Based Reading & Writing** (AGIEval ``sat-en``, MIT) on the ``sat_ebrw`` scale.
  Only the Reading test exists in AGIEval; the Writing and Language test is absent, so the reading
  accuracy is applied to both the Reading and the Writing chart (EBRW = (R + W) x 10) and the
  score records that approximation. Row 57 (label D on a three-option item) is skipped and
  reported; any other bad row fails the build.
* **LSAT**: one exam with the sections ``lsat-ar``, ``lsat-lr``, ``lsat-rc`` (AGIEval, MIT), each
  with its task's AGIEval exemplars and explanations, on the ``lsat`` scale.
* **MMLU** subjects (MIT) in the paper's 5-shot format: accuracy only, no percentile (the
  report's Table 2 family).

Left out, with the reason: **GRE Quantitative** from AQuA-RAT. AQuA-RAT's items are GMAT/GRE-style
algebra word problems with five options, not the GRE's question types (quantitative comparison,
numeric entry, data interpretation); scoring them on the GRE formula would put a proxy beside the
report's real GRE bar under the same name. **LogiQA** never ships: its license is non-commercial.

Titles and ``published_label`` are the report's Figure 4 rows, so ``examharness chart RUN
--published gpt-4-technical-report`` puts a run's bars beside GPT-4's without editing. To add an
exam, add a :class:`SuiteExam` to :func:`suite_exams` (its ``build`` reads the data folder).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from examharness.errors import InputError
from examharness.exam import Exam
from examharness.importers import write_exam_yaml
from examharness.importers.agieval import agieval_header, import_agieval
from examharness.importers.mmlu import import_mmlu, mmlu_header

REGENERATE = "python -m examharness.importers.suite --data ../shared/data --out exams/suite"
MMLU_SUBJECTS = ("college_chemistry", "high_school_biology", "us_foreign_policy")
EBRW_NOTE = (
    "Reading test only: AGIEval has no Writing and Language items, so the sat_ebrw scale applies "
    "this exam's accuracy to both the Reading and the Writing chart (EBRW = (R + W) x 10); the "
    "score records that approximation."
)


@dataclass(frozen=True)
class Built:
    """One generated exam: the model, its file header, and the importer's notes and warnings."""

    exam: Exam
    header: str
    warnings: list[str]


@dataclass(frozen=True)
class SuiteExam:
    """One file of the suite: its name and how to build it from the shared data folder."""

    file: str
    build: Callable[[Path], Built]


def _agieval(
    data: Path, tasks: Sequence[str], *, exam_id: str, title: str, label: str, scale: str,
    known_bad: dict[int, str] | None = None, description: str | None = None,
) -> Built:  # fmt: skip
    """An AGIEval exam; ``known_bad`` rows (line -> why) are skipped, any other bad row fails."""
    files = [data / "agieval" / f"{t}.jsonl" for t in tasks]
    fewshot = data / "agieval" / "few_shot_prompts.csv"
    warnings: list[str] = []
    exam = import_agieval(
        files, exam_id=exam_id, title=title, published_label=label, scale=scale,
        section_per_file=len(files) > 1, fewshot=fewshot, skip_bad=bool(known_bad),
        warn=warnings.append,
    )  # fmt: skip
    expected = {f"{files[0]}:{row}" for row in (known_bad or {})}
    skipped = [w.removeprefix("warning: skipped ") for w in warnings if w.startswith("warning: skipped ")]
    found = {w.split(": ")[0] for w in skipped if ": " in w}
    if found != expected:
        raise InputError.one(files[0], None, "rows", f"expected to skip {sorted(expected)}, "
                             f"the data has bad rows {sorted(found)}")  # fmt: skip
    if description is not None:
        exam = exam.model_copy(update={"description": f"{exam.description} {description}"})
    notes = [f"Skipped {files[0].name} line {row}: {why}." for row, why in (known_bad or {}).items()]
    return Built(exam, "\n".join([agieval_header(files, fewshot), *notes]), warnings)


def _mmlu(data: Path, *, subject: str) -> Built:
    dev = data / "mmlu" / "dev" / f"{subject}_dev.csv"
    test = data / "mmlu" / "test" / f"{subject}_test.csv"
    readable = subject.replace("_", " ")
    exam = import_mmlu(dev, test, exam_id=f"mmlu-{subject.replace('_', '-')}",
                       title=f"MMLU: {readable}")  # fmt: skip
    return Built(exam, mmlu_header(dev, test), [])


def suite_exams() -> list[SuiteExam]:
    """Every file of the suite, in the order they are written."""
    exams = [
        SuiteExam("sat-math.yaml", lambda d: _agieval(
            d, ["sat-math"], exam_id="sat-math", title="SAT Math", label="SAT Math", scale="sat_math")),
        SuiteExam("sat-ebrw.yaml", lambda d: _agieval(
            d, ["sat-en"], exam_id="sat-ebrw", title="SAT Evidence-Based Reading & Writing",
            label="SAT EBRW", scale="sat_ebrw", description=EBRW_NOTE,
            known_bad={57: "label D on an item with three options (AGIEval data quirk)"})),
        SuiteExam("lsat.yaml", lambda d: _agieval(
            d, ["lsat-ar", "lsat-lr", "lsat-rc"], exam_id="lsat", title="LSAT", label="LSAT",
            scale="lsat")),
    ]  # fmt: skip
    for subject in MMLU_SUBJECTS:
        exams.append(SuiteExam(f"mmlu-{subject.replace('_', '-')}.yaml", partial(_mmlu, subject=subject)))
    return exams


def _license_sections(path: Path, names: Sequence[str]) -> list[str]:
    """The ``# NAME`` sections of AGIEval's ``LICENSE-datasets`` for ``names`` (all that match)."""
    text = path.read_text(encoding="utf-8")
    out = []
    for section in re.split(r"^# ", text, flags=re.MULTILINE)[1:]:
        title, _, body = section.partition("\n")
        if {n.strip().lower() for n in title.split(",")} & {n.lower() for n in names}:
            out.append(f"## {title.strip()} (from AGIEval's LICENSE-datasets)\n\n{body.strip()}\n")
    return out


def notice(data: Path) -> str:
    """``exams/suite/NOTICE.md``: the license texts of every bank the suite's items come from."""
    agieval = data / "agieval"
    parts = [
        "# Licenses of the report suite's items\n",
        f"Generated by `{REGENERATE}`. The exams in this folder are built from the openly licensed",
        "AGIEval (SAT, LSAT) and MMLU item banks; their license notices follow. LogiQA",
        "(CC BY-NC-SA 4.0, non-commercial) is never included. The underlying exam items come from",
        "the College Board (SAT) and LSAC (LSAT); the licenses are those of the dataset compilers.\n",
        "## AGIEval repository (microsoft/AGIEval)\n",
        (agieval / "LICENSE").read_text(encoding="utf-8").strip() + "\n",
        *_license_sections(agieval / "LICENSE-datasets", ["SAT", "LSAT"]),
        "## MMLU (hendrycks/test)\n",
        (data / "mmlu" / "LICENSE").read_text(encoding="utf-8").strip() + "\n",
    ]
    return "\n".join(parts)


def build_suite(data: Path, out: Path, warn: Callable[[str], None]) -> list[Path]:
    """Write every suite exam and ``NOTICE.md`` into ``out``; return the exam files written.

    Output depends only on the input files (no dates, no absolute paths), so a rebuild from the
    same data is byte-identical.
    """
    written = []
    for spec in suite_exams():
        built = spec.build(data)
        for line in built.warnings:
            warn(line)
        header = built.header + f"\nPart of the examharness report suite; regenerate with `{REGENERATE}`."
        write_exam_yaml(built.exam, out / spec.file, header)
        written.append(out / spec.file)
    (out / "NOTICE.md").write_text(notice(data), encoding="utf-8")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examharness.importers.suite",
                                     description="Regenerate exams/suite/ from the public item banks.")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="folder with agieval/ and mmlu/ (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("exams/suite"))
    args = parser.parse_args(argv)
    try:
        files = build_suite(args.data, args.out, lambda line: print(line, file=sys.stderr))
    except InputError as err:
        print(err, file=sys.stderr)
        return 1
    for path in files:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
