"""From chunks to the knowledge graph's artifacts and files: extraction, canonical names, edges, communities.

:func:`build_graph_artifacts` is the kg recipe's generation without the training examples: it opens the generator
(``kg.strategy``: ``auto`` picks ``span`` for a small local model), extracts per chunk through the shared job runner,
merges names (with ``models.embedder`` for embedding-close names), finds communities and summarises them, and writes
``graph.graphml``, ``graph.json`` and ``graph.html`` under ``<workspace>/kg/``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from doctune.knowledge.rows import KGCommunity, KGEdge, KGMention, KGMerge, KGNode, KGRelation
from doctune.llm import CallParams
from doctune.records import Chunk, Document

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)

#: tokens of a relation label (span strategy) and of a community summary
LABEL_TOKENS = 16
SUMMARY_TOKENS = 120


@dataclass
class BuiltGraph:
    mentions: list[KGMention]
    relations: list[KGRelation]
    rejected: list[dict[str, str]]
    nodes: list[KGNode]
    edges: list[KGEdge]
    communities: list[KGCommunity]
    merges: list[KGMerge]
    errors: list[dict[str, str]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def build_graph_artifacts(
    config: DoctuneConfig, workspace: Workspace, docs: Sequence[Document], chunks: Sequence[Chunk], progress: bool
) -> BuiltGraph:
    """Extract, canonicalise, connect and summarise; write the files for people (see the module docstring)."""
    from doctune.generate.strategy import resolve_strategy
    from doctune.knowledge.canonical import canonicalise
    from doctune.knowledge.extract import extract_chunks
    from doctune.knowledge.graph import assign_communities, build_edges, summarise_communities
    from doctune.llm.roles import open_client

    cfg = config.kg
    spec = config.models.generator
    client = open_client(config, workspace, "generator")
    try:
        strategy = resolve_strategy(cfg.strategy, client.backend)
        tokens = LABEL_TOKENS if strategy == "span" else spec.max_tokens
        params = CallParams(temperature=0.0, max_tokens=tokens, seed=spec.seed)
        result = extract_chunks(chunks, client, strategy, cfg, params, progress=progress)
        embed = None
        if len({m.name for m in result.mentions}) > 1:
            from doctune.rank.baseline import workspace_embed

            embed = workspace_embed(config, workspace)
        canon = canonicalise(result.mentions, result.relations, embed, cfg.merge_similarity)
        edges = build_edges(result.relations, canon)
        nodes, groups = assign_communities(canon.nodes, edges, cfg.seed)
        summary_params = CallParams(temperature=0.0, max_tokens=SUMMARY_TOKENS, seed=spec.seed)
        communities = summarise_communities(groups, nodes, edges, client, summary_params, mode=cfg.community_summaries)
        usage = client.usage.as_dict()
    finally:
        client.backend.close()
    files = write_graph_files(workspace, nodes, edges, communities, canon.merges, docs)
    errors = [
        {"unit_id": o.unit_id, "reason": o.status, "detail": o.detail}
        for o in result.outcomes
        if o.status not in ("items",)
    ]
    stats = {
        "strategy": strategy,
        "chunks": len(chunks),
        "documents": len(docs),
        "outcomes": dict(Counter(o.status for o in result.outcomes)),
        "mentions": len(result.mentions),
        "relations_accepted": len(result.relations),
        "relations_rejected": dict(Counter(r.get("reason", "") for r in result.rejected)),
        "relation_labels": dict(Counter(r.label_method for r in result.relations)),
        "nodes": len(nodes),
        "edges": len(edges),
        "merges": dict(Counter(m.reason for m in canon.merges)),
        "communities": len(communities),
        "community_summaries": dict(Counter(c.method for c in communities)),
        "llm": usage,
        "files": files,
    }
    log.info(
        "kg: %d nodes, %d edges, %d communities from %d chunks (%s)",
        len(nodes),
        len(edges),
        len(communities),
        len(chunks),
        strategy,
    )
    return BuiltGraph(
        mentions=result.mentions,
        relations=result.relations,
        rejected=result.rejected,
        nodes=nodes,
        edges=edges,
        communities=communities,
        merges=canon.merges,
        errors=errors,
        stats=stats,
    )


def write_graph_files(
    workspace: Workspace,
    nodes: Sequence[KGNode],
    edges: Sequence[KGEdge],
    communities: Sequence[KGCommunity],
    merges: Sequence[KGMerge],
    docs: Sequence[Document],
) -> dict[str, str]:
    """``kg/graph.graphml``, ``kg/graph.json`` and ``kg/graph.html``; their paths relative to the workspace."""
    from doctune.knowledge.graph import write_graph_json, write_graphml
    from doctune.knowledge.graph_html import write_graph_html

    root = workspace.root / "kg"
    root.mkdir(parents=True, exist_ok=True)
    title = "Knowledge graph: " + ", ".join(d.title for d in docs[:4]) + (" ..." if len(docs) > 4 else "")
    paths = {
        "graphml": write_graphml(nodes, edges, root / "graph.graphml"),
        "json": write_graph_json(nodes, edges, communities, merges, root / "graph.json"),
        "html": write_graph_html(nodes, edges, communities, root / "graph.html", title),
    }
    return {k: str(p.relative_to(workspace.root)) for k, p in paths.items()}
