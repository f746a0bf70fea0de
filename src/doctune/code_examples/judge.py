"""Model-written explanations, and a judge of them that must pass its own check before it is trusted.

The judge answers "accurate" or "inaccurate" for (code, explanation). Its check: on sample units it must call the
unit's built explanation (facts of the unit itself) accurate and another unit's built explanation inaccurate; with
agreement below ``MIN_AGREEMENT`` it is not used, and the report says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from doctune.code_examples.explain import built_explanation
from doctune.code_examples.tree import dedent_unit
from doctune.llm.base import CallParams, Message
from doctune.prompts import render_prompt
from doctune.records import CodeUnit

if TYPE_CHECKING:
    from doctune.llm.client import LLMClient

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.8
JUDGE_PARAMS = CallParams(temperature=0.0, max_tokens=8)
EXPLAIN_PARAMS = CallParams(temperature=0.0, max_tokens=200)


def model_explanation(client: LLMClient, unit: CodeUnit) -> str:
    """The generator's explanation of the unit (checked by the caller)."""
    messages = [
        Message(role="system", content=render_prompt("code_explain_system")),
        Message(role="user", content=render_prompt("code_explain_user", code=dedent_unit(unit)[:4000])),
    ]
    return client.chat(messages, EXPLAIN_PARAMS).text.strip()


@dataclass
class ExplanationJudge:
    client: LLMClient
    check: dict[str, Any] = field(default_factory=dict)

    def accurate(self, unit: CodeUnit, explanation: str) -> bool:
        messages = [
            Message(role="system", content=render_prompt("code_judge_system")),
            Message(
                role="user",
                content=render_prompt("code_judge_user", code=dedent_unit(unit)[:4000], explanation=explanation),
            ),
        ]
        reply = self.client.chat(messages, JUDGE_PARAMS).text.strip().lower()
        return reply.startswith("accurate")

    def run_check(self, units: Sequence[CodeUnit], n: int = 6) -> dict[str, Any]:
        """Agreement on known cases (own explanation: accurate; the next unit's: inaccurate)."""
        sample = list(units[:n])
        if len(sample) < 2:
            self.check = {"passed": False, "reason": "fewer than two units to check the judge on", "n": 0}
            return self.check
        right = 0
        cases = 0
        for index, unit in enumerate(sample):
            other = sample[(index + 1) % len(sample)]
            right += self.accurate(unit, built_explanation(unit))
            right += not self.accurate(unit, built_explanation(other))
            cases += 2
        agreement = right / cases
        self.check = {
            "passed": agreement >= MIN_AGREEMENT,
            "agreement": round(agreement, 3),
            "n": cases,
            "rule": f"own explanation accurate, another unit's inaccurate; needs >= {MIN_AGREEMENT}",
        }
        log.info("explanation judge check: %s", self.check)
        return self.check
