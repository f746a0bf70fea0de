"""Generating items for one unit (a chunk, or a group of chunks): the request, the reply's
validation, citation checks, and the outcome recorded whatever happens."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from doctune.chunking.sentences import split_sentences
from doctune.config import GenerateConfig, MultihopConfig
from doctune.generate.citations import locate_citation
from doctune.generate.cite_first import pick_group_sentences, pick_sentences
from doctune.generate.schema import item_reply_model, single_item_model
from doctune.generate.span_items import SpanItemWriter
from doctune.generate.spans import refers_to_source
from doctune.grounding import DeterministicVerifier, GroundingVerifier
from doctune.llm import BackendError, CallParams, LLMClient, Message, StructuredOutputError
from doctune.prompts import render_prompt
from doctune.records import Chunk, Citation, QAItem, UnitOutcome

MIN_SENTENCE_CHARS = 20
_EXAMPLE_ITEM = {
    "reasoning": "The passage explains why the tower was nearly demolished; that is its key fact.",
    "question": "Why was the Eiffel Tower not demolished in 1909 as originally planned?",
    "answer": "It had become valuable as a radiotelegraph station, so its permit was extended.",
    "evaluation_criteria": "Must say the tower was kept for its use as a radio (radiotelegraph) station. "
    "Mentioning the extended permit is a plus; other reasons such as tourism alone are incorrect.",
    "difficulty": 4,
    "category": "reasoning",
    "citations": ["its value as a radiotelegraph station saved it from demolition"],
}


@dataclass
class Unit:
    """One generation request's material."""

    unit_id: str
    kind: str  # qa | multihop
    chunks: list[Chunk]
    title: str
    summary: str


@dataclass
class UnitResult:
    items: list[QAItem]
    outcome: UnitOutcome
    drop_reasons: Counter = field(default_factory=Counter)
    #: every item proposed and not kept: {"unit_id", "reason", "question", "answer"}
    rejected: list[dict] = field(default_factory=list)


def citable_sentences(chunks: list[Chunk]) -> list[str]:
    """Distinct sentences of the chunks long enough to cite (verbatim substrings of the chunks).

    Sentences with a double quote or backslash are left out: llama-cpp-python's schema-to-grammar
    conversion mis-escapes them in an enum (a broken grammar, then a crash)."""
    seen: dict[str, None] = {}
    for chunk in chunks:
        for sentence in split_sentences(chunk.text):
            if len(sentence) >= MIN_SENTENCE_CHARS and '"' not in sentence and "\\" not in sentence:
                seen.setdefault(sentence, None)
    return list(seen)


