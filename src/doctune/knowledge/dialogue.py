"""Brainstorming dialogues (``doctune generate dialogue``): personas following a plan, every claim a cited source span.

:func:`plan_facts` picks per document ``dialogue.dialogues_per_document`` groups of ``facts_per_dialogue`` citable
sentences: the best-scored sentence of each stretch of the document (sentences naming one of ``dialogue.topics``
first), so that a dialogue discusses one part of the document and the dialogues cover all of it. The plans
(:data:`PLANS`): ``brainstorm`` (pitch, questions, answer, critique, revision) and ``debate`` (claim, counter,
reply, closing); with fewer facts than a plan names, the last fact stands in for the missing ones; each further
fact adds to the revision (brainstorm) or adds a question and answer to the closing (debate).

Casting (:func:`cast_personas`): the assistant is ``dialogue.assistant_persona``; the roles ``novice`` and
``sceptic`` go to the personas of those names; a role whose persona is not configured goes to the next configured
persona that is neither the assistant nor cast yet (in config order), else to one already cast, else (only the
assistant configured) to the role's own name.

Strategies, as for QA: ``span`` (the embedded small model; right by construction) builds the turns by templates,
every claim a fact sentence cited in its chunk and verified, and lets the model write only the novice's question
(one short call, kept only when ``span_items.question_problem`` finds nothing wrong and it adds no content word
that the sentence and the template lack, else the span's template question; a fact without an answer span, or
whose template runs past ``TEMPLATE_QUESTION_WORDS`` words, gets a plain "what else does it say" question).
``one_call`` (endpoints, larger models) asks for the whole dialogue in one structured call; each claim's quote is
located in the document and the claim verified; a turn with an unverified claim is removed (counted); a dialogue
left with fewer than ``MIN_TURNS`` turns or none of the assistant persona is rejected with its reason.

The word-overlap verifier checks that a claim's words are in its quote; a claim made only of quoted words can still
misstate it, which no word check catches, and a turn's words outside its claims are not checked.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from doctune.generate.cite_first import MIN_CHARS, candidate_sentences, sentence_score
from doctune.generate.span_items import PlannedItem, SpanItemWriter, cited_text
from doctune.generate.spans import choose_span
from doctune.knowledge.claims import cite_in_chunk, cite_in_chunks, verify_claim
from doctune.knowledge.dialogue_plans import PHRASES, PLANS
from doctune.llm import BackendError, CallParams, Message, StructuredOutputError
from doctune.prompts import render_prompt
from doctune.records import Chunk, Citation, Document
from doctune.textmatch import content_words

if TYPE_CHECKING:
    from doctune.config_knowledge import DialogueConfig
    from doctune.grounding import GroundingVerifier
    from doctune.llm.client import LLMClient

log = logging.getLogger(__name__)

_QUESTION_WORDS = frozenset(["what", "how", "why", "when", "which", "who", "whom", "where", "by", "in", "at", "for"])
#: a sentence opening with one of these leans on the sentence before it: a weaker fact on its own
_LEANING = frozenset(
    ["it", "its", "this", "these", "those", "they", "their", "them", "he", "she", "his", "her", "that", "such", "there"]
)
_BOILERPLATE = re.compile(r"copyright|©|permission|licen[cs]e|warm thanks", re.IGNORECASE)
#: facts longer than this (characters) score lower
LONG_FACT = 250
#: a question of the next fact is added to the critique only when it is this short (words)
CRITIQUE_QUESTION_WORDS = 16
#: a template question longer than this (words) reads badly: the novice asks the plain question instead
TEMPLATE_QUESTION_WORDS = 20
_SECTION_NUMBER = re.compile(r"^\d+(?:\.\d+)*\s")
#: a dialogue with fewer turns left is rejected
MIN_TURNS = 4
QUESTION_PARAMS = CallParams(temperature=0.0, max_tokens=48, seed=0)
ONE_CALL_PARAMS = CallParams(temperature=0.0, max_tokens=2000, seed=0)


@dataclass
class Claim:
    """A statement about the document, its citation (None: its quote was not found) and the verifier's decision."""

    text: str
    citation: Citation | None
    verified: bool
    reason: str = ""


