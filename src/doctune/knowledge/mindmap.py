"""Mind maps: per document a hierarchical outline whose points cite source spans (``doctune generate mindmap``).

The tree: a root (the document title), the document's headings (from the chunks' ``heading_path``, hierarchy kept,
in document order) and points. A point is one sentence of the document: its :class:`~doctune.records.Citation`
is the fact, its label only names it. Labels come from the model when ``mindmap.model_labels`` is on and the
label passes its check (at most ``label_words`` words, every content word and number taken from the sentence),
else from the sentence itself (its first words, cut at a function word). The small model only names a point.

A point is *supported* when its citation was found in its chunk and the grounding verifier accepts its label
against the quote. The word-overlap verifier checks that the label's words and numbers are in the quote; a label
made only of cited words can still misname the sentence, which no word check catches.

:func:`coverage` is the share of a document's chunks that some supported point cites. The first outline (stage
``initial``) holds the document's best sentences; the grow pass (stage ``grown``) adds a point for every chunk
no supported point covers yet. Chunks without a citable sentence (code, tables, bare headings) stay uncovered,
each with its reason. :func:`to_markmap` (in :mod:`~doctune.knowledge.mindmap_html`, importable from here) writes
the map as markmap-compatible Markdown.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from doctune.generate.cite_first import candidate_sentences, sentence_score
from doctune.knowledge.claims import cite_in_chunk, verify_claim
from doctune.knowledge.mindmap_html import outline_bullets, to_markmap  # noqa: F401  (rendered beside the HTML page)
from doctune.knowledge.rows import MindMapNode
from doctune.llm.base import CallParams, Message
from doctune.prompts import render_prompt
from doctune.records import Chunk, Citation, Document
from doctune.textmatch import STOPWORDS, content_words, numbers

if TYPE_CHECKING:
    from doctune.config_knowledge import MindmapConfig
    from doctune.llm.client import LLMClient

log = logging.getLogger(__name__)

#: a label call needs a handful of tokens
LABEL_PARAMS = CallParams(temperature=0.0, max_tokens=16, seed=0)
#: the verifier's question when a label is checked: it has no content word of its own, so the verdict rests on
#: the label's words and numbers being in the quote (a question made of the label itself reads as an echo)
NEUTRAL_TOPIC = "what is it"
#: the initial outline takes at most this many sentences of one chunk while others have candidates left
PER_CHUNK_FIRST = 2
#: the grow pass tries at most this many sentences of an uncovered chunk
GROW_TRIES = 3
_HEADING_LINE = re.compile(r"^\s{0,3}#{1,6}\s")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[*`]+")
#: words a label should not end with: the verifier's stopwords and the prepositions and conjunctions it lacks
FUNCTION_WORDS = STOPWORDS | frozenset((
    "along", "among", "across", "around", "behind", "beside", "beyond", "like", "near", "since", "toward", "towards",
    "via", "within", "without", "unless", "although", "though", "whether", "per",
))  # fmt: skip
_EDGE_PUNCT = "\"'“”‘’.,;:!?()[]{}<>-–—"


@dataclass
class _Candidate:
    """A citable sentence of a chunk."""

    chunk: Chunk
    sentence: str
    citation: Citation
    score: float


@dataclass
class _Label:
    text: str
    method: str
    rejected: str = ""


def node_id(doc_id: str, path: Sequence[str], label: str, extra: str = "") -> str:
    """A stable id: a hash of the document, the node's heading path, its label (and ``extra``, a point's offsets)."""
    digest = hashlib.sha256(json.dumps([doc_id, list(path), label, extra]).encode()).hexdigest()[:16]
    return f"mm-{digest}"


def plain_text(sentence: str) -> str:
    """``sentence`` without Markdown links, emphasis or code marks, on one line."""
    return " ".join(_MARKUP.sub("", _LINK.sub(r"\1", sentence)).split())


def source_label(sentence: str, max_words: int) -> str:
    """A label from the sentence's own words: a short opening clause ("For example,") and a leading article of a
    long sentence are skipped; then the whole sentence when it has at most ``max_words`` words, else its first
    ``max_words`` words cut at a clause mark or before the last function word among them (when three words are
    left), trailing function words dropped: "Mercury is the closest planet to the Sun" gives "Mercury is the
    closest planet"."""
    all_tokens = plain_text(sentence).split()
    intro = next((i for i, t in enumerate(all_tokens[:4]) if t.endswith(",")), None)
    if intro is not None and len(all_tokens) - intro > 3:
        all_tokens = all_tokens[intro + 1 :]
    if len(all_tokens) > max_words and all_tokens[0].lower() in ("the", "a", "an"):
        all_tokens = all_tokens[1:]
    tokens = all_tokens[:max_words]
    for i, tok in enumerate(tokens[:-1]):
        if i >= 1 and (tok.endswith((",", ";", ":")) or tokens[i + 1].startswith("(")):
            tokens = tokens[: i + 1]
            break
    else:
        if len(all_tokens) > max_words:
            cuts = [i for i, t in enumerate(tokens) if i >= 3 and t.strip(_EDGE_PUNCT).lower() in FUNCTION_WORDS]
            tokens = tokens[: cuts[-1]] if cuts else tokens
    cleaned = [t for t in (t.strip(_EDGE_PUNCT) for t in tokens) if t]
    while len(cleaned) > 1 and cleaned[-1].lower() in FUNCTION_WORDS:
        cleaned.pop()
    label = " ".join(cleaned)
    if not content_words(label):  # nothing but function words: the plain first words
        label = " ".join(t.strip(_EDGE_PUNCT) for t in plain_text(sentence).split()[:max_words]).strip()
    return label[:1].upper() + label[1:]


