"""ingest (social): Mastodon and Twitter archives, and the feed files of ``social.feeds`` -> the ``posts`` artifact.

Every archive given is imported (zip or folder, platform detected or given by ``--as``), the feeds are read, then
what the archives name only by id is resolved (archive, feeds, network only when ``social.resolve_network``).
Unusable items are reported one by one in the manifest (file, place, reason); the rest goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path

from doctune.config import ConfigError, DoctuneConfig
from doctune.ingest.social import ImportResult
from doctune.ingest.social.detect import ARCHIVE_KINDS, detect_archive, split_archives
from doctune.ingest.social.feeds import load_feeds
from doctune.ingest.social.mastodon import import_mastodon
from doctune.ingest.social.network import StatusFetcher
from doctune.ingest.social.resolve import resolve_posts
from doctune.ingest.social.twitter import import_twitter
from doctune.records import Post
from doctune.stages import NothingUsable, StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)

IMPORTERS = {"mastodon": import_mastodon, "twitter": import_twitter}


def run(
    config: DoctuneConfig,
    workspace: Workspace,
    paths: list[str] | None = None,
    as_kind: str | None = None,
    progress: bool = True,
) -> StageResult:
    """Import the archives ``paths`` (``as_kind``: mastodon, twitter, or None to detect each) into ``posts``."""
    if as_kind not in (None, *ARCHIVE_KINDS):
        raise ConfigError(f"ingest --as: expected mastodon or twitter for an archive, got {as_kind!r}")
    chosen = list(paths or []) or configured_archives(config)
    if not chosen:
        raise ConfigError("nothing to ingest: give the archive (zip or folder) on the command line or in ingest.paths")
    result = ImportResult()
    platforms: Counter[str] = Counter()
    for p in chosen:
        path = Path(p)
        if not path.exists():
            result.error(path.name, "", "missing_file", "no such file or folder")
            continue
        platform = as_kind or detect_archive(path)
        if platform is None:
            result.error(path.name, "", "not_an_archive", "no outbox.json (Mastodon) nor data/tweets.js (Twitter)")
            continue
        log.info("importing %s as a %s archive", path.name, platform)
        result.merge(IMPORTERS[platform](path, config.social))
        platforms[platform] += 1
    feeds = load_feeds(config.social.feeds)
    result.errors.extend(feeds.errors)
    result.error_reasons.update(feeds.error_reasons)
    fetcher = (
        StatusFetcher(config.social, workspace.cache_dir / "social.sqlite") if config.social.resolve_network else None
    )
    try:
        posts, resolution = resolve_posts(result.posts, feeds.posts, fetcher.fetch if fetcher else None)
    finally:
        if fetcher is not None:
            fetcher.close()
    if not posts:
        shown = "; ".join(f"{e.source_path}: {e.reason}" for e in result.errors[:3])
        raise NothingUsable(
            f"ingest: no post could be read from {', '.join(chosen)}" + (f" ({shown})" if shown else "")
        )
    per_file = Counter(p.source_file for p in posts)
    stats = {
        "fingerprint": archive_fingerprint(chosen),
        "archives": dict(platforms),
        "owners": result.owners,  # the owners' handles: scrub_text's own_handles
        "kinds": dict(Counter(p.kind for p in posts)),
        "per_file": dict(per_file),
        "mine": sum(p.is_mine for p in posts),
        "excluded": dict(result.excluded),
        "errors_by_reason": dict(result.error_reasons),
        **resolution,
        "network": dict(fetcher.stats) if fetcher is not None else {},
    }
    run_ = workspace.start_run("ingest", config)
    rec = run_.write_artifact("posts", posts, Post, errors=result.errors, stats=stats)
    counts = {"posts": len(posts), "errors": len(result.errors)}
    counts |= {f"kind {k}": v for k, v in sorted(stats["kinds"].items())}
    counts |= {
        "unresolved parents": resolution["unresolved_parents"],
        "unresolved likes": resolution["unresolved_likes"],
    }
    return StageResult(
        stage="ingest",
        outputs={"posts": str(workspace.root / rec.path)},
        counts=counts,
        errors=[e.model_dump() for e in result.errors],
        stats=stats,
    )


def configured_archives(config: DoctuneConfig) -> list[str]:
    """The Mastodon and Twitter archives among ``ingest.paths`` (the other paths are documents)."""
    return split_archives([Path(p) for p in config.ingest.paths], None)[0]


def archive_fingerprint(paths: list[str]) -> str:
    """A hash of the archives' names, sizes and modification times (of every file inside a folder): a changed
    archive makes `doctune run` import again."""
    parts = []
    for p in sorted(paths):
        path = Path(p)
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for f in files:
            st = f.stat() if f.exists() else None
            parts.append(f"{f.name}:{st.st_size if st else -1}:{int(st.st_mtime) if st else 0}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def posts_current(config: DoctuneConfig, workspace: Workspace) -> bool:
    """`doctune run`: the posts artifact is fresh and the configured archives did not change since."""
    archives = configured_archives(config)
    if not archives or workspace.freshness("posts", config) != "fresh":
        return False
    return workspace.manifest()["posts"].stats.get("fingerprint") == archive_fingerprint(archives)