@dataclass
class Turn:
    """One persona's turn: the plan step it fills, what it says, and the claims it makes about the document.
    ``method``: template, model (a model-written question that passed its check) or one_call."""

    speaker: str
    step: str
    text: str
    claims: list[Claim]
    method: str = "template"
    reason: str = ""


@dataclass
class Dialogue:
    """A dialogue about one document: its plan, the personas cast (the assistant first), its turns, and the turns
    removed because a claim failed (one_call)."""

    dialogue_id: str
    doc_id: str
    title: str
    plan: str
    topic: str
    turns: list[Turn]
    personas: list[str] = field(default_factory=list)
    removed_turns: list[Turn] = field(default_factory=list)
    strategy: str = "span"


class ClaimReply(BaseModel):
    """One claim in a one_call reply: the statement and a verbatim quote of a fact."""

    claim: str
    quote: str


class TurnReply(BaseModel):
    """One turn in a one_call reply."""

    speaker: str
    step: str = ""
    text: str
    claims: list[ClaimReply] = Field(default_factory=list)


class DialogueReply(BaseModel):
    """The one_call reply: the dialogue's turns in order."""

    turns: list[TurnReply]


def flat(text: str) -> str:
    """``text`` on one line."""
    return " ".join(text.split())


def _pick(options: Sequence[str], *key: str) -> str:
    """One of ``options``, chosen by a hash of ``key`` (the same dialogue always gets the same phrasing)."""
    digest = hashlib.sha256("|".join(key).encode()).hexdigest()
    return options[int(digest, 16) % len(options)]


def wanted_document(doc: Document, cfg: DialogueConfig) -> bool:
    """Whether ``dialogue.documents`` lets ``doc`` in (empty: every document)."""
    return not cfg.documents or any(part in doc.source_path for part in cfg.documents)


def topic_of(sentence: str, topics: Sequence[str]) -> str:
    """The first of ``topics`` whose content words all occur in ``sentence`` ("" when none does)."""
    have = content_words(sentence)
    return next((t for t in topics if content_words(t) and content_words(t) <= have), "")


def _citable(chunk: Chunk) -> list[str]:
    """Sentences of ``chunk`` worth a claim: ``candidate_sentences`` without a heading above them, none inside a
    code fence."""
    out = []
    for sentence in candidate_sentences(chunk):
        cited = cited_text(sentence)
        at = chunk.text.find(cited)
        in_fence = at < 0 or chunk.text[:at].count("```") % 2 == 1 or "```" in cited
        if len(cited) >= MIN_CHARS and not in_fence and not cited.lstrip().startswith(("#", "|", ">")):
            out.append(cited)
    return out


def fact_score(sentence: str) -> float:
    """How good a sentence is as a fact of a dialogue: ``sentence_score``, less when it opens with a pronoun (it
    leans on the sentence before), starts with a section number, runs past ``LONG_FACT`` characters or is boilerplate
    (copyright, licence)."""
    first = sentence.split(maxsplit=1)[0].lower().strip("\"'(") if sentence.split() else ""
    penalty = (4.0 if first in _LEANING else 0.0) + max(0, len(sentence) - LONG_FACT) / 25
    penalty += 6.0 if _SECTION_NUMBER.match(sentence) else 0.0  # a section heading run into the sentence (PDF)
    return sentence_score(sentence) - penalty - (10.0 if _BOILERPLATE.search(sentence) else 0.0)


