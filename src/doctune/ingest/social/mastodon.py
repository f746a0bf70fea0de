"""Mastodon account archive (zip or folder) -> ``Post`` rows.

Files: ``actor.json`` (the owner), ``outbox.json`` (an ActivityStreams ``OrderedCollection`` of ``Create``/Note
and ``Announce`` activities), ``likes.json`` and ``bookmarks.json`` (collections of URIs). A deleted post
(``Tombstone``, ``Delete``), an activity or object type this importer does not know and a malformed item are
each reported with file, place and reason; direct messages are counted and left out unless asked for.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from doctune.config_social import SocialConfig
from doctune.ingest.social import ImportResult, iso_utc
from doctune.ingest.social.archive import Archive, ArchiveError, read_json_document
from doctune.ingest.social.detect import MASTODON_MARKERS
from doctune.ingest.social.html_text import html_to_text
from doctune.records import Post

log = logging.getLogger(__name__)

PUBLIC = {"https://www.w3.org/ns/activitystreams#Public", "as:Public", "Public"}
NOTE_TYPES = {"Note", "Question", "Article", "Page"}


class ItemProblem(Exception):
    """One item that cannot become a row: ``code`` (counted) and a detail."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code, self.detail = code, detail


def import_mastodon(path: Path, config: SocialConfig) -> ImportResult:
    """All rows of a Mastodon archive; a file that cannot be read is one error, the other files go on."""
    result = ImportResult()
    try:
        archive = Archive(path, MASTODON_MARKERS)
    except ArchiveError as exc:
        result.error(path.name, "", "unreadable_archive", str(exc))
        return result
    try:
        owner_id, handle = _owner(archive, result)
        if handle:
            result.owners.extend([handle, "@" + handle.split("@")[0]])
        _outbox(archive, config, owner_id, handle, result)
        for name, kind in (("likes.json", "like"), ("bookmarks.json", "bookmark")):
            if archive.exists(name):
                _uri_collection(archive, name, kind, handle, result)
    finally:
        archive.close()
    return result


def _owner(archive: Archive, result: ImportResult) -> tuple[str, str]:
    """(actor URI, handle user@host) from ``actor.json``; ('', '') when missing or unreadable."""
    if not archive.exists("actor.json"):
        result.error("actor.json", "", "missing_file", "the owner is unknown; posts keep an empty author")
        return "", ""
    try:
        actor, _ = read_json_document(archive.read_text("actor.json"))
    except ArchiveError as exc:
        result.error("actor.json", "", "unreadable_file", str(exc))
        return "", ""
    if not isinstance(actor, dict) or not isinstance(actor.get("id"), str):
        result.error("actor.json", "", "malformed_item", "no actor id")
        return "", ""
    user = actor.get("preferredUsername") or ""
    host = urlparse(actor["id"]).netloc
    return actor["id"], f"{user}@{host}" if user else actor["id"]


def _outbox(archive: Archive, config: SocialConfig, owner_id: str, handle: str, result: ImportResult) -> None:
    name = "outbox.json"
    if not archive.exists(name):
        result.error(name, "", "missing_file", "no outbox.json in the archive")
        return
    try:
        doc, partial = read_json_document(archive.read_text(name), "orderedItems")
    except ArchiveError as exc:
        result.error(name, "", "unreadable_file", str(exc))
        return
    if partial is not None:
        items = partial.items
        result.error(name, "", "truncated_file", partial.problem)
    elif isinstance(doc, dict) and isinstance(doc.get("orderedItems"), list):
        items = list(enumerate(doc["orderedItems"]))
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    else:
        result.error(name, "", "unreadable_file", "not an OrderedCollection with orderedItems")
        return
    for index, item in items:
        locator = f"orderedItems[{index}]"
        try:
            post = activity_post(item, handle, name, locator, config, result)
        except ItemProblem as exc:
            result.error(name, locator, exc.code, exc.detail)
            continue
        if post is not None:
            result.add(post)


def activity_post(
    item: Any, handle: str, source: str, locator: str, config: SocialConfig, result: ImportResult
) -> Post | None:
    """The row of one outbox activity (``None`` for a direct message left out); raises ``ItemProblem``."""
    if not isinstance(item, dict):
        raise ItemProblem("malformed_item", f"expected an object, got {type(item).__name__}")
    kind = item.get("type")
    obj = item.get("object")
    if kind == "Create":
        if not isinstance(obj, dict):
            raise ItemProblem("malformed_item", "Create without an embedded object")
        if obj.get("type") == "Tombstone":
            raise ItemProblem("deleted_post", f"Tombstone {obj.get('id', '')}".strip())
        if not config.include_direct_messages and is_direct(obj, item):
            result.excluded["direct_messages"] += 1
            return None
        return note_post(obj, source, locator, author=handle, is_mine=True, published=item.get("published"))
    if kind == "Announce":
        return _boost(item, obj, handle, source, locator)
    if kind == "Delete":
        raise ItemProblem("deleted_post", f"Delete of {_uri(obj)}")
    raise ItemProblem("unknown_activity_type", repr(kind))


