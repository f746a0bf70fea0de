"""The knowledge graph: canonical edges with every citation that states them, Louvain communities (networkx) with a
summary each, and exports for people and tools (GraphML whose edges carry a ``citation``, JSON).

A community summary is extractive (the community's most cited relation statements) or written by the model; a
model sentence is kept only when the grounding verifier finds it supported by the community's quotes. The
word-overlap verifier catches sentences whose words are not in the quotes; it cannot catch a wrong relation built
only from quoted words ("Bell Laboratories developed Chambers"), which is why the extractive summary is the default
for small models.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import networkx as nx
from networkx.algorithms.community import louvain_communities

from doctune.chunking.sentences import split_sentences
from doctune.grounding import GroundingVerifier
from doctune.jobs import Job, run_jobs
from doctune.knowledge.canonical import Canon
from doctune.knowledge.claims import verify_claim
from doctune.knowledge.names import name_key
from doctune.knowledge.rows import KGCommunity, KGEdge, KGMerge, KGNode, KGRelation
from doctune.llm.base import CallParams, Message
from doctune.llm.client import LLMClient
from doctune.prompts import render_prompt
from doctune.records import Citation
from doctune.textmatch import content_words

log = logging.getLogger(__name__)

SUMMARY_EDGES = 5  # relation statements in an extractive summary
PROMPT_EDGES = 12  # relations shown to the model per community


def edge_statement(edge: KGEdge, names: Mapping[str, str]) -> str:
    """The relation as a sentence: "Source relation Target." (``names``: node_id -> name)."""
    source, target = names.get(edge.source, edge.source), names.get(edge.target, edge.target)
    return f"{source} {edge.relation.strip()} {target}."


def citation_text(citation: Citation) -> str:
    """A citation as one line of text: ``"<quote>" [doc <doc_id>, chunk <chunk_id>, chars <start>-<end>]``."""
    quote = " ".join(citation.quote.split())
    return (
        f'"{quote}" [doc {citation.doc_id}, chunk {citation.chunk_id}, chars {citation.char_start}-{citation.char_end}]'
    )


def _edge_id(source: str, relation_key: str, target: str) -> str:
    return "e-" + hashlib.sha256(f"{source}\x1f{relation_key}\x1f{target}".encode()).hexdigest()[:12]


def build_edges(relations: Sequence[KGRelation], canon: Canon) -> list[KGEdge]:
    """Canonical edges: endpoints mapped through ``canon.node_of`` (by name key when the surface form is unknown),
    self-loops dropped, one edge per (source, relation, target) whose citations accumulate (deduplicated by chunk and
    offsets); weight = number of citations. Edges come in order of first appearance."""
    by_key = {name_key(name): node_id for name, node_id in canon.node_of.items()}

    def node(name: str) -> str | None:
        return canon.node_of.get(name) or by_key.get(name_key(name))

    edges: dict[str, KGEdge] = {}
    seen: dict[str, set[tuple[str, int, int]]] = {}
    dropped = Counter()
    for rel in relations:
        source, target, relation_key = node(rel.source), node(rel.target), name_key(rel.relation)
        if source is None or target is None or not relation_key:
            dropped["unknown endpoint or empty relation"] += 1
            continue
        if source == target:
            dropped["self-loop"] += 1
            continue
        edge_id = _edge_id(source, relation_key, target)
        edge = edges.get(edge_id)
        if edge is None:
            edge = edges[edge_id] = KGEdge(
                edge_id=edge_id, source=source, target=target, relation=rel.relation.strip(), citations=[]
            )
            seen[edge_id] = set()
        if not edge.description and rel.description.strip():
            edge.description = rel.description.strip()
        spot = (rel.citation.chunk_id, rel.citation.char_start, rel.citation.char_end)
        if spot not in seen[edge_id]:
            seen[edge_id].add(spot)
            edge.citations.append(rel.citation)
        edge.chunk_ids = sorted({*edge.chunk_ids, rel.chunk_id, rel.citation.chunk_id})
        edge.doc_ids = sorted({*edge.doc_ids, rel.doc_id, rel.citation.doc_id})
        edge.weight = float(len(edge.citations))
    if dropped:
        log.info("edges: %s", ", ".join(f"{n} {why}" for why, n in dropped.items()))
    return list(edges.values())


def assign_communities(
    nodes: Sequence[KGNode], edges: Sequence[KGEdge], seed: int = 0
) -> tuple[list[KGNode], dict[int, list[str]]]:
    """Degree of every node and its Louvain community (undirected, weighted; networkx). Community ids go by size,
    largest first (0, 1, ...); isolated nodes get community -1 and no group. Returns updated copies of the nodes and
    community id -> sorted node_ids."""
    known = {n.node_id for n in nodes}
    degree: Counter[str] = Counter()
    graph = nx.Graph()
    for edge in edges:
        if edge.source not in known or edge.target not in known or edge.source == edge.target:
            continue
        degree[edge.source] += 1
        degree[edge.target] += 1
        if graph.has_edge(edge.source, edge.target):
            graph[edge.source][edge.target]["weight"] += edge.weight
        else:
            graph.add_edge(edge.source, edge.target, weight=edge.weight)
    ordered = nx.Graph()  # insertion order fixed so that a seed gives the same communities every run
    ordered.add_nodes_from(sorted(graph.nodes))
    ordered.add_weighted_edges_from(sorted((min(a, b), max(a, b), d["weight"]) for a, b, d in graph.edges(data=True)))
    found = louvain_communities(ordered, weight="weight", seed=seed) if ordered.number_of_edges() else []
    ranked = sorted((sorted(c) for c in found), key=lambda c: (-len(c), c[0]))
    groups = dict(enumerate(ranked))
    community_of = {node_id: cid for cid, members in groups.items() for node_id in members}
    updated = [
        n.model_copy(update={"degree": degree[n.node_id], "community": community_of.get(n.node_id, -1)}) for n in nodes
    ]
    return updated, groups


def _community_edges(members: Sequence[str], edges: Sequence[KGEdge]) -> list[KGEdge]:
    """The edges inside a community, most cited first (then heaviest, then in graph order)."""
    inside = set(members)
    within = [e for e in edges if e.source in inside and e.target in inside]
    return sorted(within, key=lambda e: (-len(e.citations), -e.weight))


def _title(members: Sequence[str], by_id: Mapping[str, KGNode]) -> str:
    """The community's two most connected names."""
    ranked = sorted((by_id[m] for m in members if m in by_id), key=lambda n: (-n.degree, -n.mentions, n.name))
    return " and ".join(n.name for n in ranked[:2])


