"""The small-model recipe (``generate.strategy: span``): right by construction.

For each chunk, doctune picks sentences worth asking about (``cite_first.sentence_score``) and, in each, the
answer span by written rules (``doctune.generate.spans``): the answer and the citation come from the source,
the criteria from the answer. The model only writes the question, in one short plain-text call; its question
is accepted when it starts with the span's question word, stands alone, does not give the answer away and
asks about the cited sentence. Otherwise the span's in-situ template question (the sentence with the
answer replaced by the question phrase) is used. Either way the item then passes the grounding check like
every other item (``ItemGenerator.verify``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from doctune.chunking.sentences import split_sentences
from doctune.generate.cite_first import MAX_CHARS, MIN_CHARS, sentence_score
from doctune.generate.spans import AnswerSpan, choose_span, derive_criteria, refers_to_source, span_difficulty
from doctune.grounding import DeterministicVerifier, GroundingVerifier
from doctune.llm import BackendError, CallParams, LLMClient, Message
from doctune.prompts import render_prompt
from doctune.records import Chunk
from doctune.textmatch import content_words, numbers, recall

log = logging.getLogger(__name__)

#: the worked example shown to the model (a domain no example document covers); a copy is rejected
EXAMPLE = {
    "draft": "A worker honey bee lives for how many weeks in summer?",
    "question_word": "How many",
    "question": "How many weeks does a worker honey bee live in summer?",
}
_PARAGRAPH = re.compile(r"\n\s*\n")
_TABLE_OR_CODE = re.compile(r"^\s*(\||```|~~~|<!--|>\s)")
#: share of the template's content words a model question must keep
MIN_TEMPLATE_RECALL = 0.75
_QUESTION_PHRASE_WORDS = content_words("how many much what year percentage reason should")


@dataclass(frozen=True)
class PlannedItem:
    """A cited text (a verbatim substring of the chunk) and the answer span chosen in it."""

    cited: str
    span: AnswerSpan


def cited_text(sentence: str) -> str:
    """The part of a split sentence to cite: its last paragraph (a heading above it is not part of the fact)."""
    return _PARAGRAPH.split(sentence.strip())[-1].strip()


def plan_chunk(chunk: Chunk, n: int) -> list[PlannedItem]:
    """Up to ``n`` (cited text, span) pairs of a chunk: best-scored sentences first, one per answer kind before
    a second of the same kind, returned in the order they appear."""
    planned: list[tuple[int, float, PlannedItem]] = []
    for position, sentence in enumerate(split_sentences(chunk.text)):
        cited = cited_text(sentence)
        if not (MIN_CHARS <= len(cited) <= MAX_CHARS) or _TABLE_OR_CODE.match(cited):
            continue
        if (span := choose_span(cited)) is not None:
            planned.append((position, sentence_score(cited), PlannedItem(cited, span)))
    chosen: list[tuple[int, float, PlannedItem]] = []
    kinds: set[str] = set()
    for rank in (0, 1):  # new kinds first, then the rest by score
        for entry in sorted(planned, key=lambda e: -e[1]):
            if len(chosen) >= n or entry in chosen or (rank == 0 and entry[2].span.kind in kinds):
                continue
            chosen.append(entry)
            kinds.add(entry[2].span.kind)
    return [e[2] for e in sorted(chosen, key=lambda e: e[0])]


def question_problem(
    question: str, span: AnswerSpan, cited: str, verifier: GroundingVerifier | None = None
) -> str | None:
    """Why a model-written question is not accepted (None: accepted). It must be one standalone question that
    starts with the span's question word, keeps most of the template's content words (so that it asks what the
    template asks), states no number the cited text lacks, does not give the answer away, and passes
    ``verifier`` with the span as its answer."""
    if not question.endswith("?") or not 3 <= len(question.split()) <= 30:
        return "not one question"
    if not any(question.lower().startswith(w.lower()) for w in span.question_words):
        return f"does not start with {span.question_words[0]!r}"
    if refers_to_source(question) or question.split()[1].lower() in ("it", "this", "they", "he", "she"):
        return "not standalone"
    if question.rstrip("?").strip().lower() == EXAMPLE["question"].rstrip("?").lower():
        return "copied example"
    allowed = content_words(cited.replace(span.answer, " ")) | content_words(span.template)
    if (content_words(span.answer) - allowed) & content_words(question) or numbers(span.answer) & numbers(question):
        return "gives the answer away"
    if numbers(question) - numbers(cited):
        return "states a number the source lacks"
    wanted = content_words(span.template) - _QUESTION_PHRASE_WORDS
    if recall(wanted, content_words(question)) < MIN_TEMPLATE_RECALL:
        return "asks about something else"
    if verifier is not None and (verdict := verifier.verify(question, span.answer, [cited])).reasons:
        return f"fails the grounding check ({', '.join(verdict.reasons)})"
    return None


def _clean(reply: str) -> str:
    line = next((ln for ln in reply.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^\s*(question\s*:|q\s*:)\s*", "", line, flags=re.I).strip().strip("\"'“”*").strip()
    return line[: line.index("?") + 1] if "?" in line else line


class SpanItemWriter:
    """Raw items (the dicts ``ItemGenerator.verify`` takes) for one chunk, by the span recipe."""

    def __init__(
        self, client: LLMClient, params: CallParams, verifier: GroundingVerifier | None = None, attempts: int = 3
    ):
        self.client = client
        self.params = params
        self.attempts = attempts
        self.verifier = verifier or DeterministicVerifier()

    def _messages(self, span: AnswerSpan) -> list[Message]:
        def user(draft: str, word: str) -> Message:
            return Message(role="user", content=render_prompt("span_question_user", draft=draft, question_word=word))

        return [
            Message(role="system", content=render_prompt("span_question_system")),
            user(EXAMPLE["draft"], EXAMPLE["question_word"]),
            Message(role="assistant", content=EXAMPLE["question"]),
            user(span.template, span.question_words[0]),
        ]

    def write_question(self, item: PlannedItem) -> tuple[str, str, str]:
        """(question, "model" | "template", why the model's last question was refused or ""). The first request is
        greedy; each refused one is asked again with sampling (another seed), up to ``attempts`` in all."""
        span = item.span
        problem = ""
        for attempt in range(self.attempts):
            params = (
                self.params if attempt == 0 else self.params.model_copy(update={"temperature": 0.8, "seed": attempt})
            )
            try:
                question = _clean(self.client.chat(self._messages(span), params).text)
                problem = question_problem(question, span, item.cited, self.verifier)
            except BackendError as exc:  # the template still makes an item; the failure is counted
                problem = f"backend {exc.kind}"
                break
            if problem is None:
                return question, "model", ""
            log.debug("model question %r refused (%s)", question, problem)
        return span.template, "template", problem or "no attempt"

    def raw_items(self, chunk: Chunk, n: int) -> tuple[list[dict], list[str]]:
        """(raw items, the reasons model questions were refused)."""
        items, refusals = [], []
        for planned in plan_chunk(chunk, n):
            question, source, problem = self.write_question(planned)
            if problem:
                refusals.append(problem)
            items.append(
                {
                    "question": question,
                    "answer": planned.span.answer,
                    "evaluation_criteria": derive_criteria(planned.span, question),
                    "difficulty": span_difficulty(planned.span, question, planned.cited),
                    "category": planned.span.category,
                    "citations": [planned.cited],
                    "question_source": source,
                    "alt_question": (planned.span.template if source == "model" else planned.span.alt) or None,
                }
            )
        return items, refusals
