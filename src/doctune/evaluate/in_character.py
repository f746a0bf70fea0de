"""The judge's in-character verdict on a reply, and the check the judge must pass before its verdicts count.

The judge is shown the character card (the example's system message), the scene context (its user turn) and a
reply, and answers ``yes`` (the reply is in character: voice, manner, what this character would say) or ``no``.

:func:`check_in_character_judge` puts it to a test with known answers: each sampled held-out example's real
speech must be judged ``yes``, and a modern assistant-style reply to the same context ``no``. A judge below
``floor`` on either side, a scripted test double, or a judge that cannot be reached is not used, and the report
says "not scored" with the reason: never a number from an unchecked judge.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from doctune.llm.base import CallParams, Message
from doctune.llm.client import LLMClient
from doctune.records import Example

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)

SYSTEM = (
    "You judge role-play. You are given a character card, the scene so far, and a reply written for that "
    "character. Decide whether the reply is in character: the character's voice, manner of speech (for a play: "
    "its period English and verse or prose) and what this character would plausibly say here. A modern, "
    "assistant-like or out-of-period reply is not in character. Answer with JSON: "
    '{"reason": "<one sentence>", "in_character": "yes" or "no"}.'
)
#: replies that are plainly out of character for a play's characters (the check's "no" cases)
MODERN_REPLIES = (
    "Sure! Here is a quick summary of the key points, let me know if you need anything else.",
    "OK, sounds good. I'll email you the details tomorrow morning.",
)


class InCharacterVerdict(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reason: str = Field(description="One sentence.")
    in_character: Literal["yes", "no"]


def judge_in_character(client: LLMClient, example: Example, reply: str, max_tokens: int = 200) -> bool:
    """Whether the judge calls ``reply`` in character for ``example``'s card and context (empty: no)."""
    prompt = example.prompt_messages
    card = "\n".join(m.content for m in prompt if m.role == "system")
    context = "\n".join(m.content for m in prompt if m.role == "user")
    return judge_reply_in_character(client, card, context, reply, max_tokens)


def judge_reply_in_character(client: LLMClient, card: str, context: str, reply: str, max_tokens: int = 200) -> bool:
    """Whether the judge calls ``reply`` in character for a character ``card`` and the scene ``context`` (a chat's
    system and user messages; an empty reply: no)."""
    if not reply.strip():
        return False
    card, context = card.strip() or "(no card)", context.strip() or "(no context)"
    user = f"Character card:\n{card}\n\nScene so far:\n{context}\n\nReply to judge:\n{reply.strip()}"
    messages = [Message(role="system", content=SYSTEM), Message(role="user", content=user)]
    params = CallParams(temperature=0.0, max_tokens=max_tokens, seed=client.backend.spec.seed)
    return client.chat_structured(messages, InCharacterVerdict, params).in_character == "yes"


def check_in_character_judge(client: LLMClient, examples: Sequence[Example], floor: float) -> dict[str, Any]:
    """Judge real speeches (expected yes) and modern replies (expected no); ``passed`` when both shares >= floor.

    A failed call counts as a disagreement. The dict has ``judge``, ``n_items``, ``real_yes``, ``modern_no``,
    ``passed``, ``reason`` and the per-case ``cases``."""
    label = client.backend.label()
    if client.backend.scripted:
        return {"judge": label, "passed": False, "reason": f"the judge {label} is a scripted test double"}
    if not examples:
        return {"judge": label, "passed": False, "reason": "no held-out example to check the judge on"}
    cases = []
    for i, ex in enumerate(examples):
        for kind, reply, expected in (("real", ex.target, True), ("modern", MODERN_REPLIES[i % 2], False)):
            try:
                verdict: bool | None = judge_in_character(client, ex, reply)
            except Exception as exc:  # a judge that fails a call fails that case, and says why
                log.warning("in-character judge failed on %s (%s): %s", ex.example_id, kind, exc)
                verdict = None
            cases.append({"example_id": ex.example_id, "kind": kind, "verdict": verdict, "agrees": verdict is expected})

    def share(kind: str) -> float:
        chosen = [c for c in cases if c["kind"] == kind]
        return sum(c["agrees"] for c in chosen) / len(chosen)

    real_yes, modern_no = share("real"), share("modern")
    passed = real_yes >= floor and modern_no >= floor
    reason = (
        f"real speeches judged in character {real_yes:.0%}, modern replies judged out of character {modern_no:.0%} "
        f"on {len(examples)} held-out examples (floor {floor:.0%})"
    )
    return {
        "judge": label,
        "n_items": len(examples),
        "real_yes": real_yes,
        "modern_no": modern_no,
        "passed": passed,
        "reason": reason,
        "cases": cases,
    }


def open_checked_judge(
    config: DoctuneConfig, workspace: Workspace, examples: Sequence[Example], split: str
) -> tuple[LLMClient | None, dict[str, Any]]:
    """(the ``judge`` role's client if it passed :func:`check_in_character_judge` on ``fidelity.judge_check_items``
    examples of ``split``, else None; the check's report, with the reason). The caller closes a returned client."""
    n = config.fidelity.judge_check_items
    if n == 0:
        return None, {"passed": False, "reason": "fidelity.judge_check_items is 0"}
    from doctune.llm.roles import open_client
    from doctune.sampling import evenly_spaced

    try:
        client = open_client(config, workspace, "judge")
    except Exception as exc:  # an unusable judge only means in-character is not scored
        return None, {"passed": False, "reason": f"the judge cannot be opened: {exc}"}
    sample = evenly_spaced([e for e in examples if e.split == split], n)
    check = check_in_character_judge(client, sample, config.evaluate.min_grader_agreement)
    if not check["passed"]:
        client.backend.close()
        return None, check
    return client, check
