"""Grading answers with a judge model (its check, and the fallback grader, are in ``doctune.evaluate.grader``)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from doctune.llm.base import CallParams, Message
from doctune.llm.client import LLMClient
from doctune.prompts import render_prompt
from doctune.records import DatasetItem

log = logging.getLogger(__name__)

#: score of each verdict; accuracy is the mean score
SCORES: dict[str, float] = {"correct": 1.0, "partially": 0.5, "incorrect": 0.0}
REASON_MAX_CHARS = 300
#: the "I don't know" answer every grader must call incorrect (see ``doctune.evaluate.grader``)
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
