"""Personal search over ``posts``: build (or reuse) the index, then answer queries (``doctune search``).

The index (``<workspace>/<search.index_dir>/``: ``search.sqlite`` and the post vectors) is rebuilt only when the
posts artifact's sha256 differs from the one recorded in it, and the vectors only when that sha or the embedder
changed, so ``search`` can be called for every query: it builds what is missing first. In one process the open
index, vectors and embedder are kept between calls (warm queries).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from doctune.config import ConfigError, DoctuneConfig
from doctune.curate.embeddings import Embedder, EmbeddingCache, EmbeddingError, create_embedder
from doctune.records import Post
from doctune.search.hybrid import Searcher, SearchHit
from doctune.search.index import Filters, build_index_file, index_path, is_current, read_meta
from doctune.search.vectors import load_or_embed, vectors_path
from doctune.stages import StageResult
from doctune.workspace import StaleArtifactError, Workspace

log = logging.getLogger(__name__)

POSTS = "posts"
KINDS = ("post", "reply", "boost", "like", "bookmark", "feed")

#: open searchers of this process: (index folder, posts sha256, embedder identity or "") -> searcher
_SEARCHERS: dict[tuple[str, str, str], Searcher] = {}
_EMBEDDERS: dict[str, Embedder] = {}


def index_root(config: DoctuneConfig, workspace: Workspace) -> Path:
    return workspace.root / config.search.index_dir


def posts_sha256(workspace: Workspace) -> str:
    """The sha256 the manifest records for ``posts``; refuses when there is none."""
    rec = workspace.manifest().get(POSTS)
    if rec is None or not workspace.artifact_path(POSTS).exists():
        raise StaleArtifactError(f"artifact '{POSTS}' is missing: run `doctune ingest` on an archive first")
    return rec.sha256


def _embedder(config: DoctuneConfig) -> Embedder:
    spec = config.models.embedder
    key = spec.model_dump_json()
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = create_embedder(spec)
    return _EMBEDDERS[key]


def build_index(
    config: DoctuneConfig, workspace: Workspace, progress: bool = False, embed: bool | None = None
) -> StageResult:
    """Build the keyword index and (with ``search.embed``, or ``embed`` when given) the post vectors, each only when
    out of date."""
    sha = posts_sha256(workspace)
    root = index_root(config, workspace)
    posts: list[Post] | None = None
    rebuilt = not is_current(index_path(root), sha)
    if rebuilt:
        posts = workspace.read_rows(POSTS, Post, config)
        counts = build_index_file(index_path(root), posts, sha)
    else:
        meta = read_meta(index_path(root))
        counts = {k: int(meta.get(k, 0)) for k in ("posts", "cjk_posts", "empty_posts")}
    errors: list[dict[str, str]] = []
    embedded = 0
    if config.search.embed if embed is None else embed:
        try:
            embedder = _embedder(config)
            if not vectors_path(root, sha, embedder).exists():
                posts = posts if posts is not None else workspace.read_rows(POSTS, Post, config)
                cache = EmbeddingCache(workspace.cache_dir / "embeddings.sqlite")
                try:
                    _, embedded = load_or_embed(root, posts, sha, embedder, cache, progress=progress)
                finally:
                    cache.close()
        except (EmbeddingError, ConfigError, OSError) as exc:
            reason = f"embeddings not built ({type(exc).__name__}: {exc}); searching by keyword only"
            log.warning("search index: %s", reason)
            errors.append({"unit_id": "embeddings", "reason": reason})
    for key in [k for k in _SEARCHERS if k[0] == str(root) and k[1] != sha]:
        _SEARCHERS.pop(key).close()
    return StageResult(
        stage="search index",
        outputs={"search index": str(index_path(root))},
        counts={**counts, "embedded now": embedded},
        errors=errors,
        stats={"rebuilt": rebuilt, "posts_sha256": sha},
    )


def parse_bound(value: str, upper: bool) -> str:
    """A ``--since`` (``upper`` False: inclusive) or ``--until`` (True: the whole day or second included) value as
    the ISO string created_at is compared with. Raises ValueError naming the value."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return (day + timedelta(days=1)).isoformat() if upper else day.isoformat()
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if upper:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.isoformat(timespec="seconds")


def make_filters(
    kind: str | Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    mine: bool | None = None,
) -> Filters:
    """Filters from command-line values; ValueError (one line) for an unknown kind or a bad date."""
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    kinds = [k.strip() for item in kinds for k in item.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown kind {', '.join(map(repr, unknown))} (expected one of {', '.join(KINDS)})")
    return Filters(
        kinds=tuple(kinds) or None,
        since=parse_bound(since, upper=False) if since else None,
        until=parse_bound(until, upper=True) if until else None,
        mine=mine,
    )


def _searcher(config: DoctuneConfig, workspace: Workspace, keyword_only: bool) -> Searcher:
    sha = posts_sha256(workspace)
    root = index_root(config, workspace)
    use_vectors = config.search.embed and not keyword_only
    embedder = _embedder(config) if use_vectors else None
    if embedder is not None and not vectors_path(root, sha, embedder).exists():
        build_index(config, workspace)
        if not vectors_path(root, sha, embedder).exists():
            embedder = None  # embedding failed (reported by build_index): keyword search only
    key = (str(root), sha, embedder.identity() if embedder is not None else "")
    if key not in _SEARCHERS:
        if not is_current(index_path(root), sha):
            build_index(config, workspace, embed=embedder is not None)
        _SEARCHERS[key] = Searcher(root, sha, embedder)
    return _SEARCHERS[key]


def search(
    config: DoctuneConfig,
    workspace: Workspace,
    query: str,
    kind: str | Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
    mine: bool | None = None,
    keyword_only: bool = False,
    embedding_only: bool = False,
) -> list[SearchHit]:
    """The best posts for ``query``, fused from BM25 and embedding rankings (or BM25 alone with ``keyword_only`` or
    ``search.embed: false``; cosine alone with ``embedding_only``, for evaluations), filtered by kind (one or
    several), created_at in [since, until] and owner."""
    filters = make_filters(kind, since, until, mine)
    cfg = config.search
    searcher = _searcher(config, workspace, keyword_only)
    return searcher.search(
        query,
        filters,
        limit=limit or cfg.limit,
        candidates=cfg.candidates,
        rrf_k=cfg.rrf_k,
        keyword_weight=cfg.keyword_weight,
        min_similarity=cfg.min_similarity,
        keyword_only=keyword_only,
        snippet_chars=cfg.snippet_chars,
        embedding_only=embedding_only,
    )


def close_searchers() -> None:
    """Close every open index of this process (tests, or before deleting a workspace)."""
    while _SEARCHERS:
        _SEARCHERS.popitem()[1].close()
