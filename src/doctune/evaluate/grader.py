"""Who grades the answers, and the check every grader must pass before its grades count.

Two graders behind one interface (``label``, ``scripted``, ``grade(item, answer) -> Verdict``):

* :class:`JudgeGrader`: the ``judge`` role's model, asked for a structured verdict (:func:`judge_answer`);
* :class:`DeterministicGrader`: no model. The answer must state every number of the reference that the question
  does not already give, and recall the reference's content words that are not in the question: at least
  ``correct_recall`` of them for ``correct``, ``partial_recall`` for ``partially``.

:func:`check_grader` grades, for a sample of items, the reference answer (must be judged correct) and hard wrong
answers (must be judged incorrect): the question echoed back, a same-topic wrong fact (another item's answer from
the same document), the reference with its numbers swapped, and "I don't know". :func:`choose_grader` runs the
check on the judge first; a judge below the agreement floor on either side (references or wrong answers) is not
used, and the deterministic grader, which must pass the same check, decides instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol

from doctune.evaluate.judge import IDK_ANSWER, Verdict, judge_answer
from doctune.jobs import Job, run_jobs
from doctune.llm.client import LLMClient
from doctune.records import DatasetItem
from doctune.sampling import evenly_spaced
from doctune.textmatch import content_words, numbers, recall

log = logging.getLogger(__name__)

WRONG_KINDS = ("echo", "same_topic", "swapped_numbers", "dont_know")
_NUMBER_TOKEN = re.compile(r"\d+(?:\.\d+)?")


class Grader(Protocol):
    scripted: bool

    def label(self) -> str: ...

    def grade(self, item: DatasetItem, answer: str) -> Verdict: ...


class JudgeGrader:
    """The judge model's verdicts."""

    def __init__(self, client: LLMClient):
        self.client = client
        self.scripted = client.backend.scripted

    def label(self) -> str:
        return f"judge {self.client.backend.label()}"

    def grade(self, item: DatasetItem, answer: str) -> Verdict:
        return judge_answer(self.client, item, answer)


class DeterministicGrader:
    """Reference content words and numbers the question does not give away, found in the answer."""

    scripted = False

    def __init__(self, correct_recall: float = 0.6, partial_recall: float = 0.3):
        self.correct_recall = correct_recall
        self.partial_recall = partial_recall

    def label(self) -> str:
        return "deterministic grader (recall of the reference's content words and numbers not in the question)"

    def grade(self, item: DatasetItem, answer: str) -> Verdict:
        return self.grade_text(item.question, item.answer, answer)

    def grade_text(self, question: str, reference: str, answer: str) -> Verdict:
        """The verdict on ``answer`` to ``question`` against the ``reference`` answer."""
        if not answer.strip():
            return Verdict(reason="No answer was given.", verdict="incorrect")
        asked_words, asked_numbers = content_words(question), numbers(question)
        key_words = content_words(reference) - asked_words
        key_numbers = numbers(reference) - asked_numbers
        if not key_words and not key_numbers:  # the reference only restates the question: compare it whole
            key_words = content_words(reference)
        found_numbers = numbers(answer)
        missing_numbers = sorted(key_numbers - found_numbers)
        share = recall(key_words, content_words(answer)) if key_words else 1.0
        what = f"{share:.0%} of the reference's key words" + (
            f", missing numbers {', '.join(f'{n:g}' for n in missing_numbers)}" if missing_numbers else ""
        )
        if missing_numbers or share < self.partial_recall:
            return Verdict(reason=f"Wrong or missing fact: {what}.", verdict="incorrect")
        if share < self.correct_recall:
            return Verdict(reason=f"Part of the fact: {what}.", verdict="partially")
        return Verdict(reason=f"States the fact: {what}.", verdict="correct")


def swap_numbers(text: str) -> str | None:
    """``text`` with every number changed (98 -> 99, 1909 -> 1910); None when it has no digit."""
    if not _NUMBER_TOKEN.search(text):
        return None

    def bump(match: re.Match[str]) -> str:
        token = match.group(0)
        if "." in token:
            whole, frac = token.split(".")
            return f"{whole}.{(int(frac) + 1) % 10 ** len(frac):0{len(frac)}d}"
        return str(int(token) + 1)

    return _NUMBER_TOKEN.sub(bump, text)


def hard_wrong_answers(item: DatasetItem, items: Sequence[DatasetItem]) -> list[tuple[str, str]]:
    """``(kind, answer)`` pairs a grader must call incorrect for ``item``."""
    wrong = [("echo", item.question)]
    own_words, own_numbers = content_words(item.answer), numbers(item.answer)
    others = [o for o in items if o.item_id != item.item_id and o.answer.strip() != item.answer.strip()]
    same_doc = [o for o in others if set(o.doc_ids) & set(item.doc_ids)] or others
    for other in same_doc:  # a different fact (other numbers, or mostly other words), not a rewording of this one
        if numbers(other.answer) != own_numbers or recall(own_words, content_words(other.answer)) < 0.5:
            wrong.append(("same_topic", other.answer))
            break
    if (swapped := swap_numbers(item.answer)) is not None:
        wrong.append(("swapped_numbers", swapped))
    wrong.append(("dont_know", IDK_ANSWER))
    return wrong


