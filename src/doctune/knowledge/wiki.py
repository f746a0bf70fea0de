"""The auto-wiki: an article per important entity of the knowledge graph, every sentence backed by a verified
citation, ``[[links]]`` to the other entities, grown by a spider that follows those links within a budget.

Two ways to write an article:

* ``span`` (the embedded small model; no model call, right by construction): the sentences come from the sources:
  the entity's lead (the source sentence its citation sits in), one relation statement per edge touching it ("Source
  relation Target.", most cited first, with the edge's first citation) and further verbatim source sentences naming
  it. Every sentence is checked with :func:`~doctune.knowledge.claims.verify_claim` against its quote;
* ``one_call`` (endpoints, larger models): the model writes the article from the same material as numbered facts,
  each sentence ending with ``[n]``; a sentence is kept only when fact n's quote supports it. A failed call, or too
  few kept sentences, gives the span article instead (recorded).

The word-overlap verifier catches sentences whose words are not in their quote; it cannot catch a wrong relation
built only from quoted words, which is why the span article (relation statements from the graph, source sentences
verbatim) is what small models get.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from doctune.chunking.sentences import sentence_ends, split_sentences
from doctune.config_knowledge import WikiConfig
from doctune.grounding import GroundingVerifier
from doctune.jobs import Job, JobResult, run_jobs
from doctune.knowledge.claims import cite_in_chunk, verify_claim
from doctune.knowledge.graph import citation_text, edge_statement
from doctune.knowledge.names import name_key
from doctune.knowledge.rows import KGEdge, KGNode, WikiArticle, WikiSentence
from doctune.knowledge.wiki_links import NOTES_HEADING, Linker, unlink
from doctune.llm.base import CallParams, Message
from doctune.llm.client import LLMClient
from doctune.prompts import render_prompt
from doctune.records import Chunk, Citation
from doctune.textmatch import words

log = logging.getLogger(__name__)

ONE_CALL_PARAMS = CallParams(temperature=0.0, max_tokens=400, seed=0)
_FACT_REFS = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_REFS_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)")
_NOISE = re.compile(r"^\s*(\||```|~~~|#|>)")  # table rows, code fences, headings, quotes: not prose
MIN_SENTENCE_CHARS, MAX_SENTENCE_CHARS = 20, 400


# -- seeds ----------------------------------------------------------------------------------------------------------
def _ranked(nodes: Sequence[KGNode]) -> list[KGNode]:
    return sorted(nodes, key=lambda n: (-n.degree, -n.mentions, n.name.lower(), n.node_id))


def match_topic(nodes: Sequence[KGNode], topic: str) -> str | None:
    """The node whose name or an alias has the topic's name key (the most connected one), or None."""
    key = name_key(topic)
    return next((n.node_id for n in _ranked(nodes) if key in {name_key(f) for f in [n.name, *n.aliases]}), None)


def choose_seeds(nodes: Sequence[KGNode], cfg: WikiConfig) -> list[str]:
    """The node_ids articles start from: ``cfg.topics`` found in the graph first, then the most connected nodes
    (degree, then mentions), ``cfg.seed_articles`` in all."""
    seeds: list[str] = []
    for topic in cfg.topics:
        found = match_topic(nodes, topic)
        if found is None:
            log.warning("wiki topic %r is not a name of the graph", topic)
        elif found not in seeds:
            seeds.append(found)
    seeds += [n.node_id for n in _ranked(nodes) if n.node_id not in seeds]
    return seeds[: cfg.seed_articles]


# -- material -------------------------------------------------------------------------------------------------------
@dataclass
class _Line:
    """A candidate sentence of an article: its text (links added later), its citation and where it goes."""

    text: str
    citation: Citation
    section: str  # lead | relation | source
    topic: str


def _flat(text: str) -> str:
    return " ".join(text.split())


def _heading_line(line: str, next_line: str) -> bool:
    """Whether a line of extracted text is a heading glued to the sentence after it: no closing punctuation, the next
    line starts with a capital, and the line is numbered ("1.2 Related software") or mostly capitalised words or
    numbers (ending in one)."""
    words, nxt = line.split(), next_line.strip()
    if not words or not nxt or not (nxt[0].isupper() or nxt[0].isdigit()) or line.rstrip()[-1] in ".,;:!?-–":
        return False
    if re.match(r"\d+(\.\d+)*\.?$", words[0]):  # a numbered section title: "1.2 Related software"
        return True
    caps = sum(1 for w in words if w[0].isupper() or w[0].isdigit() or not w[0].isalnum())
    last = words[-1]
    return caps >= 0.6 * len(words) and (last[0].isupper() or last[0].isdigit() or last.endswith(")"))