def note_post(
    obj: dict[str, Any], source: str, locator: str, author: str, is_mine: bool, published: Any = None
) -> Post:
    """The row of a Note (or Question, Article, Page): mine (post / reply) or someone else's (feed)."""
    if obj.get("type") == "Tombstone":
        raise ItemProblem("deleted_post", f"Tombstone {obj.get('id', '')}".strip())
    if obj.get("type") not in NOTE_TYPES:
        raise ItemProblem("unknown_object_type", repr(obj.get("type")))
    uri = obj.get("id")
    if not isinstance(uri, str) or not uri:
        raise ItemProblem("malformed_item", "Note without an id")
    content_map = obj.get("contentMap") if isinstance(obj.get("contentMap"), dict) else {}
    content = obj.get("content") or next(iter(content_map.values()), "")
    if not isinstance(content, str):
        raise ItemProblem("malformed_item", "content is not a string")
    parent = _uri(obj.get("inReplyTo"))
    kind = ("reply" if parent else "post") if is_mine else "feed"
    attachments = obj.get("attachment") if isinstance(obj.get("attachment"), list) else []
    return Post(
        post_id=f"mastodon:{uri}",
        platform="mastodon",
        kind=kind,
        author=author or _uri(obj.get("attributedTo")),
        is_mine=is_mine,
        created_at=iso_utc(obj.get("published") or published),
        text=html_to_text(content),
        resolved=True,
        in_reply_to=f"mastodon:{parent}" if parent else "",
        conversation=obj.get("conversation") if isinstance(obj.get("conversation"), str) else "",
        language=next(iter(content_map), ""),
        content_warning=obj.get("summary") if isinstance(obj.get("summary"), str) else "",
        media_alt=[a["name"] for a in attachments if isinstance(a, dict) and isinstance(a.get("name"), str)],
        url=_uri(obj.get("url")) or uri,
        source_file=source,
        locator=locator,
    )


def _boost(item: dict[str, Any], obj: Any, handle: str, source: str, locator: str) -> Post:
    target = _uri(obj)
    if not target:
        raise ItemProblem("malformed_item", "Announce without an object")
    base = dict(text="", resolved=False, author="", url="", language="", content_warning="", media_alt=[])
    if isinstance(obj, dict) and obj.get("type") in NOTE_TYPES:  # the boosted post embedded
        inner = note_post(obj, source, locator, author="", is_mine=False)
        base = {k: getattr(inner, k) for k in base}
    activity_id = item.get("id") if isinstance(item.get("id"), str) else f"{target}#boost"
    return Post(
        post_id=f"mastodon:{activity_id}",
        platform="mastodon",
        kind="boost",
        is_mine=True,
        created_at=iso_utc(item.get("published")),
        target=f"mastodon:{target}",
        source_file=source,
        locator=locator,
        **base,
    )


def _uri_collection(archive: Archive, name: str, kind: str, handle: str, result: ImportResult) -> None:
    """``likes.json`` / ``bookmarks.json``: one unresolved row per URI (resolved later when the text is found)."""
    try:
        doc, partial = read_json_document(archive.read_text(name), "orderedItems")
    except ArchiveError as exc:
        result.error(name, "", "unreadable_file", str(exc))
        return
    if partial is not None:
        result.error(name, "", "truncated_file", partial.problem)
        items = partial.items
    elif isinstance(doc, dict) and isinstance(doc.get("orderedItems"), list):
        items = list(enumerate(doc["orderedItems"]))
    else:
        result.error(name, "", "unreadable_file", "not an OrderedCollection with orderedItems")
        return
    for index, uri in items:
        uri = _uri(uri)
        if not uri:
            result.error(name, f"orderedItems[{index}]", "malformed_item", "expected a URI")
            continue
        result.add(
            Post(
                post_id=f"mastodon:{kind}:{uri}",
                platform="mastodon",
                kind=kind,
                author="",
                is_mine=True,
                created_at="",
                text="",
                resolved=False,
                target=f"mastodon:{uri}",
                source_file=name,
                locator=f"orderedItems[{index}]",
            )
        )


def is_direct(obj: dict[str, Any], activity: dict[str, Any]) -> bool:
    """A direct message: addressed neither to the public nor to followers (Mastodon's ``direct`` visibility)."""
    recipients: list[str] = []
    for holder in (obj, activity):
        for key in ("to", "cc"):
            value = holder.get(key)
            recipients.extend([value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)])
    if not recipients:
        return False
    return not any(r in PUBLIC or r.endswith("/followers") for r in recipients)


def _uri(value: Any) -> str:
    """The URI of a link that may be a string, an object with ``id``/``href``, or a list of those."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return _uri(value.get("id") or value.get("href"))
    if isinstance(value, list) and value:
        return _uri(value[0])
    return ""
