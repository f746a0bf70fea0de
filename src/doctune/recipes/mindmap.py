"""The mind map recipe (``doctune generate mindmap``): per document an outline whose points cite source spans.

For each document with chunks, :func:`doctune.knowledge.mindmap.build_mindmap` makes the map (the document's best
sentences, then the grow pass for chunks no supported point covers; labels from the generator when
``mindmap.model_labels``, checked, else from the sentence). Files for people in ``<workspace>/mindmap/``: one
markmap-compatible ``<doc-slug>.md`` per document and ``index.html`` with every map.

Examples (group: the document): "Outline the main points of <title>." -> the headings and supported point labels as
a nested bullet list; for every heading with at least two supported points directly under it, "What are the main
points of the section '<heading>' of <title>?" -> those points. The map's rows are the ``mindmap_nodes`` artifact.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from doctune.knowledge.mindmap import build_mindmap, outline_bullets, to_markmap
from doctune.knowledge.mindmap_html import write_mindmap_html
from doctune.knowledge.rows import MindMapNode
from doctune.progress import progress_bar
from doctune.recipes.base import GateSpec, Recipe, RecipeOutput, SideArtifact
from doctune.records import Chunk, Document, Example

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)


class MindmapFields(BaseModel):
    """The typed fields of a mind map example."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str
    kind: Literal["outline", "section"] = Field(description="outline: the whole document; section: one heading.")
    heading: str = Field("", description="The section's heading (section examples).")
    n_points: int = Field(description="Supported points in the target.")


def doc_slug(doc: Document) -> str:
    """A file name for a document's map: its title in lowercase words, and the start of its id (unique)."""
    words = re.sub(r"[^a-z0-9]+", "-", doc.title.lower()).strip("-")[:60].strip("-")
    return f"{words or 'document'}-{doc.doc_id[:8]}"


class MindmapRecipe(Recipe):
    """Per document a mind map whose points cite source spans, and outline examples (see the module docstring)."""

    name = "mindmap"
    description = "A mind map per document (points cite source spans, grown to cover every chunk) and outlines."
    inputs = ("documents", "chunks")
    config_sections = ("mindmap", "models.generator")
    fields_model = MindmapFields
    metrics = ("perplexity",)
    gate = GateSpec(metric="perplexity", split="eval", higher_is_better=False)

    def build_examples(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> RecipeOutput:
        cfg = config.mindmap
        docs = workspace.read_rows("documents", Document, config)
        chunks = workspace.read_rows("chunks", Chunk, config)
        by_doc: dict[str, list[Chunk]] = {}
        for chunk in chunks:
            by_doc.setdefault(chunk.doc_id, []).append(chunk)
        client = None
        if cfg.model_labels:
            from doctune.llm.roles import open_client

            client = open_client(config, workspace, "generator")
        out_dir = workspace.root / "mindmap"
        maps: list[tuple[Document, list[MindMapNode], dict[str, Any]]] = []
        errors: list[dict[str, str]] = []
        try:
            for doc in progress_bar(docs, desc="mind maps", unit="doc", disable=not progress):
                own = by_doc.get(doc.doc_id, [])
                if not own:
                    errors.append({"unit_id": doc.doc_id, "reason": "document has no chunk"})
                    continue
                try:
                    nodes, stats = build_mindmap(
                        doc, own, cfg, client, max_concurrency=config.models.generator.max_concurrency
                    )
                except Exception as exc:  # one document's failure ends with a reason; the others go on
                    log.warning("mind map of %s failed: %s", doc.doc_id, exc)
                    errors.append({"unit_id": doc.doc_id, "reason": f"mind map failed: {exc}"})
                    continue
                if not any(n.kind == "point" and n.supported for n in nodes):
                    errors.append({"unit_id": doc.doc_id, "reason": "no supported point (no citable sentence)"})
                    continue
                out_dir.mkdir(parents=True, exist_ok=True)
                (out_dir / f"{doc_slug(doc)}.md").write_text(to_markmap(doc, nodes), encoding="utf-8")
                maps.append((doc, nodes, stats))
        finally:
            if client is not None:
                client.backend.close()
        if maps:
            write_mindmap_html(maps, out_dir / "index.html")
        examples = [ex for doc, nodes, _ in maps for ex in self.map_examples(doc, nodes)]
        rows = [n for _, nodes, _ in maps for n in nodes]
        stats = self._stats(maps)
        stats["examples"] = {
            kind: sum(1 for e in examples if e.field_values()["kind"] == kind) for kind in ("outline", "section")
        }
        return RecipeOutput(
            examples=examples,
            errors=errors,
            stats=stats,
            artifacts=[SideArtifact("mindmap_nodes", rows, MindMapNode, stats={"documents": len(maps)})],
        )

    def map_examples(self, doc: Document, nodes: list[MindMapNode]) -> list[Example]:
        """The outline example of a document's map and one example per heading with two or more supported points."""
        points = [n for n in nodes if n.kind == "point" and n.supported]
        examples = [
            self.example(
                f"{doc.doc_id}:outline",
                doc.doc_id,
                [
                    {"role": "user", "content": f"Outline the main points of {doc.title}."},
                    {"role": "assistant", "content": outline_bullets(nodes)},
                ],
                MindmapFields(doc_id=doc.doc_id, kind="outline", n_points=len(points)),
                doc_ids=[doc.doc_id],
            )
        ]
        for heading in (n for n in nodes if n.kind == "heading"):
            own = [p for p in points if p.parent_id == heading.node_id]
            if len(own) < 2:
                continue
            question = f"What are the main points of the section '{heading.label}' of {doc.title}?"
            examples.append(
                self.example(
                    f"{doc.doc_id}:{heading.node_id}",
                    doc.doc_id,
                    [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": "\n".join(f"- {p.label}" for p in own)},
                    ],
                    MindmapFields(doc_id=doc.doc_id, kind="section", heading=heading.label, n_points=len(own)),
                    doc_ids=[doc.doc_id],
                )
            )
        return examples

    @staticmethod
    def _stats(maps: list[tuple[Document, list[MindMapNode], dict[str, Any]]]) -> dict[str, Any]:
        """Coverage per document and overall (weighted by chunks), points, grown points, share of model labels."""
        total_chunks = sum(s["chunks"] for _, _, s in maps)
        points = sum(s["points_initial"] + s["points_grown"] for _, _, s in maps)
        by_model = sum(s["labels_by_model"] for _, _, s in maps)

        def weighted(key: str) -> float:
            return round(sum(s[key] * s["chunks"] for _, _, s in maps) / total_chunks, 4) if total_chunks else 0.0

        return {
            "documents": {
                doc.doc_id: {
                    "title": doc.title,
                    "coverage_before": s["coverage_before"],
                    "coverage_after": s["coverage_after"],
                    "chunks": s["chunks"],
                    "points": s["points_initial"] + s["points_grown"],
                    "grown": s["points_grown"],
                    "uncovered": s["uncovered"],
                }
                for doc, _, s in maps
            },
            "coverage_before": weighted("coverage_before"),
            "coverage_after": weighted("coverage_after"),
            "points": points,
            "grown": sum(s["points_grown"] for _, _, s in maps),
            "labels_by_model": round(by_model / points, 4) if points else 0.0,
        }
