"""Grounding check of a generated item against its citations.

A quote that exists in the source proves nothing by itself: "What is the maximum number of valves per
controller? -> 10" citing a sentence about an IP44 rating has a real quote and no support. An item is
grounded only when

(a) the answer's content words and numbers occur in the cited text (else ``ungrounded``),
(b) the answer adds content beyond the question (else ``echo``),
(c) the question asks about what the citation says (else ``unanswerable``),

and it is not the prompt's worked example copied back (``copied_example``). Two verifiers share one
interface: ``DeterministicVerifier`` (word overlap, always available) and ``LLMVerifier`` (asks the judge
model). ``measure`` scores a verifier on labelled pairs with "grounded" as the positive class.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from doctune.llm import BackendError, CallParams, LLMClient, Message, StructuredOutputError
from doctune.prompts import render_prompt
from doctune.textmatch import content_words, numbers, recall, words

log = logging.getLogger(__name__)

UNGROUNDED = "ungrounded"
UNANSWERABLE = "unanswerable"
ECHO = "echo"
COPIED_EXAMPLE = "copied_example"
VERIFIER_ERROR = "verifier_error"
REASONS = (UNGROUNDED, UNANSWERABLE, ECHO, COPIED_EXAMPLE, VERIFIER_ERROR)

#: the worked example of the generation prompt (a copy of ``generate.items._EXAMPLE_ITEM``'s strings:
#: this module must not import the generate package)
DEFAULT_EXAMPLE_TEXTS: tuple[str, ...] = (
    "Why was the Eiffel Tower not demolished in 1909 as originally planned?",
    "It had become valuable as a radiotelegraph station, so its permit was extended.",
    "Must say the tower was kept for its use as a radio (radiotelegraph) station. "
    "Mentioning the extended permit is a plus; other reasons such as tourism alone are incorrect.",
    "its value as a radiotelegraph station saved it from demolition",
)


@dataclass
class GroundingVerdict:
    """The outcome of one check: ``reasons`` holds stable codes (empty when grounded)."""

    grounded: bool
    reasons: list[str] = field(default_factory=list)
    detail: str = ""
    scores: dict[str, float] = field(default_factory=dict)


class GroundingVerifier(ABC):
    """Decides whether an item's question and answer are supported by its citations."""

    name: str = "verifier"

    @abstractmethod
    def verify(self, question: str, answer: str, citations: list[str], criteria: str = "") -> GroundingVerdict:
        """Check one item; never raises for a bad item (a failure is a verdict with reasons)."""


_SENTENCE_END = re.compile(r"(?<=[.;!?])\s+")


def _has_number(value: float, pool: set[float]) -> bool:
    return any(abs(value - other) <= 1e-9 * max(1.0, abs(value)) for other in pool)


