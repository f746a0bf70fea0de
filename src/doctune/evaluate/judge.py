"""Grading answers with a judge model, and checking that the judge itself can tell right from wrong."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from doctune.generate.runner import Job, run_jobs
from doctune.llm.base import CallParams, Message
from doctune.llm.client import LLMClient
from doctune.prompts import render_prompt
from doctune.records import DatasetItem

log = logging.getLogger(__name__)

#: score of each verdict; accuracy is the mean score
SCORES: dict[str, float] = {"correct": 1.0, "partially": 0.5, "incorrect": 0.0}
REASON_MAX_CHARS = 300
#: the wrong answer used by ``check_judge`` when no item of another category or cluster exists
IDK_ANSWER = "I don't know."


class Verdict(BaseModel):
    """A judge's grade of one answer. ``reason`` comes first so a model writes its rationale before deciding."""

    model_config = ConfigDict(extra="ignore")

    reason: str = Field(description="One or two sentences on what the answer gets right or wrong.")
    verdict: Literal["correct", "partially", "incorrect"]

    @field_validator("verdict", mode="before")
    @classmethod
    def _normalize_verdict(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower().rstrip(".")
            return {"partial": "partially", "partially correct": "partially", "wrong": "incorrect"}.get(value, value)
        return value

    @field_validator("reason", mode="before")
    @classmethod
    def _clip_reason(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > REASON_MAX_CHARS:
            return value[: REASON_MAX_CHARS - 3].rstrip() + "..."
        return value

    @property
    def score(self) -> float:
        return SCORES[self.verdict]


def judge_messages(item: DatasetItem, answer: str) -> list[Message]:
    """The judge conversation for grading ``answer`` to ``item``."""
    user = render_prompt(
        "judge_user",
        question=item.question,
        criteria=item.evaluation_criteria or "(none given: compare with the reference answer)",
        reference=item.answer,
        answer=answer.strip() or "(empty answer)",
    )
    return [
        Message(role="system", content=render_prompt("judge_system")),
        Message(role="user", content=user),
    ]


def judge_answer(client: LLMClient, item: DatasetItem, answer: str, max_tokens: int = 256) -> Verdict:
    """Grade ``answer`` with the judge model (greedy). An empty answer is ``incorrect`` without a call.

    Raises ``StructuredOutputError`` when the judge refuses or gives no valid verdict, ``BackendError``
    when the call fails.
    """
    if not answer.strip():
        return Verdict(reason="No answer was given.", verdict="incorrect")
    params = CallParams(temperature=0.0, max_tokens=max_tokens, seed=client.backend.spec.seed)
    return client.chat_structured(judge_messages(item, answer), Verdict, params)


def wrong_answer_for(item: DatasetItem, others: Sequence[DatasetItem]) -> str:
    """A deliberately wrong answer to ``item``: the reference answer of another item, preferring one of a
    different category and cluster (and a different answer text); ``IDK_ANSWER`` when there is none."""
    ranked = sorted(
        (o for o in others if o.item_id != item.item_id and o.answer.strip() != item.answer.strip()),
        key=lambda o: (o.category == item.category, o.cluster == item.cluster and item.cluster != -1, o.item_id),
    )
    for other in ranked:
        if other.category != item.category or (other.cluster != item.cluster and item.cluster != -1):
            return other.answer
    return IDK_ANSWER


def check_judge(
    client: LLMClient,
    items: Sequence[DatasetItem],
    max_concurrency: int = 4,
    progress: bool = False,
) -> dict[str, Any]:
    """Grade each item's reference answer (should be ``correct``) and a wrong answer (should be ``incorrect``).

    Returns ``n_items``, ``reference_correct`` (share of references judged correct), ``wrong_incorrect``
    (share of wrong answers judged incorrect), ``agreement`` (share of all graded cases judged as expected),
    ``n_failed`` (judge calls without a verdict, counted as disagreement) and per-case ``cases``.
    """
    cases: list[tuple[DatasetItem, str, str]] = []  # (item, answer, expected verdict)
    for item in items:
        cases.append((item, item.answer, "correct"))
        cases.append((item, wrong_answer_for(item, items), "incorrect"))
    jobs = [
        Job(f"{item.item_id}:{expected}", lambda i=item, a=answer: judge_answer(client, i, a))
        for item, answer, expected in cases
    ]
    results = run_jobs(jobs, max_concurrency, client, "check judge", progress)
    rows: list[dict[str, Any]] = []
    for (item, answer, expected), result in zip(cases, results, strict=True):
        verdict = result.value
        rows.append(
            {
                "item_id": item.item_id,
                "kind": "reference" if expected == "correct" else "wrong",
                "answer": answer,
                "expected": expected,
                "verdict": verdict.verdict if verdict else None,
                "reason": verdict.reason if verdict else f"{type(result.error).__name__}: {result.error}",
                "agrees": verdict is not None and verdict.verdict == expected,
            }
        )

    def share(kind: str | None) -> float:
        chosen = [r for r in rows if kind is None or r["kind"] == kind]
        return sum(r["agrees"] for r in chosen) / len(chosen) if chosen else float("nan")

    report = {
        "n_items": len(items),
        "reference_correct": share("reference"),
        "wrong_incorrect": share("wrong"),
        "agreement": share(None),
        "n_failed": sum(r["verdict"] is None for r in rows),
        "cases": rows,
    }
    log.info(
        "judge check on %d items: references correct %.0f%%, wrong answers incorrect %.0f%%, agreement %.0f%%",
        len(items),
        100 * report["reference_correct"],
        100 * report["wrong_incorrect"],
        100 * report["agreement"],
    )
    return report