def clean_model_label(reply: str) -> str:
    """The title in a model's reply: its first line, without a "Title:" prefix, quotes, marks or a full stop."""
    line = next((x for x in reply.strip().splitlines() if x.strip()), "")
    line = re.sub(r"^\s*(title|label)\s*:\s*", "", line, flags=re.IGNORECASE)
    line = plain_text(line.replace("#", " "))
    return line.strip(_EDGE_PUNCT + " ")


def label_problem(label: str, sentence: str, max_words: int) -> str:
    """Why a model's label is refused for ``sentence`` (empty: it is accepted)."""
    n = len(label.split())
    if n == 0:
        return "empty"
    if n > max_words:
        return f"{n} words (at most {max_words})"
    own = content_words(label)
    if not own:
        return "no content word"
    missing = sorted(own - content_words(sentence))
    if missing:
        return f"words not in the sentence: {', '.join(missing[:5])}"
    if not numbers(label) <= numbers(sentence):
        return "a number not in the sentence"
    return ""


def model_label(client: LLMClient, sentence: str, max_words: int, params: CallParams | None = None) -> str:
    """One short plain-text call: the model's title for ``sentence`` (cleaned, not yet checked)."""
    text = plain_text(sentence)
    messages = [
        Message(role="system", content=render_prompt("mindmap_label_system", words=max_words)),
        Message(role="user", content=render_prompt("mindmap_label_user", sentence=text, words=max_words)),
    ]
    return clean_model_label(client.chat(messages, params or LABEL_PARAMS).text)


def label_sentences(
    sentences: Sequence[str],
    cfg: MindmapConfig,
    client: LLMClient | None = None,
    params: CallParams | None = None,
    max_concurrency: int = 1,
) -> list[_Label]:
    """A label per sentence: the model's when asked for and accepted, else one from the sentence's words."""
    fallback = [_Label(source_label(s, cfg.label_words), "source") for s in sentences]
    if not (cfg.model_labels and client is not None and sentences):
        return fallback
    from doctune.jobs import Job, run_jobs

    jobs = [Job(str(i), lambda s=s: model_label(client, s, cfg.label_words, params)) for i, s in enumerate(sentences)]
    results = run_jobs(jobs, max(1, max_concurrency), client, "label points", progress=False)
    out = []
    for sentence, result, source in zip(sentences, results, fallback, strict=True):
        if result.error is not None:
            log.debug("label call failed (%s): source label", result.error)
            out.append(_Label(source.text, "source", f"call failed: {result.error}"))
            continue
        problem = label_problem(result.value or "", sentence, cfg.label_words)
        if problem:
            log.debug("model label %r refused (%s): source label", result.value, problem)
            out.append(_Label(source.text, "source", problem))
        else:
            out.append(_Label(result.value or "", "model"))
    return out


def label_supported(label: str, citation: Citation | None) -> bool:
    """Whether a point is supported: it has a citation and the verifier accepts its label against the quote."""
    return citation is not None and verify_claim(label, citation.quote, topic=NEUTRAL_TOPIC).grounded


def coverage(nodes: Sequence[MindMapNode], chunks: Sequence[Chunk]) -> float:
    """The share of ``chunks`` cited by at least one supported point of ``nodes`` (0.0 without chunks)."""
    if not chunks:
        return 0.0
    covered = {n.chunk_id for n in nodes if n.kind == "point" and n.supported}
    return sum(1 for c in chunks if c.chunk_id in covered) / len(chunks)