def plan_facts(doc: Document, chunks: Sequence[Chunk], cfg: DialogueConfig) -> list[list[tuple[str, Chunk]]]:
    """Per dialogue of ``doc``, its facts: distinct citable sentences with their chunks, in document order (see the
    module docstring). Fewer dialogues when the document has too few sentences; none when it is filtered out."""
    if not wanted_document(doc, cfg):
        return []
    own = sorted((c for c in chunks if c.doc_id == doc.doc_id), key=lambda c: c.index)
    seen: set[str] = set()
    pool: list[tuple[str, Chunk]] = []
    for chunk in own:
        for sentence in _citable(chunk):
            key = flat(sentence).lower()
            if key not in seen and cite_in_chunk(sentence, chunk) is not None:
                seen.add(key)
                pool.append((sentence, chunk))
    per = cfg.facts_per_dialogue
    n_dialogues = min(cfg.dialogues_per_document, len(pool) // per) or (1 if pool else 0)
    needed = min(n_dialogues * per, len(pool))
    if cfg.topics:  # sentences naming a topic first, then the best others up to the number needed
        on_topic = [p for p in pool if topic_of(p[0], cfg.topics)]
        others = sorted((p for p in pool if p not in on_topic), key=lambda p: -fact_score(p[0]))
        keep = {id(p) for p in on_topic + others[: max(0, needed - len(on_topic))]}
        pool = [p for p in pool if id(p) in keep]
    bins = [pool[len(pool) * i // needed : len(pool) * (i + 1) // needed] for i in range(needed)]
    picked = [max(b, key=lambda p: (bool(topic_of(p[0], cfg.topics)), fact_score(p[0]))) for b in bins if b]
    return [picked[i * per : (i + 1) * per] for i in range(n_dialogues) if picked[i * per : (i + 1) * per]]


def cast_personas(cfg: DialogueConfig) -> dict[str, str]:
    """Plan role (assistant, novice, sceptic) -> persona name (the rules in the module docstring)."""
    cast = {"assistant": cfg.assistant_persona}
    others = [p for p in cfg.personas if p != cfg.assistant_persona]
    for role in ("novice", "sceptic"):
        if role in others:
            cast[role] = role
    for role in ("novice", "sceptic"):
        if role in cast:
            continue
        free = [p for p in others if p not in cast.values()]
        cast[role] = (free or others or [role])[0]
    return cast


def _claim(sentence: str, chunk: Chunk, verifier: GroundingVerifier | None) -> Claim:
    """A fact sentence as a claim: cited in its chunk and verified against the quote."""
    text = flat(sentence)
    citation = cite_in_chunk(sentence, chunk)
    if citation is None:
        return Claim(text, None, False, "quote not in its chunk")
    verdict = verify_claim(text, citation.quote, verifier=verifier)
    return Claim(text, citation, verdict.grounded, ", ".join(verdict.reasons))


def span_dialogue(
    dialogue_id: str,
    doc: Document,
    facts: Sequence[tuple[str, Chunk]],
    cfg: DialogueConfig,
    writer: SpanItemWriter | None = None,
    verifier: GroundingVerifier | None = None,
) -> Dialogue:
    """The dialogue of ``facts`` built from ``cfg.plan`` by templates; the novice's question may be the model's."""
    cast = cast_personas(cfg)
    claims = [_claim(s, c, verifier) for s, c in facts]
    topic = next((t for s, _ in facts if (t := topic_of(s, cfg.topics))), "")

    def fact(i: int) -> tuple[str, Claim]:
        j = min(i, len(facts) - 1)
        return flat(facts[j][0]), claims[j]

    def phrase(step: str, **values: str) -> str:
        bank = PHRASES[step.rstrip("0123456789")]
        return _pick(bank, dialogue_id, step).format(title=doc.title, **values)

    def ask_and_answer(i: int, step_q: str, step_a: str) -> list[Turn]:
        text, claim = fact(i)
        span = choose_span(text)
        if span is None or len(span.template.split()) > TEMPLATE_QUESTION_WORDS:  # a plain question the fact answers
            question, method, problem = phrase(f"ask{i}", about=topic or doc.title), "template", ""
            said = text
        else:
            question, method, problem = (span.template, "template", "")
            if writer is not None:
                question, method, problem = writer.write_question(PlannedItem(text, span))
                if method == "model" and (new := content_words(question) - content_words(f"{text} {span.template}")):
                    question, method, problem = span.template, "template", f"words not in the source: {sorted(new)}"
            said = phrase("answer", answer=span.answer[:1].upper() + span.answer[1:], fact=text)
        return [
            Turn(cast["novice"], step_q, question, [], method, problem),
            Turn(cast["assistant"], step_a, said, [claim]),
        ]

    turns: list[Turn] = []
    if cfg.plan == "brainstorm":
        first, c1 = fact(0)
        turns.append(Turn(cast["assistant"], "pitch", phrase("pitch", fact=first), [c1]))
        turns += ask_and_answer(1, "questions", "answer")
        span3 = choose_span(fact(2)[0]) if len(facts) > 2 else None
        asks = span3 is not None and span3.template.split()[0].lower() in _QUESTION_WORDS
        short = span3 is not None and len(span3.template.split()) <= CRITIQUE_QUESTION_WORDS
        more = f" And {_lower_question(span3.template)}" if span3 and asks and short else " And what else does it say?"
        turns.append(Turn(cast["sceptic"], "critique", phrase("critique", more=more), []))
        later = [fact(i) for i in range(2, max(3, len(facts)))]
        text = " ".join(phrase("revision", fact=t) if k == 0 else t for k, (t, _) in enumerate(later))
        text += "\n\nWhat the document supports:\n" + "\n".join(f"- {c.text}" for c in claims)
        turns.append(Turn(cast["assistant"], "revision", text, list(claims)))
    else:
        first, c1 = fact(0)
        second, c2 = fact(1)
        turns.append(Turn(cast["assistant"], "claim", phrase("claim", fact=first), [c1]))
        turns.append(Turn(cast["sceptic"], "counter", phrase("counter", fact=second), [c2]))
        turns.append(Turn(cast["assistant"], "reply", phrase("reply", first=first, fact=second), [c1, c2]))
        for i in range(2, max(3, len(facts))):
            turns += ask_and_answer(i, "closing", "closing")
    return Dialogue(dialogue_id, doc.doc_id, doc.title, cfg.plan, topic, turns, _cast_list(cast), strategy="span")


def _lower_question(question: str) -> str:
    """``question`` to follow "And": its first word lowercased when it is a question word (not a name)."""
    first, _, rest = question.partition(" ")
    return f"{first.lower()} {rest}" if first.lower() in _QUESTION_WORDS else question


def _cast_list(cast: dict[str, str]) -> list[str]:
    return list(dict.fromkeys(cast.values()))


def one_call_messages(doc: Document, facts: Sequence[tuple[str, Chunk]], cfg: DialogueConfig) -> list[Message]:
    """The prompt of one dialogue: personas with descriptions, the plan's steps, the numbered facts with quotes."""
    cast = cast_personas(cfg)
    personas = "\n".join(f"- {p}: {cfg.personas.get(p, 'takes part in the discussion')}" for p in _cast_list(cast))
    steps = "\n".join(f"{i}. {step}: {cast[role]} {what}" for i, (step, role, what) in enumerate(PLANS[cfg.plan], 1))
    facts_text = "\n".join(f'{i}. "{flat(s)}"' for i, (s, _) in enumerate(facts, 1))
    return [
        Message(role="system", content=render_prompt("dialogue_system", assistant=cfg.assistant_persona)),
        Message(
            role="user",
            content=render_prompt(
                "dialogue_user", title=doc.title, personas=personas, plan=cfg.plan, steps=steps, facts=facts_text
            ),
        ),
    ]


def check_reply(
    dialogue_id: str,
    doc: Document,
    chunks: Sequence[Chunk],
    reply: DialogueReply,
    cfg: DialogueConfig,
    verifier: GroundingVerifier | None = None,
) -> Dialogue:
    """The dialogue of a one_call reply: every quote located in the document's chunks and every claim verified;
    a turn with a failed claim, an unknown speaker or no text is moved to ``removed_turns`` with its reason."""
    own = [c for c in chunks if c.doc_id == doc.doc_id]
    known = set(cfg.personas) | {cfg.assistant_persona}
    kept: list[Turn] = []
    removed: list[Turn] = []
    for raw in reply.turns:
        claims = []
        for item in raw.claims:
            citation = cite_in_chunks(item.quote, own) if item.quote.strip() else None
            if citation is None:
                claims.append(Claim(flat(item.claim), None, False, "quote not in the document"))
                continue
            verdict = verify_claim(item.claim, citation.quote, verifier=verifier)
            claims.append(Claim(flat(item.claim), citation, verdict.grounded, ", ".join(verdict.reasons)))
        turn = Turn(raw.speaker.strip(), raw.step.strip(), raw.text.strip(), claims, "one_call")
        failed = [c for c in claims if not c.verified]
        if turn.speaker not in known:
            turn.reason = f"unknown speaker {turn.speaker!r}"
        elif not turn.text:
            turn.reason = "empty turn"
        elif failed:
            turn.reason = f"unverified claim ({failed[0].reason or 'not grounded'})"
        (removed if turn.reason else kept).append(turn)
    speakers = [cfg.assistant_persona, *(t.speaker for t in kept)]
    return Dialogue(
        dialogue_id, doc.doc_id, doc.title, cfg.plan, "", kept, list(dict.fromkeys(speakers)), removed, "one_call"
    )


def rejection(dialogue: Dialogue, assistant: str) -> str:
    """Why a dialogue is not usable ("" when it is): too few turns, or no turn of the assistant persona."""
    if len(dialogue.turns) < MIN_TURNS:
        return f"too few turns ({len(dialogue.turns)} left, {len(dialogue.removed_turns)} removed)"
    if not any(t.speaker == assistant for t in dialogue.turns):
        return f"no turn of the assistant persona {assistant!r}"
    return ""


def build_dialogues(
    docs: Sequence[Document],
    chunks: Sequence[Chunk],
    cfg: DialogueConfig,
    strategy: str,
    client: LLMClient | None = None,
    params: CallParams | None = None,
    verifier: GroundingVerifier | None = None,
    progress: bool = True,
    max_concurrency: int = 1,
) -> tuple[list[Dialogue], list[dict[str, str]]]:
    """The accepted dialogues of ``docs`` and an error per rejected dialogue or document without facts
    (``unit_id``, ``reason``, ``detail``; a rejected dialogue's claim counts in ``claims``/``verified_claims``).
    ``strategy``: span (``cite_first`` counts as span) or one_call (needs ``client``). With a client, one job per
    dialogue through :func:`doctune.jobs.run_jobs`."""
    from doctune.jobs import Job, run_jobs

    strategy = "span" if strategy in ("span", "cite_first") else strategy
    errors: list[dict[str, str]] = []
    units: list[tuple[str, Document, list[tuple[str, Chunk]]]] = []
    for doc in docs:
        if not wanted_document(doc, cfg):
            continue
        groups = plan_facts(doc, chunks, cfg)
        if not groups:
            errors.append({"unit_id": doc.doc_id, "reason": "no citable sentence", "detail": doc.title})
        units += [(f"{doc.doc_id}-{cfg.plan}-{i + 1}", doc, g) for i, g in enumerate(groups)]
    if strategy == "one_call" and client is None:
        raise ValueError("the one_call strategy needs a client")
    writer = SpanItemWriter(client, params or QUESTION_PARAMS, verifier, attempts=1) if client is not None else None

    def make(unit_id: str, doc: Document, facts: list[tuple[str, Chunk]]) -> Dialogue:
        if strategy != "one_call":
            return span_dialogue(unit_id, doc, facts, cfg, writer, verifier)
        messages = one_call_messages(doc, facts, cfg)
        reply = client.chat_structured(messages, DialogueReply, params or ONE_CALL_PARAMS)  # type: ignore[union-attr]
        dialogue = check_reply(unit_id, doc, chunks, reply, cfg, verifier)
        dialogue.topic = next((t for s, _ in facts if (t := topic_of(s, cfg.topics))), "")
        return dialogue

    jobs = [Job(uid, lambda u=uid, d=doc, f=facts: make(u, d, f)) for uid, doc, facts in units]
    results = run_jobs(jobs, max(1, max_concurrency), client, desc="dialogues", progress=progress)
    dialogues: list[Dialogue] = []
    for result in results:
        if result.error is not None:
            exc = result.error
            reason = exc.reason if isinstance(exc, StructuredOutputError) else getattr(exc, "kind", "failed")
            if not isinstance(exc, StructuredOutputError | BackendError):
                log.warning("dialogue %s failed: %s", result.key, exc)
            errors.append({"unit_id": result.key, "reason": reason, "detail": str(exc)[:300]})
            continue
        dialogue = result.value
        if why := rejection(dialogue, cfg.assistant_persona):
            claims = [c for t in [*dialogue.turns, *dialogue.removed_turns] for c in t.claims]
            detail = "; ".join(f"{t.speaker}/{t.step}: {t.reason}" for t in dialogue.removed_turns)[:300]
            counts = {"claims": str(len(claims)), "verified_claims": str(sum(c.verified for c in claims))}
            errors.append({"unit_id": dialogue.dialogue_id, "reason": why, "detail": detail, **counts})
            continue
        dialogues.append(dialogue)
    log.info("dialogues: %d accepted, %d rejected (%s)", len(dialogues), len(errors), strategy)
    return dialogues, errors
