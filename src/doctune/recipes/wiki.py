"""The auto-wiki recipe (``doctune generate wiki``): an article per important entity of the knowledge graph, every
sentence backed by a verified citation, ``[[links]]`` followed by a spider within ``wiki.max_articles``.

Reads the graph ``generate kg`` wrote (``kg_nodes``, ``kg_edges``) with ``chunks`` and ``documents``. The article
strategy follows ``generate.strategy`` (``auto``: ``span`` for the embedded small model, no model call; ``one_call``
for endpoints and larger models, see :mod:`doctune.knowledge.wiki`). Files for people: ``<workspace>/wiki/``, a
static site (``index.html`` with search, one page per article, backlinks). The articles are the ``wiki_articles``
artifact.

Examples (group: the article): "Write a short wiki article about <title>, from the documents." -> the article's
Markdown (no notes, no ``[[ ]]``), and "What is <title>?" -> its lead sentence.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from doctune.knowledge.rows import KGEdge, KGNode, WikiArticle
from doctune.knowledge.wiki import spider
from doctune.knowledge.wiki_links import plain_markdown
from doctune.knowledge.wiki_site import write_wiki_site
from doctune.llm.base import CallParams
from doctune.recipes.base import GateSpec, Recipe, RecipeOutput, SideArtifact
from doctune.records import Chunk, Document, Example

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)


class WikiFields(BaseModel):
    """The typed fields of a wiki example."""

    model_config = ConfigDict(extra="forbid")

    article_id: str
    title: str
    node_id: str
    depth: int = Field(description="0: a seed article; n: reached by the spider after n links.")
    kind: Literal["article", "lead"] = Field(description="article: the whole article; lead: its first sentence.")
    n_sentences: int = Field(description="Verified sentences of the article.")


class WikiRecipe(Recipe):
    """Articles about the graph's entities, each sentence cited and verified (see the module docstring)."""

    name = "wiki"
    description = "A wiki of the documents' entities: every sentence cited and verified, [[links]], a spider."
    inputs = ("kg_nodes", "kg_edges", "chunks", "documents")
    config_sections = ("wiki", "models.generator")
    fields_model = WikiFields
    metrics = ("perplexity",)
    gate = GateSpec(metric="perplexity", split="eval", higher_is_better=False)

    def build_examples(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> RecipeOutput:
        from doctune.generate.strategy import resolve_strategy
        from doctune.llm.roles import open_client

        nodes = workspace.read_rows("kg_nodes", KGNode, config)
        edges = workspace.read_rows("kg_edges", KGEdge, config)
        chunks = workspace.read_rows("chunks", Chunk, config)
        docs = workspace.read_rows("documents", Document, config)
        spec = config.models.generator
        client = open_client(config, workspace, "generator")  # cheap: nothing is loaded until a call
        strategy = "one_call" if resolve_strategy(config.generate.strategy, client.backend) == "one_call" else "span"
        if strategy == "span":
            client.backend.close()
            client = None
        log.info("wiki: %s articles from %d nodes, %d edges", strategy, len(nodes), len(edges))
        try:
            articles, errors = spider(
                nodes,
                edges,
                chunks,
                config.wiki,
                strategy=strategy,
                client=client,
                params=CallParams(temperature=0.0, max_tokens=spec.max_tokens, seed=spec.seed),
                max_concurrency=spec.max_concurrency,
                progress=progress,
            )
        finally:
            if client is not None:
                client.backend.close()
        index = write_wiki_site(
            articles, {d.doc_id: d for d in docs}, workspace.root / "wiki", f"{config.project} wiki"
        )
        examples = [ex for a in articles for ex in self.article_examples(a)]
        stats = self._stats(articles, errors, strategy)
        stats["site"] = str(index.relative_to(workspace.root))
        return RecipeOutput(
            examples=examples,
            errors=errors,
            stats=stats,
            artifacts=[SideArtifact("wiki_articles", articles, WikiArticle, stats={"articles": len(articles)})],
        )

    def article_examples(self, article: WikiArticle) -> list[Example]:
        """The whole-article example and the lead example of one article."""
        doc_ids = sorted({s.citation.doc_id for s in article.sentences})
        base = {
            "article_id": article.article_id,
            "title": article.title,
            "node_id": article.node_id,
            "depth": article.depth,
            "n_sentences": len(article.sentences),
        }
        asks = [
            (
                "article",
                f"Write a short wiki article about {article.title}, from the documents.",
                plain_markdown(article.markdown).strip(),
            ),
            ("lead", f"What is {article.title}?", article.sentences[0].text if article.sentences else ""),
        ]
        return [
            self.example(
                f"{article.article_id}:{kind}",
                article.article_id,
                [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                WikiFields(kind=kind, **base),
                doc_ids=doc_ids,
            )
            for kind, question, answer in asks
            if answer
        ]

    @staticmethod
    def _stats(articles: list[WikiArticle], errors: list[dict[str, str]], strategy: str) -> dict[str, Any]:
        """Articles, kept sentences, verified share (kept / (kept + dropped)), depth histogram, reasons."""
        kept = sum(len(a.sentences) for a in articles)
        dropped = sum(a.dropped_sentences for a in articles)
        return {
            "strategy": strategy,
            "articles": len(articles),
            "sentences": kept,
            "verified_share": round(kept / (kept + dropped), 4) if kept + dropped else 0.0,
            "dropped_sentences": dropped,
            "depth": {str(d): n for d, n in sorted(Counter(a.depth for a in articles).items())},
            "links": sum(len(a.links) for a in articles),
            "not_written": dict(Counter(e["reason"] for e in errors if e["reason"] != "one_call_fallback")),
            "one_call_fallbacks": sum(1 for e in errors if e["reason"] == "one_call_fallback"),
        }
