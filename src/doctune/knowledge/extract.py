"""Entity and relation extraction, one request per chunk, in the task shape the model can do.

- ``span`` (:class:`SpanExtractor`, what ``kg.strategy: auto`` gives a small local model): the entities and the
  relation candidates come from the written rules of :mod:`doctune.knowledge.mentions` and
  :mod:`doctune.knowledge.relations`; the model only names each relation, one short plain-text call per candidate.
  A label is kept when it is 1..``kg.max_relation_words`` words, names neither end, uses only the sentence's
  words and keeps one of the between-phrase's content words (if it has any); otherwise (or when the call fails) the
  phrase read between the two names is the label.
- ``one_call`` (:class:`OneCallExtractor`, endpoints and larger models): one structured call per chunk returns
  entities and relations with a quote each, GraphRAG-style; a relation without a quote, with a quote not in the
  chunk, or with an end that is not among the reply's entities is rejected with that reason.

Either way every relation passes :func:`~doctune.knowledge.relations.check_relation` (both ends named in the cited
span, the grounding verifier supports the statement) or is rejected with its reasons; nothing is kept uncited.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from doctune.config_knowledge import KGConfig
from doctune.jobs import Job, run_jobs
from doctune.knowledge.claims import cite_in_chunk, verify_claim
from doctune.knowledge.mentions import find_mentions, mention_id, term_of
from doctune.knowledge.names import name_key
from doctune.knowledge.relations import (
    RelationCandidate,
    check_relation,
    mentions_name,
    sentence_relations,
    text_units,
)
from doctune.knowledge.rows import ENTITY_TYPES, KGMention, KGRelation
from doctune.llm import BackendError, CallParams, LLMClient, Message, StructuredOutputError
from doctune.prompts import render_prompt
from doctune.records import Chunk, Citation, UnitOutcome
from doctune.textmatch import content_words

log = logging.getLogger(__name__)

DEFAULT_LABEL_TOKENS = 16
DEFAULT_EXTRACT_TOKENS = 1024

EntityType = Literal["person", "organization", "place", "publication", "software", "concept", "other"]
assert set(get_args(EntityType)) == set(ENTITY_TYPES)


class ExtractedEntity(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    type: EntityType
    description: str = ""

    @field_validator("type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class ExtractedRelation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source: str
    relation: str
    target: str
    description: str = ""
    quote: str = ""


class ExtractionReply(BaseModel):
    """The ``one_call`` reply: the chunk's entities and the relations between them, each with a quote."""

    model_config = ConfigDict(extra="ignore")

    entities: list[ExtractedEntity] = Field(default_factory=list)
    relations: list[ExtractedRelation] = Field(default_factory=list)


_EXAMPLE = (
    '{"entities": [{"name": "Ada Lovelace", "type": "person", "description": "Ada Lovelace wrote the first program."},'
    ' {"name": "Analytical Engine", "type": "other", "description": ""}],\n "relations": [{"source": "Ada Lovelace",'
    ' "relation": "wrote a program for", "target": "Analytical Engine", "description": "Ada Lovelace wrote a program'
    ' for the Analytical Engine.", "quote": "Ada Lovelace wrote a program for the Analytical Engine."}]}'
)


@dataclass
class ChunkExtraction:
    """What one chunk gave: mentions, accepted relations, rejected relations (dicts of strings) and the outcome."""

    mentions: list[KGMention]
    relations: list[KGRelation]
    rejected: list[dict[str, str]]
    outcome: UnitOutcome


@dataclass
class ExtractionResult:
    mentions: list[KGMention] = field(default_factory=list)
    relations: list[KGRelation] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    outcomes: list[UnitOutcome] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)


def relation_id(chunk_id: str, source: str, relation: str, target: str) -> str:
    """Stable id of a relation: a hash of its chunk and its three parts."""
    return hashlib.sha256("\x00".join([chunk_id, source, relation, target]).encode()).hexdigest()[:16]