def trim_headings(sentence: str) -> str:
    """A source sentence without what the text puts before it that is not part of it: lines up to a blank line or a
    Markdown heading, and heading lines of PDF text ("1\nPreface\nThis ..." -> "This ..."). The rest is a verbatim
    part of the sentence."""
    lines = sentence.split("\n")
    cut = 0
    for i, line in enumerate(lines[:-1]):
        following = next((x for x in lines[i + 1 :] if x.strip()), "")
        if not line.strip() or line.lstrip().startswith("#") or _heading_line(line, following):
            cut = i + 1
    return "\n".join(lines[cut:]).strip()


def _sentence_at(chunk: Chunk, citation: Citation) -> Citation | None:
    """The citation of the whole source sentence of ``chunk`` that the citation starts in (headings trimmed)."""
    offset, pos = citation.char_start - chunk.char_start, 0
    for end in [*sentence_ends(chunk.text), len(chunk.text)]:
        if pos <= offset < end and (sentence := trim_headings(chunk.text[pos:end])):
            return cite_in_chunk(sentence, chunk)
        pos = end
    return None


def _material(
    node: KGNode, nodes_by_id: Mapping[str, KGNode], edges: Sequence[KGEdge], chunks_by_id: Mapping[str, Chunk], linker
) -> tuple[list[_Line], list[_Line], list[_Line]]:
    """Lead candidates, relation statements (most cited first) and source sentences naming the node."""
    leads: list[_Line] = []
    if node.citation is not None:
        chunk = chunks_by_id.get(node.citation.chunk_id)
        whole = _sentence_at(chunk, node.citation) if chunk is not None else None
        leads.append(_Line(_flat((whole or node.citation).quote), whole or node.citation, "lead", node.name))
    if node.description.strip():
        own = [chunks_by_id[c] for c in node.chunk_ids if c in chunks_by_id]
        cited = next((c for chunk in own if (c := cite_in_chunk(node.description, chunk)) is not None), None)
        if cited is not None and cited.method == "exact":
            leads.append(_Line(_flat(node.description), cited, "lead", node.name))
    names = {n: nodes_by_id[n].name for n in nodes_by_id}
    touching = [
        e
        for e in edges
        if node.node_id in (e.source, e.target) and e.citations and e.source in names and e.target in names
    ]
    touching.sort(key=lambda e: (-len(e.citations), -e.weight, e.edge_id))
    relations = [_Line(edge_statement(e, names), e.citations[0], "relation", node.name) for e in touching]
    sources: list[_Line] = []
    chunks = sorted((chunks_by_id[c] for c in node.chunk_ids if c in chunks_by_id), key=lambda c: (c.doc_id, c.index))
    for chunk in chunks:
        for sentence in map(trim_headings, split_sentences(chunk.text)):
            if not MIN_SENTENCE_CHARS <= len(sentence) <= MAX_SENTENCE_CHARS or _NOISE.match(sentence):
                continue
            form = linker.mention(sentence, node.node_id)
            if form is not None and (cited := cite_in_chunk(sentence, chunk)) is not None:
                sources.append(_Line(_flat(sentence), cited, "source", _flat(form)))
    return leads, relations, sources


def _key(text: str) -> str:
    return " ".join(words(text))


def _markdown(title: str, lines: Sequence[tuple[_Line, str]]) -> str:
    """``# Title``, the lead paragraph, ``## Relations`` bullets, ``## In the sources`` paragraphs (one per chunk),
    every sentence followed by its footnote marker, and the notes (quote and where it is from)."""
    parts, notes = [f"# {title}"], []
    section, chunk = None, None
    for n, (line, linked) in enumerate(lines, start=1):
        notes.append(f"[^{n}]: {citation_text(line.citation)}")
        text = f"{linked}[^{n}]"
        if line.section != section:
            section, chunk = line.section, None
            if section == "relation":
                parts.append("## Relations")
            elif section == "source":
                parts.append("## In the sources")
            parts.append("")
        if section == "relation":
            parts[-1] += ("\n" if parts[-1] else "") + f"- {text}"
        elif section == "source" and chunk is not None and line.citation.chunk_id != chunk:
            parts.append(text)
        else:
            parts[-1] += (" " if parts[-1] else "") + text
        chunk = line.citation.chunk_id
    return "\n\n".join([*parts, NOTES_HEADING, "\n".join(notes)]) + "\n"


def _article(node, lines: Sequence[_Line], linker: Linker, dropped: int) -> WikiArticle:
    linked, links = [], []
    for line in lines:
        text, ids = linker.link(line.text, node.node_id)
        linked.append((line, text))
        links += [i for i in ids if i not in links]
    return WikiArticle(
        article_id=linker.ids[node.node_id],
        title=node.name,
        node_id=node.node_id,
        markdown=_markdown(node.name, linked),
        sentences=[WikiSentence(text=line.text, citation=line.citation, verified=True) for line in lines],
        links=links,
        dropped_sentences=dropped,
    )