def _extractive(cid: int, title: str, members: list[str], inner: list[KGEdge], names, dropped: int = 0) -> KGCommunity:
    top = [e for e in inner if e.citations][:SUMMARY_EDGES]
    return KGCommunity(
        community_id=cid,
        title=title,
        node_ids=members,
        summary=" ".join(edge_statement(e, names) for e in top),
        citations=[e.citations[0] for e in top],
        method="extractive",
        dropped_sentences=dropped,
    )


def _model_summary(
    cid: int,
    title: str,
    members: list[str],
    inner: list[KGEdge],
    names: Mapping[str, str],
    client: LLMClient,
    params: CallParams,
    verifier: GroundingVerifier | None,
) -> KGCommunity:
    """One model call for a community; only the reply's sentences the verifier supports are kept."""
    shown = [e for e in inner if e.citations][:PROMPT_EDGES]
    quotes = list(dict.fromkeys(e.citations[0].quote for e in shown))
    facts = "\n".join(
        f'- {edge_statement(e, names)} (source: "{" ".join(e.citations[0].quote.split())}")' for e in shown
    )
    messages = [
        Message(role="system", content=render_prompt("kg_community_system")),
        Message(role="user", content=render_prompt("kg_community_user", title=title, facts=facts)),
    ]
    try:
        reply = client.chat(messages, params).text
    except Exception as exc:  # a failed call costs this community its model summary only
        log.warning("community %d (%s): summary call failed (%s); extractive summary", cid, title, exc)
        return _extractive(cid, title, members, inner, names)
    kept, dropped = [], 0
    for sentence in split_sentences(reply.strip()):
        sentence = sentence.strip().lstrip("-*• ").strip()
        if not sentence:
            continue
        if verify_claim(sentence, quotes, topic=title, verifier=verifier).grounded:
            kept.append(sentence)
        else:
            dropped += 1
    if not kept:
        log.info("community %d (%s): no model sentence verified (%d dropped); extractive summary", cid, title, dropped)
        return _extractive(cid, title, members, inner, names, dropped)
    citations: dict[tuple[str, int, int], Citation] = {}
    for sentence in kept:  # each kept sentence cites the quotes that share most of its words
        said = content_words(sentence)
        overlap = [(len(said & content_words(e.citations[0].quote)), i) for i, e in enumerate(shown)]
        best = max((n for n, _ in overlap), default=0)
        for n, i in overlap:
            if n and n == best:
                c = shown[i].citations[0]
                citations.setdefault((c.chunk_id, c.char_start, c.char_end), c)
    return KGCommunity(
        community_id=cid,
        title=title,
        node_ids=members,
        summary=" ".join(kept),
        citations=list(citations.values()),
        method="model",
        dropped_sentences=dropped,
    )