def _rejection(chunk: Chunk, reason: str, detail: str, source: str, relation: str, target: str) -> dict[str, str]:
    return {
        "unit_id": chunk.chunk_id,
        "reason": reason,
        "detail": detail,
        "source": source,
        "relation": relation,
        "target": target,
    }


def _outcome(chunk: Chunk, mentions: list, relations: list, rejected: list, detail: str = "") -> UnitOutcome:
    found = len(mentions) + len(relations)
    if not found and not detail:
        detail = "no entity or relation found in the chunk"
    return UnitOutcome(
        unit_id=chunk.chunk_id,
        chunk_ids=[chunk.chunk_id],
        status="items" if found else "no_items",
        n_items=found,
        n_dropped=len(rejected),
        detail=detail,
    )


def clean_label(text: str) -> str:
    """The first line of a label reply, without quotes, a "Phrase:" prefix or a final full stop."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^\s*(?:phrase|answer|relation)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip("\"'`“”‘’*").strip().rstrip(".!;:,").strip()


def label_problem(label: str, source: str, target: str, sentence: str, max_words: int, phrase: str = "") -> str:
    """Why a model-written label is not kept ("" when it is): its length, an end's name in it, words not in the
    sentence, or (when the source ``phrase`` between the names has content words) none of them ("is" for "is a star
    at the centre of" would state another relation)."""
    n_words = len(label.split())
    if not 1 <= n_words <= max_words:
        return f"{n_words} words"
    if mentions_name(label, source) or mentions_name(label, target):
        return "names an endpoint"
    missing = content_words(label) - content_words(sentence)
    if missing:
        return f"words not in the sentence: {', '.join(sorted(missing)[:4])}"
    if content_words(phrase) and not content_words(label) & content_words(phrase):
        return "none of the phrase's words"
    return ""


class SpanExtractor:
    """Rules find the entities and relation candidates; the (small) model only words each relation's label."""

    def __init__(self, client: LLMClient, params: CallParams, cfg: KGConfig, verifier=None):
        self.client = client
        self.params = params
        self.cfg = cfg
        self.verifier = verifier
        #: per doc_id: (the document's terms, the document's text), set by :meth:`prepare`
        self.documents: dict[str, tuple[frozenset[str], str]] = {}

    def prepare(self, chunks: Sequence[Chunk]) -> None:
        """First pass over each document's chunks: its text and its terms, the lower-case concepts it defines or
        emphasises in any chunk (:func:`~doctune.knowledge.mentions.term_of`), found then in every chunk."""
        by_doc: dict[str, list[Chunk]] = {}
        for chunk in chunks:
            by_doc.setdefault(chunk.doc_id, []).append(chunk)
        for doc_id, doc_chunks in by_doc.items():
            text = "\n\n".join(c.text for c in sorted(doc_chunks, key=lambda c: c.index))
            terms: set[str] = set()
            for chunk in doc_chunks:
                try:
                    terms.update(term_of(m) for m in find_mentions(chunk, document_text=text))
                except Exception as exc:  # a chunk the rules cannot read gives no terms; its own job reports it
                    log.warning("kg terms of chunk %s not read: %s", chunk.chunk_id, exc)
            self.documents[doc_id] = (frozenset(terms - {""}), text)
            log.debug("kg terms of %s: %s", doc_id, sorted(terms - {""}))

    def label(self, cand: RelationCandidate) -> tuple[str, str, str]:
        """(label, label_method, note): the model's label when it passes the checks, else the source phrase."""
        system = render_prompt("kg_label_system")
        sentence = " ".join(cand.sentence.split())
        user = render_prompt("kg_label_user", sentence=sentence, source=cand.source, target=cand.target)
        messages = [Message(role="system", content=system), Message(role="user", content=user)]
        try:
            reply = self.client.chat(messages, self.params).text
        except BackendError as exc:
            return cand.phrase, "source", f"label call failed ({exc.kind}): {exc}"
        label = clean_label(reply)
        max_words = self.cfg.max_relation_words
        problem = label_problem(label, cand.source, cand.target, cand.sentence, max_words, cand.phrase)
        if problem:
            log.debug("label %r for %s -> %s not kept: %s", label, cand.source, cand.target, problem)
            return cand.phrase, "source", ""
        return label, "model", ""

    def extract(self, chunk: Chunk) -> ChunkExtraction:
        terms, text = self.documents.get(chunk.doc_id, (frozenset(), None))
        mentions = find_mentions(chunk, terms=terms, document_text=text)
        relations: list[KGRelation] = []
        rejected: list[dict[str, str]] = []
        notes: list[str] = []
        for cand in sentence_relations(chunk, mentions, self.cfg.max_relation_words):
            label, label_method, note = self.label(cand)
            if note:
                notes.append(note)
            citation = cite_in_chunk(cand.sentence, chunk)
            if citation is None:
                detail = cand.sentence[:200]
                rejected.append(_rejection(chunk, "quote_not_found", detail, cand.source, label, cand.target))
                continue
            reasons = check_relation(cand.source, label, cand.target, citation, verifier=self.verifier)
            if reasons:
                rejected.append(_rejection(chunk, reasons[0], "; ".join(reasons), cand.source, label, cand.target))
                continue
            relations.append(
                KGRelation(
                    relation_id=relation_id(chunk.chunk_id, cand.source, label, cand.target),
                    chunk_id=chunk.chunk_id,
                    doc_id=chunk.doc_id,
                    source=cand.source,
                    relation=label,
                    target=cand.target,
                    citation=citation,
                    method="rules",
                    label_method=label_method,
                )
            )
        detail = f"{len(notes)} label calls fell back to the source phrase: {notes[0]}" if notes else ""
        return ChunkExtraction(mentions, relations, rejected, _outcome(chunk, mentions, relations, rejected, detail))


class OneCallExtractor:
    """One structured call per chunk: the model lists entities and relations, each relation with its quote."""

    def __init__(self, client: LLMClient, params: CallParams, cfg: KGConfig, verifier=None, max_attempts: int = 3):
        self.client = client
        self.params = params
        self.cfg = cfg
        self.verifier = verifier
        self.max_attempts = max_attempts

    def messages(self, chunk: Chunk) -> list[Message]:
        system = render_prompt(
            "kg_extract_system", types=", ".join(ENTITY_TYPES), max_words=self.cfg.max_relation_words, example=_EXAMPLE
        )
        section = " > ".join(chunk.heading_path) or "(none)"
        user = render_prompt("kg_extract_user", section=section, text=chunk.text)
        return [Message(role="system", content=system), Message(role="user", content=user)]

    def _citation_of(self, chunk: Chunk, name: str) -> Citation | None:
        unit = next((u for u in text_units(chunk.text) if u.kind != "code" and mentions_name(u.text, name)), None)
        return cite_in_chunk(unit.text, chunk) if unit is not None else None

    def _mentions(self, chunk: Chunk, reply: ExtractionReply) -> list[KGMention]:
        mentions: list[KGMention] = []
        seen: set[str] = set()
        for entity in reply.entities:
            name = " ".join(entity.name.split())
            key = name_key(name)
            if not key or key in seen:
                continue
            seen.add(key)
            citation = self._citation_of(chunk, name)
            description = entity.description.strip()
            if description and (
                citation is None or verify_claim(description, citation.quote, name, self.verifier).reasons
            ):
                description = ""  # a description the cited sentence does not support is not kept
            mentions.append(
                KGMention(
                    mention_id=mention_id(chunk.chunk_id, name),
                    chunk_id=chunk.chunk_id,
                    doc_id=chunk.doc_id,
                    name=name,
                    type=entity.type,
                    description=description,
                    citation=citation,
                    method="model",
                )
            )
        return mentions

    def extract(self, chunk: Chunk) -> ChunkExtraction:
        try:
            reply = self.client.chat_structured(self.messages(chunk), ExtractionReply, self.params, self.max_attempts)
        except StructuredOutputError as exc:
            detail = f"{exc}; last reply: {(exc.last_reply or '')[:200]!r}"
            return ChunkExtraction([], [], [], _failed(chunk, exc.reason, detail))
        except BackendError as exc:
            return ChunkExtraction([], [], [], _failed(chunk, exc.kind, str(exc)))
        mentions = self._mentions(chunk, reply)
        known = {name_key(m.name) for m in mentions}
        relations: list[KGRelation] = []
        rejected: list[dict[str, str]] = []
        for rel in reply.relations:
            source, label, target = (" ".join(x.split()) for x in (rel.source, rel.relation, rel.target))
            citation = cite_in_chunk(rel.quote, chunk) if rel.quote.strip() else None
            if not rel.quote.strip():
                reasons, detail = ["no_citation"], "the relation quotes nothing"
            elif citation is None:
                reasons, detail = ["quote_not_found"], rel.quote[:200]
            elif name_key(source) not in known or name_key(target) not in known:
                reasons, detail = ["unknown_entity"], "an end is not among the reply's entities"
            else:
                reasons = check_relation(
                    source, label, target, citation, verifier=self.verifier, description=rel.description
                )
                detail = "; ".join(reasons)
            if reasons:
                rejected.append(_rejection(chunk, reasons[0], detail, source, label, target))
                continue
            assert citation is not None
            relations.append(
                KGRelation(
                    relation_id=relation_id(chunk.chunk_id, source, label, target),
                    chunk_id=chunk.chunk_id,
                    doc_id=chunk.doc_id,
                    source=source,
                    relation=label,
                    target=target,
                    description=rel.description.strip(),
                    citation=citation,
                    method="model",
                    label_method="model",
                )
            )
        return ChunkExtraction(mentions, relations, rejected, _outcome(chunk, mentions, relations, rejected))


def _failed(chunk: Chunk, status: str, detail: str) -> UnitOutcome:
    return UnitOutcome(unit_id=chunk.chunk_id, chunk_ids=[chunk.chunk_id], status=status, detail=detail)


def extract_chunks(
    chunks: Sequence[Chunk],
    client: LLMClient,
    strategy: str,
    cfg: KGConfig,
    params: CallParams | None = None,
    progress: bool = True,
    verifier=None,
) -> ExtractionResult:
    """Extract from every chunk through the shared job runner; a chunk whose job fails ends with ``backend_error``.
    The span strategy first reads each document's terms over all its chunks (:meth:`SpanExtractor.prepare`)."""
    if strategy == "span":
        span = SpanExtractor(client, params or CallParams(max_tokens=DEFAULT_LABEL_TOKENS), cfg, verifier)
        span.prepare(chunks)
        extractor: SpanExtractor | OneCallExtractor = span
    elif strategy == "one_call":
        extractor = OneCallExtractor(client, params or CallParams(max_tokens=DEFAULT_EXTRACT_TOKENS), cfg, verifier)
    else:
        raise ValueError(f"unknown extraction strategy {strategy!r} (span or one_call)")
    jobs = [Job(chunk.chunk_id, lambda chunk=chunk: extractor.extract(chunk)) for chunk in chunks]
    results = run_jobs(
        jobs, client.backend.spec.max_concurrency, client, desc=f"kg extract ({strategy})", progress=progress
    )
    out = ExtractionResult()
    for chunk, result in zip(chunks, results, strict=True):
        if result.error is not None or result.value is None:
            detail = f"{type(result.error).__name__}: {result.error}" if result.error else "no result"
            out.outcomes.append(_failed(chunk, "backend_error", detail))
            continue
        out.mentions.extend(result.value.mentions)
        out.relations.extend(result.value.relations)
        out.rejected.extend(result.value.rejected)
        out.outcomes.append(result.value.outcome)
    out.usage = client.usage.as_dict()
    log.info(
        "kg extract (%s): %d mentions, %d relations kept, %d rejected, from %d chunks",
        strategy,
        len(out.mentions),
        len(out.relations),
        len(out.rejected),
        len(chunks),
    )
    return out
