"""Post vectors for embedding search: one unit row per post, stored as .npy beside the keyword index.

The file is named by the posts artifact's sha256 and the embedder's identity (hashed: it may hold an endpoint URL),
``vectors-<posts sha 16>-<embedder 12>.npy``, so a rerun loads it and embeds nothing; a changed artifact or
embedder gives a new name (older files are removed once the new one is written). Texts go through the workspace's
embedding cache (``cache/embeddings.sqlite``), so after an import that adds posts only the new ones are embedded.
A post with no text, alt text or content warning (an unresolved like) gets a zero row and is never an embedding hit.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from doctune.curate.embeddings import Embedder, EmbeddingCache, embed_texts
from doctune.records import Post

log = logging.getLogger(__name__)


def post_text(post: Post) -> str:
    """What is embedded for a post: content warning, text and alt text, one per line ('' when none is known)."""
    return "\n".join(x for x in (post.content_warning, post.text, *post.media_alt) if x).strip()


def vectors_path(root: Path, posts_sha256: str, embedder: Embedder) -> Path:
    ident = hashlib.sha256(embedder.identity().encode()).hexdigest()[:12]
    return root / f"vectors-{posts_sha256[:16]}-{ident}.npy"


def load_or_embed(
    root: Path,
    posts: Sequence[Post] | None,
    posts_sha256: str,
    embedder: Embedder,
    cache: EmbeddingCache | None,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[np.ndarray, int]:
    """(vectors in post order, how many texts were embedded now: 0 when the file was there). ``posts`` may be None
    only when the file exists."""
    path = vectors_path(root, posts_sha256, embedder)
    if path.exists():
        return np.load(path), 0
    if posts is None:
        raise FileNotFoundError(f"{path}: no vectors for this posts artifact and embedder")
    texts = [post_text(p) for p in posts]
    todo = [t for t in texts if t]
    before = len(cache) if cache is not None else 0
    vecs = embed_texts(embedder, todo, cache=cache, batch_size=batch_size, progress=progress)
    embedded = (len(cache) - before) if cache is not None else len(todo)
    dim = vecs.shape[1] if len(todo) else (embedder.dimension or 1)
    matrix = np.zeros((len(texts), dim), dtype=np.float32)
    rows = [i for i, t in enumerate(texts) if t]
    if rows:
        matrix[rows] = vecs
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npy")
    np.save(tmp, matrix)
    os.replace(tmp, path)
    for old in root.glob("vectors-*.npy"):
        if old != path and ".tmp" not in old.name:
            old.unlink(missing_ok=True)
    log.info("post vectors: %d posts, %d embedded now -> %s", len(texts), embedded, path)
    return matrix, embedded


def top_cosine(
    matrix: np.ndarray, query: np.ndarray, mask: np.ndarray | None, limit: int, min_similarity: float
) -> list[tuple[int, float]]:
    """(row index, cosine) of the ``limit`` rows most similar to ``query`` among those ``mask`` allows."""
    if matrix.shape[0] == 0 or limit <= 0:
        return []
    sims = np.asarray(matrix @ query.astype(np.float32).ravel())
    if mask is not None:
        sims = np.where(mask, sims, -np.inf)
    k = min(limit, sims.shape[0])
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top], kind="stable")]
    return [(int(i), float(sims[i])) for i in top if sims[i] >= min_similarity and sims[i] > -np.inf]
