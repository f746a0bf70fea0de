"""Feed and timeline files the user adds (``social.feeds``) -> ``Post`` rows of kind ``feed``.

A file holds a Mastodon API status list (``GET /api/v1/timelines/home``: ``[{"id", "uri", "url", "content",
"account": {"acct"}, ...}]``), one status, an ActivityPub object, activity or collection (``orderedItems`` /
``items``), or tweets (``{"id_str", "full_text", ...}``, wrapped in ``{"tweet": ...}`` or not). An item of
another shape is reported and the rest goes on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from doctune.ingest.social import ImportResult, iso_utc
from doctune.ingest.social.archive import ArchiveError, read_json_document
from doctune.ingest.social.html_text import html_to_text
from doctune.ingest.social.mastodon import NOTE_TYPES, ItemProblem, note_post
from doctune.ingest.social.twitter import tweet_post
from doctune.records import Post


def status_post(status: dict[str, Any], source: str, locator: str, id_to_uri: dict[str, str] | None = None) -> Post:
    """The row of a Mastodon API status (a boost in a timeline becomes the boosted status). Raises ``ItemProblem``."""
    if isinstance(status.get("reblog"), dict):
        status = status["reblog"]
    uri = status.get("uri") or status.get("url")
    if not isinstance(uri, str) or not uri:
        raise ItemProblem("malformed_item", "status without uri")
    account = status.get("account") if isinstance(status.get("account"), dict) else {}
    acct = str(account.get("acct") or "")
    if acct and "@" not in acct and isinstance(account.get("url"), str):
        acct = f"{acct}@{urlparse(account['url']).netloc}"  # a local account: acct has no host
    parent = (id_to_uri or {}).get(str(status.get("in_reply_to_id") or ""), "")
    media = status.get("media_attachments") if isinstance(status.get("media_attachments"), list) else []
    return Post(
        post_id=f"mastodon:{uri}",
        platform="mastodon",
        kind="feed",
        author=acct,
        is_mine=False,
        created_at=iso_utc(status.get("created_at")),
        text=html_to_text(status.get("content") or ""),
        resolved=True,
        in_reply_to=f"mastodon:{parent}" if parent else "",
        language=status.get("language") or "",
        content_warning=status.get("spoiler_text") or "",
        media_alt=[m["description"] for m in media if isinstance(m, dict) and isinstance(m.get("description"), str)],
        url=status.get("url") or uri,
        source_file=source,
        locator=locator,
    )


def feed_item_post(item: Any, source: str, locator: str, id_to_uri: dict[str, str]) -> Post:
    """The row of one feed item of any supported shape. Raises ``ItemProblem``."""
    if not isinstance(item, dict):
        raise ItemProblem("malformed_item", f"expected an object, got {type(item).__name__}")
    if "tweet" in item and isinstance(item["tweet"], dict):
        item = item["tweet"]
    if "account" in item and ("content" in item or "reblog" in item):
        return status_post(item, source, locator, id_to_uri)
    if item.get("type") in ("Create", "Announce", "Update") and isinstance(item.get("object"), dict):
        item = item["object"]
    if item.get("type") in NOTE_TYPES or item.get("type") == "Tombstone":
        return note_post(item, source, locator, author="", is_mine=False)
    if "id_str" in item or "full_text" in item:
        try:
            return tweet_post(item, "", source, locator, is_mine=False)
        except ValueError as exc:
            raise ItemProblem("malformed_item", str(exc)) from None
    raise ItemProblem("unknown_feed_item", f"type {item.get('type')!r}, keys {sorted(item)[:6]}")


def load_feeds(paths: list[str]) -> ImportResult:
    """The posts of every feed file; a missing or unreadable file is one error, the other files go on."""
    result = ImportResult()
    for p in paths:
        path = Path(p)
        source = path.name
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            result.error(source, "", "unreadable_file", f"cannot be read ({exc.strerror or exc})")
            continue
        try:
            doc, partial = read_json_document(text, "orderedItems")
        except ArchiveError as exc:
            result.error(source, "", "unreadable_file", str(exc))
            continue
        if partial is not None:
            result.error(source, "", "truncated_file", partial.problem)
            items, prefix = partial.items, "orderedItems"
        elif isinstance(doc, list):
            items, prefix = list(enumerate(doc)), ""
        elif isinstance(doc, dict) and isinstance(doc.get("orderedItems") or doc.get("items"), list):
            prefix = "orderedItems" if "orderedItems" in doc else "items"
            items = list(enumerate(doc[prefix]))
        elif isinstance(doc, dict):
            items, prefix = [(0, doc)], ""
        else:
            result.error(source, "", "unreadable_file", f"expected JSON objects, got {json.dumps(doc)[:40]}")
            continue
        id_to_uri = {
            str(i["id"]): i["uri"]
            for _, i in items
            if isinstance(i, dict) and "id" in i and isinstance(i.get("uri"), str)
        }
        for index, item in items:
            locator = f"{prefix}[{index}]"
            try:
                result.add(feed_item_post(item, source, locator, id_to_uri))
            except ItemProblem as exc:
                result.error(source, locator, exc.code, exc.detail)
    return result
