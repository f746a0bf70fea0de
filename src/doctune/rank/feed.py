"""The feed file `doctune rank` scores: read by the importer's feed reader (:func:`doctune.ingest.social.feeds.
load_feeds`: Mastodon API statuses, ActivityPub objects or collections), so a post has the same id in the feed as in
the ``posts`` artifact. An item that is not a post is reported with its place in the file and the reason; a file
that cannot be read at all is a :class:`FeedError` (one line)."""

from __future__ import annotations

from pathlib import Path

from doctune.ingest.social.feeds import load_feeds
from doctune.records import Post


class FeedError(ValueError):
    """The feed file cannot be read at all."""


def read_feed(path: Path) -> tuple[list[Post], list[dict[str, str]]]:
    """(posts of the feed, per-item errors as {source_path, reason})."""
    if not path.is_file():
        raise FeedError(f"{path.name}: no such feed file")
    result = load_feeds([str(path)])
    errors = [{"source_path": e.source_path, "reason": e.reason} for e in result.errors]
    fatal = [e for e in errors if e["reason"].startswith("unreadable_file")]
    if fatal and not result.posts:
        raise FeedError(f"{path.name}: {fatal[0]['reason']}")
    return result.posts, errors
