"""Row types of the knowledge recipes' artifacts (``kg_*``, ``wiki_articles``, ``mindmap_nodes``).

Every row that states something carries a :class:`~doctune.records.Citation`: a verbatim span of a chunk, with
document offsets, so it can be traced to its source like a QA item.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from doctune.records import Citation

ENTITY_TYPES = ("person", "organization", "place", "publication", "software", "concept", "other")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KGMention(_Row):
    """An entity as found in one chunk (before canonicalisation)."""

    mention_id: str
    chunk_id: str
    doc_id: str
    name: str = Field(description="The surface form in the chunk.")
    type: str = Field(description="One of ENTITY_TYPES.")
    description: str = ""
    citation: Citation | None = Field(None, description="Where the chunk names (and describes) it.")
    method: str = Field("rules", description="rules | model: who proposed the entity.")


class KGRelation(_Row):
    """A relation found in one chunk that passed its checks: its cited span names both endpoints (or their aliases)
    and the grounding verifier accepts the relation statement against the span."""

    relation_id: str
    chunk_id: str
    doc_id: str
    source: str = Field(description="Surface name of the source entity.")
    relation: str = Field(description="A short verb phrase: source <relation> target.")
    target: str
    description: str = ""
    citation: Citation
    method: str = Field("rules", description="rules | model: who proposed the relation (and its label).")
    label_method: str = Field("source", description="source (words of the span) | model (written by the model).")


class KGNode(_Row):
    """A canonical entity of the graph: every mention whose name was merged into it."""

    node_id: str
    name: str
    type: str
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    citation: Citation | None = None
    chunk_ids: list[str] = Field(default_factory=list)
    doc_ids: list[str] = Field(default_factory=list)
    mentions: int = 0
    degree: int = 0
    community: int = -1


class KGEdge(_Row):
    """A canonical relation: one (source, relation, target) with every citation that states it."""

    edge_id: str
    source: str = Field(description="node_id of the source.")
    target: str = Field(description="node_id of the target.")
    relation: str
    description: str = ""
    citations: list[Citation]
    chunk_ids: list[str] = Field(default_factory=list)
    doc_ids: list[str] = Field(default_factory=list)
    weight: float = 1.0


class KGCommunity(_Row):
    """A community of the graph (Louvain, networkx) and its summary."""

    community_id: int
    title: str
    node_ids: list[str]
    summary: str
    citations: list[Citation] = Field(default_factory=list)
    method: str = Field("extractive", description="extractive | model (sentences kept only when verified)")
    dropped_sentences: int = 0


class KGMerge(_Row):
    """One surface name merged into a canonical node, and why."""

    node_id: str
    canonical: str
    merged: str
    reason: str = Field(description="same_key | alias | acronym | person_name | embedding")
    score: float = 1.0


class WikiSentence(_Row):
    text: str
    citation: Citation
    verified: bool
    reason: str = ""


class WikiArticle(_Row):
    """One article of the auto-wiki: Markdown with ``[[links]]`` and a verified citation per sentence."""

    article_id: str
    title: str
    node_id: str = ""
    markdown: str
    sentences: list[WikiSentence]
    links: list[str] = Field(default_factory=list, description="article_ids this article links to")
    depth: int = Field(0, description="0: a seed article; n: reached by the spider after n links")
    dropped_sentences: int = 0


class MindMapNode(_Row):
    """A node of a document's mind map."""

    node_id: str
    doc_id: str
    parent_id: str = ""
    level: int
    label: str
    kind: str = Field(description="root | heading | point")
    stage: str = Field("initial", description="initial | grown")
    chunk_id: str = ""
    citation: Citation | None = None
    supported: bool = False
    label_method: str = Field("source", description="source | model")