class DeterministicVerifier(GroundingVerifier):
    """Word-overlap rules on stemmed content words and numbers (``doctune.textmatch``).

    - ``ungrounded``: a number of the answer is not among the citations' numbers, or less than
      ``answer_support`` of the answer's content words (those not already in the question) occur in the
      citations;
    - ``echo``: the answer has no content word or number that the question lacks;
    - ``unanswerable``: the question's own content words (not those it shares with the answer) meet the
      citations in fewer than ``question_overlap`` words and in less than ``question_share`` of them, or
      the question states a number the citations lack;
    - ``copied_example``: the question, answer or criteria repeat one of ``example_texts`` (at least
      ``example_similarity`` of the example's content words).
    """

    name = "deterministic"

    def __init__(
        self,
        answer_support: float = 0.75,
        question_overlap: int = 2,
        question_share: float = 0.5,
        example_similarity: float = 0.8,
        example_texts: Sequence[str] = DEFAULT_EXAMPLE_TEXTS,
    ):
        self.answer_support = answer_support
        self.question_overlap = question_overlap
        self.question_share = question_share
        self.example_similarity = example_similarity
        # each sentence of an example counts alone, so that a copied sentence of the criteria is caught
        self.example_texts = [s for t in example_texts for s in _SENTENCE_END.split(t) if s.strip()]
        self._example_words = [content_words(t) for t in self.example_texts]

    def _copied_example(self, *texts: str) -> float:
        """Highest share of one example's content words found in one of ``texts``."""
        best = 0.0
        for text in texts:
            if not text.strip():
                continue
            flat = " ".join(words(text))
            got = content_words(text)
            for example, ex_words in zip(self.example_texts, self._example_words, strict=True):
                if " ".join(words(example)) in flat:
                    return 1.0
                if len(ex_words) >= 3:
                    best = max(best, recall(ex_words, got))
        return best

    def verify(self, question: str, answer: str, citations: list[str], criteria: str = "") -> GroundingVerdict:
        cited = " ".join(citations)
        q_words, a_words, c_words = content_words(question), content_words(answer), content_words(cited)
        q_nums, a_nums, c_nums = numbers(question), numbers(answer), numbers(cited)

        new_words = a_words - q_words
        new_nums = {n for n in a_nums if not _has_number(n, q_nums)}
        missing_nums = sorted(n for n in a_nums if not _has_number(n, c_nums))
        support = recall(new_words, c_words) if new_words else (1.0 if a_words <= c_words else 0.0)
        q_own = q_words - a_words
        q_overlap = len(q_own & c_words)
        q_share = q_overlap / len(q_own) if q_own else 1.0
        q_missing_nums = sorted(n for n in q_nums if not _has_number(n, c_nums | a_nums))
        copied = self._copied_example(question, answer, criteria)
        scores = {
            "answer_support": round(support, 3),
            "answer_new_terms": float(len(new_words) + len(new_nums)),
            "answer_numbers_missing": float(len(missing_nums)),
            "question_overlap": float(q_overlap),
            "question_share": round(q_share, 3),
            "example_similarity": round(copied, 3),
        }

        reasons: list[str] = []
        details: list[str] = []
        if copied >= self.example_similarity:
            reasons.append(COPIED_EXAMPLE)
            details.append("repeats the prompt's example")
        if not new_words and not new_nums:
            reasons.append(ECHO)
            details.append("the answer adds nothing to the question")
        if missing_nums or support < self.answer_support:
            reasons.append(UNGROUNDED)
            if missing_nums:
                details.append(f"answer numbers not cited: {', '.join(f'{n:g}' for n in missing_nums)}")
            missing = sorted(new_words - c_words)
            if support < self.answer_support:
                details.append(f"answer words not cited: {', '.join(missing[:8])} (support {support:.2f})")
        enough = q_overlap >= self.question_overlap or q_share >= self.question_share
        if not enough or q_missing_nums:
            reasons.append(UNANSWERABLE)
            details.append(f"question not about the citation (overlap {q_overlap}, share {q_share:.2f})")
        verdict = GroundingVerdict(not reasons, reasons, "; ".join(details), scores)
        log.debug("grounding %s: %s", "ok" if verdict.grounded else reasons, verdict.detail)
        return verdict


class AnswerSupport:
    """The deterministic verifier's ``answer_support`` score alone (share of the answer's new content words found in
    the cited text), with each word's stem computed once: fast enough to order a review queue of 100k items.
    ``DeterministicVerifier.verify`` computes the same score (tests/test_reviews.py checks they agree)."""

    def __init__(self) -> None:
        self._memo: dict[str, str] = {}

    def content(self, text: str) -> set[str]:
        """``content_words(text)``, word by word through the memo."""
        tokens = words(text)
        memo = self._memo
        for word in set(tokens).difference(memo):
            memo[word] = next(iter(content_words(word)), "")  # one word: its stem, or "" when it carries no content
        return set(map(memo.__getitem__, tokens)) - {""}

    def __call__(self, question: str, answer: str, cited: str) -> float:
        q_words, a_words, c_words = self.content(question), self.content(answer), self.content(cited)
        new_words = a_words - q_words
        return recall(new_words, c_words) if new_words else (1.0 if a_words <= c_words else 0.0)


class GroundingReply(BaseModel):
    """The judge's reply: its reasoning first, then the two decisions."""

    reason: str = Field(description="One or two sentences on whether the quote supports the answer.")
    supported: bool = Field(description="The cited text states the answer.")
    question_about_citation: bool = Field(description="The question asks about what the cited text says.")