def _heading_path(chunk: Chunk, title: str) -> tuple[str, ...]:
    """The chunk's headings, without a first heading that only repeats the document title (that is the root)."""
    path = tuple(h.strip() for h in chunk.heading_path if h.strip())
    if path and " ".join(path[0].lower().split()) == " ".join(title.lower().split()):
        path = path[1:]
    return path


def _paragraphs(text: str) -> list[str]:
    """The prose paragraphs of ``text``: runs of lines ended by a blank line, a heading line or a code fence;
    heading lines and fenced code left out. Each is a verbatim slice of ``text``."""
    out: list[str] = []
    start, pos, in_fence = None, 0, False
    for line in text.splitlines(keepends=True):
        bare = line.strip()
        fence = bare.startswith(("```", "~~~"))
        if fence or in_fence or not bare or _HEADING_LINE.match(line):
            if start is not None:
                out.append(text[start:pos])
                start = None
            in_fence = in_fence != fence
        elif start is None:
            start = pos
        pos += len(line)
    if start is not None:
        out.append(text[start:pos])
    return out


def citable_sentences(chunk: Chunk) -> list[str]:
    """The chunk's sentences worth a point (``candidate_sentences`` per paragraph, so that the first sentence after
    a heading line counts and code stays out), in order."""
    return [s for para in _paragraphs(chunk.text) for s in candidate_sentences(chunk.model_copy(update={"text": para}))]


def _candidates(chunks: Sequence[Chunk]) -> dict[str, list[_Candidate]]:
    """Per chunk id, its citable sentences, best first (a sentence repeated in the document counts once)."""
    seen: set[str] = set()
    out: dict[str, list[_Candidate]] = {}
    for chunk in chunks:
        found = []
        for sentence in citable_sentences(chunk):
            key = " ".join(sentence.lower().split())
            citation = cite_in_chunk(sentence, chunk)
            if key in seen or citation is None:
                continue
            seen.add(key)
            found.append(_Candidate(chunk, sentence, citation, sentence_score(sentence)))
        out[chunk.chunk_id] = sorted(found, key=lambda c: (-c.score, c.citation.char_start))
    return out


def _initial_selection(candidates: dict[str, list[_Candidate]], n: int) -> list[_Candidate]:
    """The ``n`` best sentences of the document, at most ``PER_CHUNK_FIRST`` per chunk unless too few are left."""
    ranked = sorted(
        (c for cands in candidates.values() for c in cands), key=lambda c: (-c.score, c.citation.char_start)
    )
    picked: list[_Candidate] = []
    per_chunk: dict[str, int] = {}
    for cand in ranked:
        if len(picked) < n and per_chunk.get(cand.chunk.chunk_id, 0) < PER_CHUNK_FIRST:
            picked.append(cand)
            per_chunk[cand.chunk.chunk_id] = per_chunk.get(cand.chunk.chunk_id, 0) + 1
    taken = {id(c) for c in picked}
    for cand in ranked:  # too few chunks with sentences: fill up beyond the per-chunk cap
        if len(picked) >= n:
            break
        if id(cand) not in taken:
            picked.append(cand)
    return picked


class _Tree:
    """The nodes of one map while it is built: headings by path, points with their position in the document."""

    def __init__(self, doc: Document, chunks: Sequence[Chunk]):
        self.doc = doc
        self.root = MindMapNode(
            node_id=node_id(doc.doc_id, (), doc.title), doc_id=doc.doc_id, level=0, label=doc.title, kind="root"
        )
        self.headings: dict[tuple[str, ...], MindMapNode] = {}
        self.position: dict[str, int] = {self.root.node_id: -1}
        self.chunk_path: dict[str, tuple[str, ...]] = {}
        self.points: list[MindMapNode] = []
        for chunk in chunks:
            path = _heading_path(chunk, doc.title)
            self.chunk_path[chunk.chunk_id] = path
            for depth in range(1, len(path) + 1):
                prefix = path[:depth]
                if prefix in self.headings:
                    continue
                parent = self.headings[prefix[:-1]].node_id if depth > 1 else self.root.node_id
                node = MindMapNode(
                    node_id=node_id(doc.doc_id, prefix, prefix[-1]),
                    doc_id=doc.doc_id,
                    parent_id=parent,
                    level=depth,
                    label=prefix[-1],
                    kind="heading",
                )
                self.headings[prefix] = node
                self.position[node.node_id] = chunk.char_start

    def point(self, cand: _Candidate, label: _Label, stage: str) -> MindMapNode:
        """A point node for ``cand`` under the deepest heading of its chunk (not yet added)."""
        path = self.chunk_path.get(cand.chunk.chunk_id, ())
        parent = self.headings[path] if path else self.root
        cit = cand.citation
        return MindMapNode(
            node_id=node_id(self.doc.doc_id, path, label.text, f"{cit.char_start}-{cit.char_end}"),
            doc_id=self.doc.doc_id,
            parent_id=parent.node_id,
            level=parent.level + 1,
            label=label.text,
            kind="point",
            stage=stage,
            chunk_id=cand.chunk.chunk_id,
            citation=cit,
            supported=label_supported(label.text, cit),
            label_method=label.method,
        )

    def add(self, point: MindMapNode) -> None:
        self.points.append(point)
        self.position[point.node_id] = point.citation.char_start if point.citation else 0

    def nodes(self) -> list[MindMapNode]:
        """Every node, depth first: under each node its points first, then its sub-headings, in document order."""
        children: dict[str, list[MindMapNode]] = {}
        for node in [*self.headings.values(), *self.points]:
            children.setdefault(node.parent_id, []).append(node)
        out: list[MindMapNode] = []

        def walk(node: MindMapNode) -> None:
            out.append(node)
            kids = children.get(node.node_id, [])
            for kid in sorted(kids, key=lambda k: (k.kind != "point", self.position[k.node_id])):
                walk(kid)

        walk(self.root)
        return out


