"""Hybrid search: BM25 and cosine rankings fused by reciprocal rank fusion, with filters on kind, date and owner.

RRF scores a post ``keyword_weight / (rrf_k + keyword rank) + 1 / (rrf_k + embedding rank)`` (a term only for a
ranking that holds it, ranks from 1): no score scales to calibrate, a post both rankings found rises above
either alone, and a post only one found still ranks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from doctune.curate.embeddings import Embedder, EmbeddingError
from doctune.search.index import Filters, KeywordIndex, index_path
from doctune.search.query import fold, mark_snippet, parse_query
from doctune.search.vectors import load_or_embed, top_cosine

log = logging.getLogger(__name__)


class SearchHit(BaseModel):
    """One result of ``doctune search``."""

    model_config = ConfigDict(extra="forbid")

    post_id: str = Field(description="The post's id in the posts artifact.")
    kind: str = Field(description="post | reply | boost | like | bookmark | feed")
    author: str = Field(description="Who wrote the text ('' when unknown).")
    is_mine: bool = Field(description="Written or acted on by the archive owner.")
    created_at: str = Field(description="ISO 8601 UTC ('' when unknown).")
    url: str = Field(description="Link to the post ('' when the archive has none).")
    snippet: str = Field(description="Text around the first matched word, each matched word in **double stars**.")
    field: str = Field(description="Where the snippet comes from: text, alt (media alt text) or content_warning.")
    score: float = Field(description="Reciprocal rank fusion score (higher is better).")
    found_by: list[str] = Field(description="keyword and/or embedding: which search returned the post.")
    keyword_rank: int | None = Field(description="Rank in the BM25 results (1 = best); None when not there.")
    embedding_rank: int | None = Field(description="Rank in the cosine results (1 = best); None when not there.")


def rrf(
    keyword: list[int], embedding: list[int], rrf_k: int, keyword_weight: float = 1.0
) -> list[tuple[int, float, int | None, int | None]]:
    """(id, score, keyword rank, embedding rank), best first; ties keep the keyword order, then the embedding's."""
    ranks: dict[int, list[int | None]] = {}
    for i, rowid in enumerate(keyword, start=1):
        ranks.setdefault(rowid, [None, None])[0] = i
    for i, rowid in enumerate(embedding, start=1):
        ranks.setdefault(rowid, [None, None])[1] = i
    fused = []
    for order, (rowid, (kr, er)) in enumerate(ranks.items()):
        score = (keyword_weight / (rrf_k + kr) if kr else 0.0) + (1.0 / (rrf_k + er) if er else 0.0)
        fused.append((order, rowid, score, kr, er))
    fused.sort(key=lambda f: (-f[2], f[0]))
    return [(rowid, score, kr, er) for _, rowid, score, kr, er in fused]


class Searcher:
    """An open index (and its vectors): load once, query many times (warm queries touch no file but SQLite's)."""

    def __init__(self, root: Path, posts_sha256: str, embedder: Embedder | None):
        self.root, self.posts_sha256, self.embedder = root, posts_sha256, embedder
        self.index = KeywordIndex(index_path(root))
        self.vectors: np.ndarray | None = None
        if embedder is not None:
            self.vectors, _ = load_or_embed(root, None, posts_sha256, embedder, None)
            kinds, created, mine = self.index.filter_columns()
            self._kinds, self._created = np.array(kinds, dtype=str), np.array(created, dtype=str)
            self._mine = np.array(mine, dtype=bool)
            self._has_vector = np.any(self.vectors != 0, axis=1)

    def close(self) -> None:
        self.index.close()

    def _mask(self, filters: Filters) -> np.ndarray:
        mask = self._has_vector.copy()
        if filters.kinds:
            mask &= np.isin(self._kinds, list(filters.kinds))
        if filters.since:
            mask &= self._created >= filters.since
        if filters.until:
            mask &= (self._created != "") & (self._created < filters.until)
        if filters.mine is not None:
            mask &= self._mine == filters.mine
        return mask

    def search(
        self,
        query: str,
        filters: Filters,
        limit: int,
        candidates: int,
        rrf_k: int,
        keyword_weight: float = 1.0,
        min_similarity: float = 0.0,
        keyword_only: bool = False,
        snippet_chars: int = 160,
        embedding_only: bool = False,
    ) -> list[SearchHit]:
        """The best ``limit`` posts for ``query`` (``keyword_only`` / ``embedding_only``: one ranking alone)."""
        parsed = parse_query(query)
        if parsed.empty:
            return []
        pool = max(candidates, limit)
        keyword = [] if embedding_only else [rowid for rowid, _ in self.index.search(parsed, filters, pool)]
        embedding: list[int] = []
        if not keyword_only and self.embedder is not None and self.vectors is not None:
            try:
                qvec = self.embedder.embed([query])[0]
            except EmbeddingError as exc:
                log.warning("search: the query could not be embedded (%s): keyword results only", exc)
            else:
                found = top_cosine(self.vectors, qvec, self._mask(filters), pool, min_similarity)
                embedding = [i + 1 for i, _ in found]  # rowid = row + 1
        fused = rrf(keyword, embedding, rrf_k, keyword_weight)[:limit]
        rows = self.index.rows([rowid for rowid, *_ in fused])
        marks = parsed.marks()
        return [_hit(rows[rowid], score, kr, er, marks, snippet_chars) for rowid, score, kr, er in fused]


def _hit(
    row: dict[str, object], score: float, kr: int | None, er: int | None, marks: list[str], width: int
) -> SearchHit:
    field, text = "text", str(row["text"] or "")
    for name in ("text", "alt", "content_warning"):
        value = str(row[name] or "")
        if value and any(m.rstrip("*") in fold(value) for m in marks):
            field, text = name, value
            break
    else:
        if not text:
            field, text = ("alt", str(row["alt"])) if row["alt"] else ("content_warning", str(row["content_warning"]))
    return SearchHit(
        post_id=str(row["post_id"]),
        kind=str(row["kind"]),
        author=str(row["author"] or ""),
        is_mine=bool(row["is_mine"]),
        created_at=str(row["created_at"] or ""),
        url=str(row["url"] or ""),
        snippet=mark_snippet(text, marks, width),
        field=field,
        score=round(score, 6),
        found_by=[name for name, rank in (("keyword", kr), ("embedding", er)) if rank],
        keyword_rank=kr,
        embedding_rank=er,
    )