def check_grader(
    grader: Grader,
    items: Sequence[DatasetItem],
    max_concurrency: int = 4,
    progress: bool = False,
    client: LLMClient | None = None,
) -> dict[str, Any]:
    """Grade each item's reference (expected ``correct``) and its hard wrong answers (expected ``incorrect``).

    Returns ``grader``, ``n_items``, ``reference_correct``, ``wrong_incorrect`` and ``agreement`` (shares judged as
    expected; a failed grading counts as a disagreement), ``by_kind`` (share per wrong-answer kind), ``n_failed``
    and the per-case ``cases``."""
    cases: list[tuple[DatasetItem, str, str]] = []  # (item, answer, kind)
    for item in items:
        cases.append((item, item.answer, "reference"))
        cases.extend((item, answer, kind) for kind, answer in hard_wrong_answers(item, items))
    jobs = [Job(f"{i.item_id}:{kind}", lambda i=i, a=answer: grader.grade(i, a)) for i, answer, kind in cases]
    results = run_jobs(jobs, max_concurrency, client, f"check {grader.label()[:40]}", progress)
    rows = []
    for (item, answer, kind), result in zip(cases, results, strict=True):
        expected = "correct" if kind == "reference" else "incorrect"
        verdict = result.value
        rows.append(
            {
                "item_id": item.item_id,
                "kind": kind,
                "answer": answer,
                "expected": expected,
                "verdict": verdict.verdict if verdict else None,
                "reason": verdict.reason if verdict else f"{type(result.error).__name__}: {result.error}",
                "agrees": verdict is not None and verdict.verdict == expected,
            }
        )

    def share(kinds: Sequence[str]) -> float:
        chosen = [r for r in rows if r["kind"] in kinds]
        return sum(r["agrees"] for r in chosen) / len(chosen) if chosen else float("nan")

    report = {
        "grader": grader.label(),
        "n_items": len(items),
        "reference_correct": share(["reference"]),
        "wrong_incorrect": share(WRONG_KINDS),
        "agreement": share(["reference", *WRONG_KINDS]),
        "by_kind": {kind: share([kind]) for kind in WRONG_KINDS if any(r["kind"] == kind for r in rows)},
        "n_failed": sum(r["verdict"] is None for r in rows),
        "cases": rows,
    }
    log.info(
        "check of %s on %d items: references correct %.0f%%, wrong answers incorrect %.0f%%",
        grader.label(),
        len(items),
        100 * report["reference_correct"],
        100 * report["wrong_incorrect"],
    )
    return report


def passes(check: dict[str, Any], floor: float) -> bool:
    """Whether a grader's check clears ``floor`` on references and on wrong answers alike."""
    return check["n_items"] > 0 and check["reference_correct"] >= floor and check["wrong_incorrect"] >= floor


def summary(check: dict[str, Any]) -> str:
    return (
        f"references judged correct {check['reference_correct']:.0%}, "
        f"wrong answers judged incorrect {check['wrong_incorrect']:.0%} on {check['n_items']} items"
    )


def choose_grader(
    judge: LLMClient,
    items: Sequence[DatasetItem],
    floor: float,
    max_items: int,
    progress: bool = False,
) -> tuple[Grader | None, dict[str, Any]]:
    """The grader whose verdicts count: the judge if it passes its check, else the deterministic grader if it
    does; ``(None, ...)`` when neither does. The dict says which decided and why, with both checks."""
    sample = evenly_spaced(list(items), max_items)
    judge_grader = JudgeGrader(judge)
    judge_check = check_grader(judge_grader, sample, judge.backend.spec.max_concurrency, progress, judge)
    decision: dict[str, Any] = {"floor": floor, "judge_check": judge_check}
    if passes(judge_check, floor):
        decision.update(used=judge_grader.label(), why=f"it passed its check ({summary(judge_check)})")
        return judge_grader, decision
    fallback = DeterministicGrader()
    own_check = check_grader(fallback, sample, 1, False)
    decision["deterministic_check"] = own_check
    failed = f"{judge_grader.label()} failed its check ({summary(judge_check)}; floor {floor:.0%})"
    if passes(own_check, floor):
        decision.update(used=fallback.label(), why=f"{failed}; it passed ({summary(own_check)})")
        return fallback, decision
    decision.update(used=None, why=f"{failed}, and so did the deterministic grader ({summary(own_check)})")
    return None, decision


def check_judge(
    client: LLMClient, items: Sequence[DatasetItem], max_concurrency: int = 4, progress: bool = False
) -> dict[str, Any]:
    """:func:`check_grader` of the judge model behind ``client``."""
    return check_grader(JudgeGrader(client), items, max_concurrency, progress, client)
