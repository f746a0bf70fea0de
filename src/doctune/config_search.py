"""Config section ``search``: personal search over ``posts``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SearchConfig(BaseModel):
    """``doctune search``: hybrid keyword (SQLite FTS5, BM25) and embedding search over ``posts``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(10, ge=1, description="Results shown when the command does not say (--limit).")
    candidates: int = Field(
        100, ge=1, description="Best posts taken from each of keyword and embedding search before they are fused."
    )
    rrf_k: int = Field(
        60, ge=1, description="Reciprocal rank fusion constant: a post scores sum(weight / (rrf_k + rank)) over both."
    )
    keyword_weight: float = Field(
        1.0, ge=0, description="Weight of the keyword (BM25) ranking in the fusion; the embedding ranking weighs 1."
    )
    embed: bool = Field(
        True,
        description="Embed posts with models.embedder and fuse cosine similarity with BM25; false: keyword search only.",
    )
    min_similarity: float = Field(
        0.2,
        ge=-1,
        le=1,
        description="Embedding candidates below this cosine similarity to the query are left out of the fusion.",
    )
    index_dir: str = Field(
        "index",
        description="Folder inside the workspace for search.sqlite and the post vectors (.npy); rebuilt when posts "
        "change.",
    )
    snippet_chars: int = Field(160, ge=20, description="Length of the text shown around the first matched word.")