class LLMVerifier(GroundingVerifier):
    """Asks the judge model (prompts ``grounding_system``/``grounding_user``); a failed call is a verdict
    with reason ``verifier_error``, never an exception."""

    name = "llm"

    def __init__(self, client: LLMClient, params: CallParams | None = None):
        self.client = client
        self.params = params or CallParams(temperature=0, max_tokens=200)

    def messages(self, question: str, answer: str, citations: list[str], criteria: str = "") -> list[Message]:
        """The request of one check."""
        quotes = "\n".join(f"- {c.strip()}" for c in citations) or "- (none)"
        user = render_prompt(
            "grounding_user", question=question, answer=answer, citations=quotes, criteria=criteria or "(none)"
        )
        return [Message(role="system", content=render_prompt("grounding_system")), Message(role="user", content=user)]

    def verify(self, question: str, answer: str, citations: list[str], criteria: str = "") -> GroundingVerdict:
        msgs = self.messages(question, answer, citations, criteria)
        try:
            reply = self.client.chat_structured(msgs, GroundingReply, self.params)
        except (StructuredOutputError, BackendError) as exc:
            log.warning("grounding judge failed: %s", exc)
            return GroundingVerdict(False, [VERIFIER_ERROR], f"judge call failed: {exc}")
        reasons = []
        if not reply.supported:
            reasons.append(UNGROUNDED)
        if not reply.question_about_citation:
            reasons.append(UNANSWERABLE)
        scores = {"supported": float(reply.supported), "question_about_citation": float(reply.question_about_citation)}
        return GroundingVerdict(not reasons, reasons, reply.reason, scores)


class AllVerifiers(GroundingVerifier):
    """Grounded only when every verifier says so; the reasons of all of them."""

    def __init__(self, verifiers: Sequence[GroundingVerifier]):
        self.verifiers = list(verifiers)
        self.name = "+".join(v.name for v in self.verifiers)

    def verify(self, question: str, answer: str, citations: list[str], criteria: str = "") -> GroundingVerdict:
        verdicts = [v.verify(question, answer, citations, criteria) for v in self.verifiers]
        reasons = list(dict.fromkeys(r for v in verdicts for r in v.reasons))
        detail = "; ".join(f"{v.name}: {d.detail}" for v, d in zip(self.verifiers, verdicts, strict=True) if d.detail)
        return GroundingVerdict(not reasons, reasons, detail)


def check_sample(pairs: Sequence[Any], n: int) -> list[Any]:
    """``n`` labelled pairs, half grounded and half not, evenly spaced over each (so every kind of negative shows)."""
    positives = [p for p in pairs if _field(p, "label")]
    negatives = [p for p in pairs if not _field(p, "label")]

    def spaced(rows: list[Any], k: int) -> list[Any]:
        k = min(k, len(rows))
        return [rows[round(i * (len(rows) - 1) / max(1, k - 1))] for i in range(k)] if k else []

    return spaced(positives, n // 2) + spaced(negatives, n - n // 2)


def check_verifier(verifier: GroundingVerifier, pairs: Sequence[Any], floor: float) -> dict[str, Any]:
    """``measure`` on ``pairs`` plus ``passed``: precision and recall both at least ``floor``."""
    result = measure(verifier, pairs)
    result["passed"] = result["precision"] >= floor and result["recall"] >= floor
    result["errors"] = len(result["errors"])
    return result


def _field(pair: Any, name: str, default: Any = None) -> Any:
    return pair.get(name, default) if isinstance(pair, Mapping) else getattr(pair, name, default)


def measure(verifier: GroundingVerifier, pairs: Iterable[Any]) -> dict[str, Any]:
    """Score ``verifier`` on labelled pairs (mappings or objects with question, answer, citations,
    criteria, label and optionally id/kind). "grounded" is the positive class; ``reasons`` counts the
    reason codes given to the pairs judged not grounded; ``errors`` lists the misjudged pairs."""
    tp = fp = tn = fn = 0
    reasons: Counter[str] = Counter()
    errors: list[dict[str, Any]] = []
    for pair in pairs:
        verdict = verifier.verify(
            _field(pair, "question", ""),
            _field(pair, "answer", ""),
            list(_field(pair, "citations", []) or []),
            _field(pair, "criteria", "") or "",
        )
        label = bool(_field(pair, "label"))
        if verdict.grounded:
            tp, fp = (tp + 1, fp) if label else (tp, fp + 1)
        else:
            tn, fn = (tn + 1, fn) if not label else (tn, fn + 1)
            reasons.update(verdict.reasons)
        if verdict.grounded != label:
            errors.append(
                {"id": _field(pair, "id"), "kind": _field(pair, "kind"), "label": label, "reasons": verdict.reasons}
            )
    n = tp + fp + tn + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * rec / (precision + rec) if precision + rec else 0.0
    return {
        "verifier": verifier.name,
        "n": n,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": round(precision, 4),
        "recall": round(rec, 4),
        "f1": round(f1, 4),
        "accuracy": round((tp + tn) / n, 4) if n else 0.0,
        "reasons": dict(reasons),
        "errors": errors,
    }