def summarise_communities(
    groups: Mapping[int, list[str]],
    nodes: Sequence[KGNode],
    edges: Sequence[KGEdge],
    client: LLMClient | None = None,
    params: CallParams | None = None,
    mode: str = "extractive",
    verifier: GroundingVerifier | None = None,
    max_concurrency: int = 1,
    progress: bool = False,
) -> list[KGCommunity]:
    """A title and summary per community of two or more nodes. ``extractive``: its most cited relation statements;
    ``model`` (with a client): one call per community, each sentence kept only when verified against the
    community's quotes (dropped ones counted); a failed call or no verified sentence falls back to extractive."""
    by_id = {n.node_id: n for n in nodes}
    names = {n.node_id: n.name for n in nodes}
    todo = [(cid, sorted(members)) for cid, members in sorted(groups.items()) if len(members) > 1]
    plan = [(cid, members, _title(members, by_id), _community_edges(members, edges)) for cid, members in todo]
    if mode != "model" or client is None:
        if mode == "model":
            log.info("community summaries: no client given; extractive summaries")
        return [_extractive(cid, title, members, inner, names) for cid, members, title, inner in plan]
    params = params or CallParams(temperature=0.0, max_tokens=200, seed=0)
    jobs = [
        Job(str(cid), partial(_model_summary, cid, title, members, inner, names, client, params, verifier))
        for cid, members, title, inner in plan
    ]
    results = run_jobs(jobs, max(1, max_concurrency), client, desc="kg communities", progress=progress)
    out = []
    for (cid, members, title, inner), result in zip(plan, results, strict=True):
        if result.value is None:
            log.warning("community %d: summary failed (%s); extractive summary", cid, result.error)
        out.append(result.value or _extractive(cid, title, members, inner, names))
    return out


# -- exports --------------------------------------------------------------------------------------------------------
def to_networkx(nodes: Sequence[KGNode], edges: Sequence[KGEdge]) -> nx.MultiDiGraph:
    """The graph as a networkx MultiDiGraph (node and edge attributes as in :func:`write_graphml`; edge key:
    edge_id). Edges whose endpoints are not among ``nodes`` are left out."""
    graph = nx.MultiDiGraph()
    for n in nodes:
        graph.add_node(
            n.node_id,
            name=n.name,
            type=n.type,
            aliases="; ".join(n.aliases),
            community=n.community,
            description=n.description,
            degree=n.degree,
            mentions=n.mentions,
            doc_ids="; ".join(n.doc_ids),
        )
    for e in edges:
        if e.source not in graph or e.target not in graph:
            continue
        graph.add_edge(
            e.source,
            e.target,
            key=e.edge_id,
            relation=e.relation,
            weight=float(e.weight),
            citation=citation_text(e.citations[0]) if e.citations else "",
            citations_json=json.dumps([c.model_dump() for c in e.citations], ensure_ascii=False),
            description=e.description,
        )
    return graph


def write_graphml(nodes: Sequence[KGNode], edges: Sequence[KGEdge], path: Path) -> Path:
    """GraphML of the graph: nodes carry name, type, aliases ("; "-joined), community, description; edges carry
    relation, weight, ``citation`` (the first citation as text) and ``citations_json`` (all of them)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(to_networkx(nodes, edges), path, encoding="utf-8")
    return path


def write_graph_json(
    nodes: Sequence[KGNode],
    edges: Sequence[KGEdge],
    communities: Sequence[KGCommunity],
    merges: Sequence[KGMerge],
    path: Path,
) -> Path:
    """The whole graph as one JSON file: nodes, edges, communities, merges and stats."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "stats": graph_stats(nodes, edges, communities),
        "nodes": [n.model_dump() for n in nodes],
        "edges": [e.model_dump() for e in edges],
        "communities": [c.model_dump() for c in communities],
        "merges": [m.model_dump() for m in merges],
    }
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def graph_stats(nodes: Sequence[KGNode], edges: Sequence[KGEdge], communities: Sequence[KGCommunity]) -> dict:
    """Counts of the graph: nodes (by type), edges, citations, communities, the largest community, isolated nodes,
    the most connected entities."""
    sizes = sorted((len(c.node_ids) for c in communities), reverse=True)
    top = sorted(nodes, key=lambda n: (-n.degree, n.name))[:5]
    return {
        "nodes": len(nodes),
        "edges": len(edges),
        "citations": sum(len(e.citations) for e in edges),
        "nodes_by_type": dict(Counter(n.type for n in nodes).most_common()),
        "communities": len(communities),
        "largest_community": sizes[0] if sizes else 0,
        "nodes_in_communities": sum(sizes),
        "isolated_nodes": sum(1 for n in nodes if n.degree == 0),
        "mean_degree": round(2 * len(edges) / len(nodes), 3) if nodes else 0.0,
        "most_connected": [{"name": n.name, "degree": n.degree} for n in top if n.degree],
        "model_summaries": sum(1 for c in communities if c.method == "model"),
        "dropped_summary_sentences": sum(c.dropped_sentences for c in communities),
    }
