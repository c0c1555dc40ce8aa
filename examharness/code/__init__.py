"""Coding exams graded by running the model's code: extraction, the sandbox, execution, pass@k."""

from examharness.code.extract import CodeExtraction, extract_code
from examharness.code.models import CodeSample, PassCount
from examharness.code.passk import PassAtK, pass_at_k, section_pass_at_k
from examharness.code.sandbox import ExecResult, Limits, detect_isolation, run_program

__all__ = [
    "CodeExtraction",
    "CodeSample",
    "ExecResult",
    "Limits",
    "PassAtK",
    "PassCount",
    "detect_isolation",
    "extract_code",
    "pass_at_k",
    "run_program",
    "section_pass_at_k",
]
