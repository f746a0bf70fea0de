"""Evaluation: answer held-out questions with each model, grade the answers with a judge model, and
report accuracy with bootstrap confidence intervals, the base-vs-tuned difference and a promotion gate."""

from __future__ import annotations

from doctune.evaluate.answer import AnswerResult, answer_items
from doctune.evaluate.grader import DeterministicGrader, JudgeGrader, check_grader, check_judge, choose_grader
from doctune.evaluate.judge import SCORES, Verdict, judge_answer
from doctune.evaluate.metrics import bootstrap_ci, embedding_similarity, paired_bootstrap_diff, token_f1
from doctune.evaluate.report import (
    GateRule,
    evaluate_models,
    gate_decision,
    markdown_table,
    write_html,
    write_json,
)

__all__ = [
    "SCORES",
    "AnswerResult",
    "DeterministicGrader",
    "GateRule",
    "JudgeGrader",
    "Verdict",
    "answer_items",
    "bootstrap_ci",
    "check_grader",
    "check_judge",
    "choose_grader",
    "embedding_similarity",
    "evaluate_models",
    "gate_decision",
    "judge_answer",
    "markdown_table",
    "paired_bootstrap_diff",
    "token_f1",
    "write_html",
    "write_json",
]
