"""Resolving what an archive names only by id: the posts I replied to, liked, bookmarked or boosted.

In order: the archive itself, the feed files of ``social.feeds``, then, only when ``social.resolve_network`` is
true, the network (:mod:`doctune.ingest.social.network`). A like, bookmark or boost row takes the text, author,
date and language of the post it acts on; a reply's parent not in the archive becomes a row of kind ``feed``.
What stays unknown is kept (``resolved`` False, text '') and counted, never dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from doctune.records import Post

_ACTS = ("like", "bookmark", "boost")
_COPIED = ("text", "author", "url", "language", "content_warning", "media_alt")


def resolve_posts(
    archive_posts: list[Post], feed_posts: list[Post], fetch: Callable[[str], Post | None] | None = None
) -> tuple[list[Post], dict[str, Any]]:
    """All rows (archive rows, then feed rows not already there, then unknown parents) and the resolution stats."""
    rows: dict[str, Post] = {}
    for p in archive_posts + feed_posts:
        rows.setdefault(p.post_id, p)
    known: dict[str, tuple[Post, str]] = {}
    for p in archive_posts:
        if p.resolved and p.kind not in _ACTS:
            known.setdefault(p.post_id, (p, "archive"))
    for p in feed_posts:
        known.setdefault(p.post_id, (p, "feeds"))
    resolved_from: Counter[str] = Counter()

    def lookup(post_id: str) -> tuple[Post, str] | None:
        if post_id in known:
            return known[post_id]
        if fetch is None or not post_id.startswith("mastodon:"):
            return None
        post = fetch(post_id.removeprefix("mastodon:"))
        if post is None:
            return None
        post = post.model_copy(update={"post_id": post_id})  # the URI asked for, whatever the answer calls it
        known[post_id] = (post, "network")
        return known[post_id]

    for post_id, p in list(rows.items()):
        if p.kind in _ACTS and not p.resolved and p.target:
            found = lookup(p.target)
            if found is not None:
                src, where = found
                update = {k: getattr(src, k) for k in _COPIED} | {"resolved": True}
                if p.kind != "boost" or not p.created_at:
                    update["created_at"] = src.created_at
                rows[post_id] = p.model_copy(update=update)
                resolved_from[where] += 1
    unresolved_parents = 0
    for p in list(rows.values()):
        parent = p.in_reply_to
        if not parent or parent in rows or not (p.is_mine and p.kind == "reply"):
            continue
        found = lookup(parent)
        if found is not None:
            rows[parent] = found[0]
            resolved_from[found[1]] += 1
            continue
        unresolved_parents += 1
        rows[parent] = Post(
            post_id=parent,
            platform=p.platform,
            kind="feed",
            author="",
            is_mine=False,
            created_at="",
            text="",
            resolved=False,
            conversation=p.conversation,
            source_file=p.source_file,
            locator=f"{p.locator}.in_reply_to".lstrip("."),
        )
    out = _twitter_conversations(list(rows.values()))
    unresolved = Counter(p.kind for p in out if p.kind in _ACTS and not p.resolved)
    stats = {
        "resolved_from": dict(resolved_from),
        "unresolved_parents": unresolved_parents,
        "unresolved_likes": unresolved["like"],
        "unresolved_bookmarks": unresolved["bookmark"],
        "unresolved_boosts": unresolved["boost"],
    }
    return out, stats


def _twitter_conversations(posts: list[Post]) -> list[Post]:
    """Twitter archives carry no conversation id: a tweet's conversation is the root of its reply chain."""
    by_id = {p.post_id: p for p in posts}

    def root(p: Post) -> str:
        seen = {p.post_id}
        while p.in_reply_to and p.in_reply_to not in seen:
            seen.add(p.in_reply_to)
            parent = by_id.get(p.in_reply_to)
            if parent is None:
                return p.in_reply_to
            p = parent
        return p.post_id

    return [
        p.model_copy(update={"conversation": root(p)})
        if p.platform == "twitter" and not p.conversation and p.kind in ("post", "reply", "feed")
        else p
        for p in posts
    ]