class ItemGenerator:
    """Builds requests for units and turns replies into verified ``QAItem`` rows. Thread-safe."""

    def __init__(
        self,
        cfg: GenerateConfig,
        client: LLMClient,
        params: CallParams,
        multihop: MultihopConfig | None = None,
        verifier: GroundingVerifier | None = None,
        strategy: str | None = None,
    ):
        self.cfg = cfg
        #: the strategy in force (``generate.strategy`` with ``auto`` resolved by ``resolve_strategy``)
        self.strategy = strategy or (cfg.strategy if cfg.strategy != "auto" else "one_call")
        self.multihop = multihop or MultihopConfig()
        self.client = client
        self.params = params
        self.verifier = verifier or DeterministicVerifier()

    def _example_item(self) -> dict[str, Any]:
        example = dict(_EXAMPLE_ITEM)
        if not self.cfg.include_reasoning:
            example.pop("reasoning")
        return example

    def _example(self) -> str:
        return json.dumps({"items": [self._example_item()]}, indent=2)

    def _citation_rule(self) -> str:
        if self.cfg.citation_mode == "sentence":
            return "copy one to three whole sentences of the text, exactly as written, that support the answer."
        return "one to three short quotes copied word for word from the text that support the answer."

    def request(self, unit: Unit) -> tuple[list[Message], type[BaseModel]]:
        """The messages and the reply model of a unit's request."""
        max_items = self.cfg.max_items_per_chunk if unit.kind == "qa" else self.multihop.max_items_per_group
        min_items = self.cfg.min_items_per_chunk if unit.kind == "qa" else 0
        sentences = citable_sentences(unit.chunks) if self.cfg.citation_mode == "sentence" else None
        reply_model = item_reply_model(
            tuple(self.cfg.categories), max_items, self.cfg.include_reasoning, tuple(sentences or ()) or None, min_items
        )
        common = {
            "max_items": max_items,
            "categories": ", ".join(self.cfg.categories),
            "citation_rule": self._citation_rule(),
            "example": self._example(),
        }
        if unit.kind == "qa":
            system = render_prompt("qa_system", **common)
            user = render_prompt("qa_user", title=unit.title, summary=unit.summary, passage=unit.chunks[0].text)
        else:
            system = render_prompt("multihop_system", k=len(unit.chunks), **common)
            passages = "\n\n".join(f'Passage {i + 1}:\n"""\n{c.text}\n"""' for i, c in enumerate(unit.chunks))
            user = render_prompt("multihop_user", title=unit.title, summary=unit.summary, passages=passages)
        return [Message(role="system", content=system), Message(role="user", content=user)], reply_model

    def cited_request(self, unit: Unit, sentences: list[str]) -> tuple[list[Message], type[BaseModel]]:
        """A cite-first request: the passage(s), the chosen sentences, and a one-item reply model."""
        example = {k: v for k, v in self._example_item().items() if k != "citations"}
        system = render_prompt(
            "cited_system", categories=", ".join(self.cfg.categories), example=json.dumps(example, indent=2)
        )
        passage = "\n\n".join(c.text for c in unit.chunks)
        listing = "\n".join(f"- {s}" for s in sentences)
        user = render_prompt("cited_user", title=unit.title, passage=passage, sentences=listing)
        reply_model = single_item_model(tuple(self.cfg.categories), self.cfg.include_reasoning)
        return [Message(role="system", content=system), Message(role="user", content=user)], reply_model

    def _ask(self, messages: list[Message], reply_model: type[BaseModel]) -> tuple[BaseModel | None, str, str]:
        """(reply, "", "") or (None, failure status, detail); never raises for model or backend failures."""
        try:
            return self.client.chat_structured(messages, reply_model, self.params, self.cfg.max_attempts), "", ""
        except StructuredOutputError as exc:
            return None, exc.reason, f"{exc}; last reply: {(exc.last_reply or '')[:200]!r}"
        except BackendError as exc:
            return None, exc.kind, str(exc)

    def generate(self, unit: Unit) -> UnitResult:
        """Ask, validate, verify. Never raises for a model or backend failure: the outcome says why."""
        if self.strategy == "span" and unit.kind == "qa":
            return self._generate_span(unit)
        if self.strategy in ("cite_first", "span"):  # groups of chunks: doctune picks one sentence per chunk
            return self._generate_cite_first(unit)
        reply, status, detail = self._ask(*self.request(unit))
        if reply is None:
            chunk_ids = [c.chunk_id for c in unit.chunks]
            return UnitResult([], UnitOutcome(unit_id=unit.unit_id, chunk_ids=chunk_ids, status=status, detail=detail))
        return self.verify(unit, reply.model_dump()["items"])

    def _generate_span(self, unit: Unit) -> UnitResult:
        writer = SpanItemWriter(
            self.client, self.params.model_copy(update={"max_tokens": 48}), self.verifier, self.cfg.max_attempts
        )
        raw_items, refusals = writer.raw_items(unit.chunks[0], self.cfg.max_items_per_chunk)
        result = self.verify(unit, raw_items)
        if not raw_items:
            result.outcome.detail = "no sentence with an answer span (see doctune.generate.spans)"
        if refusals:
            result.outcome.detail = "; ".join(
                filter(None, [result.outcome.detail, f"{len(refusals)} model questions replaced by the template"])
            )
        return result

    def _generate_cite_first(self, unit: Unit) -> UnitResult:
        if unit.kind == "qa":
            plans = [[s] for s in pick_sentences(unit.chunks[0], self.cfg.max_items_per_chunk)]
        else:
            plans = [group] if (group := pick_group_sentences(unit.chunks)) else []
        raw_items: list[dict[str, Any]] = []
        failures: Counter = Counter()
        last_detail = ""
        for sentences in plans:
            reply, status, detail = self._ask(*self.cited_request(unit, sentences))
            if reply is None:
                failures[status] += 1
                last_detail = detail
                continue
            raw_items.append({**reply.model_dump(), "citations": sentences})
        result = self.verify(unit, raw_items)
        if not plans:
            result.outcome.detail = "no citable sentences in the chunk"
        elif failures and not raw_items:
            result.outcome.status = failures.most_common(1)[0][0]
            result.outcome.detail = last_detail
        elif failures:
            result.drop_reasons.update(failures)
            result.outcome.n_dropped += sum(failures.values())
            failed = ", ".join(f"{n} {why}" for why, n in failures.items())
            result.outcome.detail = "; ".join(filter(None, [result.outcome.detail, f"failed requests: {failed}"]))
        return result

    def verify(self, unit: Unit, raw_items: list[dict[str, Any]]) -> UnitResult:
        """Locate citations, drop or flag what fails, and record the outcome."""
        chunk_ids = [c.chunk_id for c in unit.chunks]
        kept: list[QAItem] = []
        drops: Counter = Counter()
        seen_questions: set[str] = set()
        rejected: list[dict] = []
        for raw in raw_items:
            question = raw["question"].strip()

            def reject(code: str, reasons: str = "", raw: dict = raw, question: str = question) -> None:
                drops[code] += 1
                row = {"unit_id": unit.unit_id, "reason": reasons or code, "question": question}
                rejected.append({**row, "answer": str(raw.get("answer", "")).strip()})

            if refers_to_source(question):
                reject("not_standalone")
                continue
            if question.lower() == _EXAMPLE_ITEM["question"].lower():
                reject("copied_example")
                continue
            if question.lower() in seen_questions:
                reject("duplicate")
                continue
            citations, missing = self._locate(unit, raw["citations"])
            verified = not missing and bool(citations)
            if (
                unit.kind == "multihop"
                and verified
                and len({c.chunk_id for c in citations}) < self._chunks_to_cite(unit)
            ):
                reject("too_few_chunks_cited")
                continue
            if not verified and self.cfg.unverified == "drop":
                reject("citations_unverified")
                continue
            grounding: list[str] = []
            if verified:  # a found quote proves nothing alone: it must support the answer to this question
                verdict = self.verifier.verify(
                    question, raw["answer"], [c.quote for c in citations], raw["evaluation_criteria"]
                )
                grounding = verdict.reasons
                if grounding and self.cfg.grounding == "drop":
                    reject(grounding[0], ", ".join(grounding))
                    continue
            seen_questions.add(question.lower())
            kept.append(
                QAItem(
                    item_id=hashlib.sha256(f"{unit.unit_id}\n{question}".encode()).hexdigest()[:16],
                    kind=unit.kind,
                    unit_id=unit.unit_id,
                    doc_ids=sorted({c.doc_id for c in unit.chunks}),
                    chunk_ids=chunk_ids,
                    k=len(unit.chunks),
                    question=question,
                    answer=raw["answer"].strip(),
                    evaluation_criteria=raw["evaluation_criteria"].strip(),
                    difficulty=raw["difficulty"],
                    category=raw["category"],
                    citations=citations,
                    unverified_quotes=missing,
                    citations_verified=verified,
                    grounding=grounding,
                    reasoning=raw.get("reasoning"),
                    question_source=raw.get("question_source"),
                    alt_question=raw.get("alt_question"),
                    model=self.client.backend.label(),
                )
            )
        if kept:
            status = "items"
        elif not raw_items:
            status = "no_items"
        else:
            status = drops.most_common(1)[0][0]
        detail = ", ".join(f"{n} {why}" for why, n in drops.items())
        outcome = UnitOutcome(
            unit_id=unit.unit_id,
            chunk_ids=chunk_ids,
            status=status,
            n_items=len(kept),
            n_dropped=sum(drops.values()),
            detail=f"dropped: {detail}" if detail else "",
        )
        return UnitResult(kept, outcome, drops, rejected)

    def _chunks_to_cite(self, unit: Unit) -> int:
        return len(unit.chunks) if self.multihop.require_all_cited else 2

    def _locate(self, unit: Unit, quotes: list[str]) -> tuple[list[Citation], list[str]]:
        citations: list[Citation] = []
        missing: list[str] = []
        for quote in quotes:
            best = None
            for chunk in unit.chunks:
                match = locate_citation(quote, chunk.text, self.cfg.fuzzy_threshold)
                if match is not None and (best is None or match.score > best[1].score):
                    best = (chunk, match)
            if best is None:
                missing.append(quote)
                continue
            chunk, match = best
            citations.append(
                Citation(
                    quote=match.quote,
                    doc_id=chunk.doc_id,
                    chunk_id=chunk.chunk_id,
                    char_start=chunk.char_start + match.start,
                    char_end=chunk.char_start + match.end,
                    method=match.method,
                    score=match.score,
                )
            )
        return citations, missing