# -- writing --------------------------------------------------------------------------------------------------------
def _span_article(node, nodes_by_id, edges, chunks_by_id, cfg: WikiConfig, verifier, linker):
    leads, relations, sources = _material(node, nodes_by_id, edges, chunks_by_id, linker)
    kept: list[_Line] = []
    seen: set[str] = set()
    dropped = 0

    def take(line: _Line) -> bool:
        nonlocal dropped
        key = _key(line.text)
        if not key or key in seen:
            return False
        seen.add(key)
        if verify_claim(line.text, line.citation.quote, topic=line.topic, verifier=verifier).grounded:
            kept.append(line)
            return True
        dropped += 1
        return False

    lead = next((line for line in leads if take(line)), None)
    if lead is None:  # the first verified source sentence naming the node leads instead
        lead = next((line for line in sources if take(line)), None)
        if lead is not None:
            lead.section = "lead"
    budget = cfg.max_sentences - len(kept)
    rel_iter, src_iter = iter(relations), iter(s for s in sources if s is not lead)
    for _ in range((budget + 1) // 2):  # relations take at most half, the sources the rest, relations again after
        if not any(take(line) for line in rel_iter):
            break
    for it in (src_iter, rel_iter):
        while len(kept) < cfg.max_sentences and any(take(line) for line in it):
            pass
    order = {"lead": 0, "relation": 1, "source": 2}
    kept.sort(key=lambda line: order[line.section])
    if len(kept) < cfg.min_sentences:
        return None, "too_few_verified_sentences"
    return _article(node, kept, linker, dropped), ""


def _facts(node, nodes_by_id, edges, chunks_by_id, cfg: WikiConfig, linker) -> list[_Line]:
    """The material of the span article as the model's numbered facts (deduplicated; twice max_sentences at most)."""
    leads, relations, sources = _material(node, nodes_by_id, edges, chunks_by_id, linker)
    unique: dict[str, _Line] = {}
    for line in [*leads, *relations, *sources]:
        unique.setdefault(_key(line.text), line)
    return [line for key, line in unique.items() if key][: 2 * cfg.max_sentences]


def _one_call_article(node, facts: Sequence[_Line], cfg, client: LLMClient, params, verifier):
    """The model's article from numbered facts; only sentences whose ``[n]`` quote supports them are kept."""
    listing = "\n".join(
        f"[{i}] {f.text}" + ("" if f.text == f.citation.quote else f' (source: "{" ".join(f.citation.quote.split())}")')
        for i, f in enumerate(facts, start=1)
    )
    messages = [
        Message(role="system", content=render_prompt("wiki_article_system")),
        Message(
            role="user",
            content=render_prompt("wiki_article_user", title=node.name, facts=listing, max_sentences=cfg.max_sentences),
        ),
    ]
    reply = client.chat(messages, params).text
    text = _REFS_AFTER_STOP.sub(r"\2\1 ", unlink(reply).replace("[[", "").replace("]]", ""))
    kept, dropped = [], 0
    ends = sentence_ends(text)
    for raw in (text[a:b].strip() for a, b in zip([0, *ends], [*ends, len(text)], strict=True)):
        raw = raw.lstrip("-*• ").strip()
        if not raw or raw.startswith("#"):
            continue
        refs = [int(n) for group in _FACT_REFS.findall(raw) for n in group.split(",")]
        sentence = _flat(re.sub(r"\s+([.!?,;:])", r"\1", _FACT_REFS.sub("", raw)))
        cited = [facts[n - 1] for n in dict.fromkeys(refs) if 1 <= n <= len(facts)]
        if len(kept) >= cfg.max_sentences:
            break
        if not cited or not sentence:  # no [n] naming a fact: nothing to check it against
            dropped += bool(sentence)
            continue
        if _key(sentence) in {_key(k.text) for k in kept}:
            continue  # a repeated sentence is skipped, not counted
        if verify_claim(sentence, [f.citation.quote for f in cited], topic=node.name, verifier=verifier).grounded:
            kept.append(_Line(sentence, cited[0].citation, "lead" if not kept else "body", node.name))
        else:
            dropped += 1
    return kept, dropped


def write_article(
    node: KGNode,
    nodes_by_id: Mapping[str, KGNode],
    edges: Sequence[KGEdge],
    chunks_by_id: Mapping[str, Chunk],
    cfg: WikiConfig,
    strategy: str = "span",
    client: LLMClient | None = None,
    params: CallParams | None = None,
    verifier: GroundingVerifier | None = None,
    linker: Linker | None = None,
) -> tuple[WikiArticle | None, str]:
    """The article of ``node`` and "" (or, for a one_call article that fell back to the span article, why), or None
    and the reason it was not written (see the module docstring). ``linker``: built from ``nodes_by_id`` if not
    given (the spider shares one)."""
    linker = linker or Linker(nodes_by_id.values())
    span = partial(_span_article, node, nodes_by_id, edges, chunks_by_id, cfg, verifier, linker)
    if strategy != "one_call" or client is None:
        return span()
    facts = _facts(node, nodes_by_id, edges, chunks_by_id, cfg, linker)
    if not facts:
        return None, "no_material"
    try:
        kept, dropped = _one_call_article(node, facts, cfg, client, params or ONE_CALL_PARAMS, verifier)
    except Exception as exc:  # a failed call costs the model article only: the span article is written instead
        log.warning("wiki %s: article call failed (%s); span article", node.name, exc)
        kept, dropped, why = [], 0, f"one_call_failed: {exc}"
    else:
        if len(kept) >= cfg.min_sentences:
            return _article(node, kept, linker, dropped), ""
        why = f"one_call_too_few_verified: {len(kept)} kept, {dropped} dropped"
    article, reason = span()
    if article is None:
        return None, reason
    article.dropped_sentences += dropped  # the model's sentences that were not kept count as dropped
    return article, why


def spider(
    nodes: Sequence[KGNode],
    edges: Sequence[KGEdge],
    chunks: Sequence[Chunk],
    cfg: WikiConfig,
    strategy: str = "span",
    client: LLMClient | None = None,
    params: CallParams | None = None,
    verifier: GroundingVerifier | None = None,
    max_concurrency: int = 1,
    progress: bool = False,
) -> tuple[list[WikiArticle], list[dict[str, str]]]:
    """Write the seed articles (depth 0), then follow their ``[[links]]`` breadth-first (the most linked first),
    ``cfg.max_articles`` articles at most. Errors: one per node not written (``unit_id``, ``reason``, ``detail``),
    per topic not in the graph, and per one_call article that fell back to the span article (``one_call_fallback``)."""
    nodes_by_id = {n.node_id: n for n in nodes}
    chunks_by_id = {c.chunk_id: c for c in chunks}
    linker = Linker(nodes)
    unknown = [t for t in cfg.topics if match_topic(nodes, t) is None]
    errors = [{"unit_id": t, "reason": "topic_not_in_graph", "detail": "no node has this name"} for t in unknown]
    articles: list[WikiArticle] = []
    tried: set[str] = set()
    level, depth = choose_seeds(nodes, cfg), 0

    def write(node_id: str) -> tuple[WikiArticle | None, str]:
        node = nodes_by_id[node_id]
        return write_article(node, nodes_by_id, edges, chunks_by_id, cfg, strategy, client, params, verifier, linker)

    while level and len(articles) < cfg.max_articles:
        written_here: list[WikiArticle] = []
        queue = [n for n in level if n not in tried]
        while queue and len(articles) < cfg.max_articles:
            batch, queue = queue[: cfg.max_articles - len(articles)], queue[cfg.max_articles - len(articles) :]
            tried.update(batch)
            jobs = [Job(nid, partial(write, nid)) for nid in batch]
            if client is not None and strategy == "one_call":
                results = run_jobs(jobs, max(1, max_concurrency), client, desc=f"wiki depth {depth}", progress=progress)
            else:
                results = [_run_job(job) for job in jobs]
            for nid, result in zip(batch, results, strict=True):
                article, reason = result.value if result.value is not None else (None, f"failed: {result.error}")
                if article is None:
                    reason, _, detail = reason.partition(": ")
                    errors.append({"unit_id": nid, "reason": reason, "detail": detail or nodes_by_id[nid].name})
                    continue
                if reason:
                    errors.append({"unit_id": nid, "reason": "one_call_fallback", "detail": reason})
                article.depth = depth
                articles.append(article)
                written_here.append(article)
        linked = Counter(
            linker.node_of_article[a]
            for art in written_here
            for a in art.links
            if linker.node_of_article[a] not in tried
        )
        level = [n for n, _ in sorted(linked.items(), key=lambda kv: (-kv[1], -nodes_by_id[kv[0]].degree, kv[0]))]
        depth += 1
    log.info("wiki: %d articles (depth <= %d), %d not written", len(articles), max(0, depth - 1), len(errors))
    return articles, errors


def _run_job(job: Job) -> JobResult:
    """A job run here, its error caught (the spider's sequential path, like ``run_jobs``)."""
    try:
        return JobResult(job.key, job.run())
    except Exception as exc:  # one article's failure ends with a reason; the others go on
        log.warning("wiki %s failed: %s", job.key, exc)
        return JobResult(job.key, error=exc)