def build_mindmap(
    doc: Document,
    chunks: Sequence[Chunk],
    cfg: MindmapConfig,
    client: LLMClient | None = None,
    params: CallParams | None = None,
    max_concurrency: int = 1,
) -> tuple[list[MindMapNode], dict[str, Any]]:
    """The mind map of ``doc`` (its chunks among ``chunks``) and its stats: coverage before and after the grow pass,
    points per stage, uncovered chunks with reasons, labels by method."""
    own = sorted((c for c in chunks if c.doc_id == doc.doc_id), key=lambda c: c.index)
    tree = _Tree(doc, own)
    candidates = _candidates(own)
    refused: list[str] = []

    def add_points(cands: Sequence[_Candidate], stage: str) -> list[MindMapNode]:
        labels = label_sentences([c.sentence for c in cands], cfg, client, params, max_concurrency)
        refused.extend(lab.rejected for lab in labels if lab.rejected)
        return [tree.point(c, lab, stage) for c, lab in zip(cands, labels, strict=True)]

    for point in add_points(_initial_selection(candidates, cfg.initial_points), "initial"):
        tree.add(point)
    before = coverage(tree.points, own)
    covered = {p.chunk_id for p in tree.points if p.supported}
    used = {p.citation.char_start for p in tree.points if p.citation}
    grown = 0
    if cfg.grow:
        for attempt in range(GROW_TRIES):
            todo = []
            for chunk in own:
                if chunk.chunk_id in covered:
                    continue
                left = [c for c in candidates[chunk.chunk_id] if c.citation.char_start not in used]
                if left:
                    todo.append(left[0])
                    used.add(left[0].citation.char_start)
            if not todo:
                break
            for point in add_points(todo, "grown"):
                if point.supported:  # an unsupported try is dropped; the next round tries the chunk's next sentence
                    tree.add(point)
                    covered.add(point.chunk_id)
                    grown += 1
            log.debug("%s: grow round %d, %d chunks tried", doc.doc_id, attempt + 1, len(todo))
    uncovered = []
    for chunk in own:
        if chunk.chunk_id in covered:
            continue
        if not candidates[chunk.chunk_id]:
            reason = "no citable sentence (code, table, heading or too short)"
        elif not cfg.grow:
            reason = "not grown (mindmap.grow is off)"
        else:
            reason = "no supported point among its best sentences"
        uncovered.append({"chunk_id": chunk.chunk_id, "reason": reason})
    points = tree.points
    cover = (round(before, 4), round(coverage(points, own), 4))
    stats = {
        "coverage_before": cover[0],
        "coverage_after": cover[1],
        "points_initial": sum(1 for p in points if p.stage == "initial"),
        "points_grown": grown,
        "points_supported": sum(1 for p in points if p.supported),
        "chunks": len(own),
        "uncovered": uncovered,
        "labels_by_model": sum(1 for p in points if p.label_method == "model"),
        "labels_from_source": sum(1 for p in points if p.label_method == "source"),
        "model_labels_refused": len(refused),
    }
    log.info("mind map of %s: %d points (%d grown), coverage %.2f -> %.2f", doc.doc_id, len(points), grown, *cover)
    return tree.nodes(), stats
