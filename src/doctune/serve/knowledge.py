"""Knowledge: what the knowledge recipes made, read from the workspace's manifest, artifacts and files.

``GET /knowledge`` shows one section per recipe, each only when its artifact exists (otherwise a line naming the
command that makes it):

* **Knowledge graph** (``kg_*``, ``examples_kg``): the run's numbers (strategy, nodes, edges, communities, merges
  and rejected relations by reason, outcomes), the communities with their summaries, the merges (canonical <-
  merged, reason, score), links to ``kg/graph.html``, ``kg/graph.graphml`` and ``kg/graph.json`` and the graph view
  in a sandboxed frame.
* **Wiki** (``wiki_articles``): every article (title, depth, verified sentences, dropped) linking to its page.
* **Mind maps** (``mindmap_nodes``, ``examples_mindmap``): per document the coverage (share of its chunks cited by
  a supported point) with the initial points only and with every point, computed from the rows.
* **Dialogues** (``examples_dialogue``): the run's metrics and the first dialogues as turns.

Artifacts are read whatever their freshness (a stale one is shown with its freshness, as the overview does); one
that cannot be read is treated as absent and logged. Files are linked through the ``/files`` route only when they
exist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import pyarrow.parquet as pq
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from doctune.knowledge.rows import KGCommunity, KGMerge, MindMapNode, WikiArticle
from doctune.records import Example
from doctune.serve.app import ServeContext, context

log = logging.getLogger(__name__)
router = APIRouter()
R = TypeVar("R", bound=BaseModel)

#: artifacts the page reads (its cache changes when one of them does)
ARTIFACTS = (
    "kg_nodes", "kg_edges", "kg_communities", "kg_merges", "examples_kg", "wiki_articles", "examples_wiki",
    "mindmap_nodes", "examples_mindmap", "examples_dialogue", "chunks",
)  # fmt: skip
#: the files each section links to (relative to the workspace), and how: "open" in a new tab or "download"
KG_FILES = (("kg/graph.html", "open"), ("kg/graph.graphml", "download"), ("kg/graph.json", "download"))
KG_STATS = (
    "strategy", "documents", "chunks", "outcomes", "mentions", "relations_accepted", "relations_rejected",
    "relation_labels", "nodes", "edges", "communities", "community_summaries", "merges",
)  # fmt: skip
DIALOGUE_STATS = ("dialogues", "verified_claim_share", "persona_distinctness", "turns_per_dialogue")
#: stats never shown as numbers (the files written: linked instead)
HIDDEN_STATS = frozenset({"files"})
MAX_ROWS = 300
DIALOGUES_SHOWN = 3


# -- reading ----------------------------------------------------------------------------------
def read_optional(ctx: ServeContext, name: str, row_type: type[R]) -> list[R] | None:
    """The rows of artifact ``name`` as ``row_type``, or None when it is missing or cannot be read (logged)."""
    ws = ctx.workspace
    if name not in ws.manifest() or not ws.artifact_path(name).exists():
        return None
    try:
        return [row_type.model_validate(r) for r in pq.read_table(ws.artifact_path(name)).to_pylist()]
    except Exception as exc:  # a damaged or older artifact: the page shows the rest
        log.warning("knowledge page: cannot read %s as %s: %s", name, row_type.__name__, exc)
        return None


def chunk_ids_by_doc(ctx: ServeContext) -> dict[str, list[str]] | None:
    """The chunk ids of each document (from the ``chunks`` artifact), or None without it."""
    path = ctx.workspace.artifact_path("chunks")
    if "chunks" not in ctx.workspace.manifest() or not path.exists():
        return None
    try:
        table = pq.read_table(path, columns=["chunk_id", "doc_id"])
    except Exception as exc:
        log.warning("knowledge page: cannot read chunks: %s", exc)
        return None
    out: dict[str, list[str]] = {}
    for cid, did in zip(table.column("chunk_id").to_pylist(), table.column("doc_id").to_pylist(), strict=True):
        out.setdefault(did, []).append(cid)
    return out


def format_value(value: Any) -> str:
    """A stat as text: a share or mean with 3 decimals, a count as is, a breakdown as ``key n · key n``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, Mapping):
        return " · ".join(f"{k} {format_value(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
    return str(value)


def _shown(value: Any) -> bool:
    scalar = (str, int, float, bool)
    if isinstance(value, Mapping):
        return bool(value) and all(isinstance(v, scalar) for v in value.values())
    return isinstance(value, scalar)


def stat_pairs(stats: Mapping[str, Any], first: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(name, text) for each stat worth a line: the ``first`` keys in order, then the other scalar stats and
    breakdowns (nested tables and file lists are left out)."""
    order = [k for k in first if k in stats] + sorted(k for k in stats if k not in set(first))
    return [(k, format_value(stats[k])) for k in order if k not in HIDDEN_STATS and _shown(stats[k])]


def _stats(ctx: ServeContext, *names: str) -> dict[str, Any]:
    """The manifest stats of ``names`` merged (later names win)."""
    manifest = ctx.workspace.manifest()
    out: dict[str, Any] = {}
    for name in names:
        if name in manifest and isinstance(manifest[name].stats, dict):
            out.update(manifest[name].stats)
    return out


def _freshness(ctx: ServeContext, name: str) -> str:
    try:
        return ctx.workspace.freshness(name, ctx.config)
    except Exception as exc:  # a manifest entry the current code cannot judge
        return f"unknown ({exc})"


# -- sections ---------------------------------------------------------------------------------
def community_row(c: KGCommunity) -> dict[str, Any]:
    """What the page shows of a community: its title, size, summary and how the summary was made."""
    return {
        "id": c.community_id,
        "title": c.title,
        "summary": c.summary,
        "method": c.method,
        "size": len(c.node_ids),
        "citations": len(c.citations),
        "dropped": c.dropped_sentences,
    }


def kg_section(ctx: ServeContext) -> dict[str, Any] | None:
    """The knowledge graph's numbers, communities and merges; None when ``generate kg`` has not run."""
    manifest = ctx.workspace.manifest()
    if not any(n in manifest for n in ("kg_nodes", "examples_kg")):
        return None
    stats = _stats(ctx, "kg_nodes", "examples_kg")
    for name, key in (("kg_nodes", "nodes"), ("kg_edges", "edges"), ("kg_communities", "communities")):
        if key not in stats and name in manifest:
            stats[key] = manifest[name].rows
    communities = sorted(read_optional(ctx, "kg_communities", KGCommunity) or [], key=lambda c: -len(c.node_ids))
    merges = read_optional(ctx, "kg_merges", KGMerge) or []
    return {
        "freshness": _freshness(ctx, "kg_nodes" if "kg_nodes" in manifest else "examples_kg"),
        "stats": stat_pairs(stats, KG_STATS),
        "communities": [community_row(c) for c in communities[:MAX_ROWS]],
        "communities_more": max(0, len(communities) - MAX_ROWS),
        "merges": [
            {"canonical": m.canonical, "merged": m.merged, "reason": m.reason, "score": m.score}
            for m in sorted(merges, key=lambda m: (m.canonical.lower(), m.merged.lower()))[:MAX_ROWS]
        ],
        "merges_more": max(0, len(merges) - MAX_ROWS),
    }


def wiki_section(ctx: ServeContext) -> dict[str, Any] | None:
    """Every wiki article with its depth and sentences; None when ``generate wiki`` has not run."""
    articles = read_optional(ctx, "wiki_articles", WikiArticle)
    if articles is None:
        return None
    rows = [
        {"id": a.article_id, "title": a.title, "depth": a.depth, "sentences": len(a.sentences),
         "verified": sum(1 for s in a.sentences if s.verified), "dropped": a.dropped_sentences, "links": len(a.links),
         "file": f"wiki/{a.article_id}.html"}
        for a in sorted(articles, key=lambda a: (a.depth, a.title.lower()))
    ]  # fmt: skip
    return {
        "freshness": _freshness(ctx, "wiki_articles"),
        "stats": stat_pairs(_stats(ctx, "wiki_articles", "examples_wiki")),
        "articles": rows[:MAX_ROWS],
        "articles_more": max(0, len(rows) - MAX_ROWS),
    }


def _share(part: int, whole: int | None) -> float | None:
    return part / whole if whole else None


def mindmap_coverage(
    nodes: Sequence[MindMapNode], chunks_by_doc: Mapping[str, Sequence[str]] | None
) -> list[dict[str, Any]]:
    """Per document of ``nodes``: the share of its chunks cited by a supported point, with the initial points only
    (``before``) and with every point (``after``); None where its chunks are unknown."""
    docs: dict[str, list[MindMapNode]] = {}
    for n in nodes:
        docs.setdefault(n.doc_id, []).append(n)
    out = []
    for doc_id, own in docs.items():
        points = [n for n in own if n.kind == "point"]
        chunk_ids = set(chunks_by_doc.get(doc_id, [])) if chunks_by_doc is not None else None
        total = len(chunk_ids) if chunk_ids is not None else None

        def covered(stages: tuple[str, ...], points: list[MindMapNode] = points, ids: set | None = chunk_ids) -> int:
            cited = {p.chunk_id for p in points if p.supported and p.stage in stages}
            return len(cited & ids) if ids is not None else 0

        root = next((n.label for n in own if n.kind == "root"), doc_id)
        out.append(
            {
                "doc_id": doc_id,
                "title": root,
                "chunks": total,
                "before": _share(covered(("initial",)), total),
                "after": _share(covered(("initial", "grown")), total),
                "points": len(points),
                "grown": sum(1 for p in points if p.stage == "grown"),
                "supported": sum(1 for p in points if p.supported),
            }
        )
    return out


def _coverage_from_stats(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-document coverage ``generate mindmap`` recorded (when its rows cannot be read)."""
    docs = stats.get("documents")
    if not isinstance(docs, Mapping):
        return []
    return [
        {"doc_id": d, "title": s.get("title", d), "chunks": s.get("chunks"), "before": s.get("coverage_before"),
         "after": s.get("coverage_after"), "points": s.get("points"), "grown": s.get("grown"), "supported": None}
        for d, s in docs.items() if isinstance(s, Mapping)
    ]  # fmt: skip


def mindmap_section(ctx: ServeContext) -> dict[str, Any] | None:
    """Coverage before -> after per document; None when ``generate mindmap`` has not run."""
    manifest = ctx.workspace.manifest()
    if not any(n in manifest for n in ("mindmap_nodes", "examples_mindmap")):
        return None
    stats = _stats(ctx, "examples_mindmap")
    nodes = read_optional(ctx, "mindmap_nodes", MindMapNode)
    docs = mindmap_coverage(nodes, chunk_ids_by_doc(ctx)) if nodes else []
    if not docs or any(d["chunks"] is None for d in docs):
        docs = _coverage_from_stats(stats) or docs
    return {
        "freshness": _freshness(ctx, "mindmap_nodes" if "mindmap_nodes" in manifest else "examples_mindmap"),
        "documents": docs,
        "stats": stat_pairs(stats, ("coverage_before", "coverage_after", "points", "grown", "labels_by_model")),
    }


def dialogue_section(ctx: ServeContext) -> dict[str, Any] | None:
    """The dialogues' metrics and the first few as turns; None when ``generate dialogue`` has not run."""
    examples = read_optional(ctx, "examples_dialogue", Example)
    if examples is None:
        return None
    stats = {"dialogues": len(examples), **_stats(ctx, "examples_dialogue")}
    return {
        "freshness": _freshness(ctx, "examples_dialogue"),
        "count": len(examples),
        "stats": stat_pairs(stats, DIALOGUE_STATS),
        "dialogues": [
            {"id": e.example_id, "unit_id": e.unit_id, "turns": [(m.role, m.content) for m in e.messages]}
            for e in examples[:DIALOGUES_SHOWN]
        ],
    }


def knowledge_view(ctx: ServeContext) -> dict[str, Any]:
    """Every section of the page (each None when its recipe has not run), cached per artifact content."""

    def build() -> dict[str, Any]:
        return {
            "kg": kg_section(ctx),
            "wiki": wiki_section(ctx),
            "mindmap": mindmap_section(ctx),
            "dialogue": dialogue_section(ctx),
        }

    return ctx.cached("knowledge", ctx.artifact_sha(*ARTIFACTS), build)


def existing(ctx: ServeContext, relative: str) -> bool:
    """Whether the workspace has the file ``relative`` (so a link to it under /files works)."""
    return (ctx.workspace.root / relative).is_file()


# -- the page ---------------------------------------------------------------------------------
@router.get("/knowledge", response_class=HTMLResponse)
def knowledge_page(request: Request) -> HTMLResponse:
    ctx = context(request)
    view = knowledge_view(ctx)
    wiki = view["wiki"]
    if wiki is not None:  # which article pages exist is read per request (the files are not in the manifest)
        wiki = {**wiki, "articles": [{**a, "exists": existing(ctx, a["file"])} for a in wiki["articles"]]}
    mindmap_files = sorted(p.name for p in (ctx.workspace.root / "mindmap").glob("*.md"))
    return ctx.render(
        request,
        "knowledge.html",
        page="knowledge",
        kg=view["kg"],
        kg_files=[(path, how) for path, how in KG_FILES if existing(ctx, path)],
        kg_html=existing(ctx, "kg/graph.html"),
        wiki=wiki,
        wiki_index=existing(ctx, "wiki/index.html"),
        mindmap=view["mindmap"],
        mindmap_index=existing(ctx, "mindmap/index.html"),
        mindmap_files=mindmap_files,
        dialogue=view["dialogue"],
        browse_dialogues="/browse?recipe=dialogue",
    )
