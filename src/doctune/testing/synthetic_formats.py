"""The real formats the synthetic account is written in: a Mastodon account export (``outbox.json`` as an
ActivityStreams ``OrderedCollection`` of ``Create``/``Note``, ``Announce`` and ``Delete``/``Tombstone`` activities,
``likes.json``, ``bookmarks.json``, ``actor.json``, media files, zipped) and Mastodon API status JSON (a feed file).

Shapes follow Mastodon's own serializers as they appear in ``federation_activitypub_fixtures.json``; as in a real
export, activities carry no ``@context`` or signature of their own and attachment URLs are paths inside the zip."""

from __future__ import annotations

import hashlib
import html
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
MASTODON_CONTEXT: list[Any] = [
    AS_CONTEXT,
    {
        "ostatus": "http://ostatus.org#",
        "atomUri": "ostatus:atomUri",
        "inReplyToAtomUri": "ostatus:inReplyToAtomUri",
        "conversation": "ostatus:conversation",
        "sensitive": "as:sensitive",
        "Hashtag": "as:Hashtag",
        "toot": "http://joinmastodon.org/ns#",
        "Emoji": "toot:Emoji",
        "blurhash": "toot:blurhash",
    },
]
# a valid 1x1 PNG: the media files and avatar inside the zip
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cf000001010100189dd8e10000000049454e44ae426082"
)
ZIP_DATE = (2024, 12, 31, 0, 0, 0)


@dataclass
class Author:
    username: str
    domain: str
    display_name: str
    account_id: str

    @property
    def actor(self) -> str:
        return f"https://{self.domain}/users/{self.username}"

    @property
    def profile(self) -> str:
        return f"https://{self.domain}/@{self.username}"


@dataclass
class Status:
    """One status, mine or a feed author's, before it is written in either format."""

    sid: str
    author: Author
    created: datetime
    sentences: list[str]
    language: str = "en"
    spoiler: str = ""
    media_alt: list[str] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    parent: Status | None = None
    parent_uri: str = ""
    conversation: str = ""

    @property
    def uri(self) -> str:
        return f"{self.author.actor}/statuses/{self.sid}"

    @property
    def url(self) -> str:
        return f"{self.author.profile}/{self.sid}"

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def snowflake(ts: datetime, seq: int) -> str:
    """A Mastodon-style id: milliseconds since the epoch shifted left 16 bits, plus a sequence number."""
    return str((int(ts.timestamp() * 1000) << 16) + (seq % 65536))


def ap_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def mention_html(who: Author) -> str:
    return (
        f'<span class="h-card" translate="no"><a href="{who.profile}" class="u-url mention">'
        f"@<span>{html.escape(who.username)}</span></a></span>"
    )


def content_html(status: Status) -> str:
    """The status body as Mastodon renders it: paragraphs, an h-card mention for replies, hashtag links."""
    body = html.escape(status.text, quote=False)
    if status.parent is not None:
        body = mention_html(status.parent.author) + " " + body
    paragraphs = [f"<p>{body}</p>"]
    if status.hashtags:
        links = " ".join(
            f'<a href="https://{status.author.domain}/tags/{t}" class="mention hashtag" rel="tag">#<span>{t}</span></a>'
            for t in status.hashtags
        )
        paragraphs.append(f"<p>{links}</p>")
    return "".join(paragraphs)


def media_path(status: Status, n: int) -> str:
    digest = hashlib.sha256(f"{status.sid}:{n}".encode()).hexdigest()
    return f"media_attachments/files/{digest[:3]}/{digest[3:6]}/{digest[6:9]}/original/{digest[9:25]}.png"


def note_activity(status: Status) -> dict[str, Any]:
    """A ``Create`` of a ``Note`` as in outbox.json (Mastodon's ActivitySerializer, export form)."""
    followers = f"{status.author.actor}/followers"
    cc = [followers] + ([status.parent.author.actor] if status.parent is not None else [])
    content = content_html(status)
    tags: list[dict[str, Any]] = [
        {"type": "Hashtag", "href": f"https://{status.author.domain}/tags/{t}", "name": f"#{t}"}
        for t in status.hashtags
    ]
    if status.parent is not None:
        who = status.parent.author
        tags.append({"type": "Mention", "href": who.actor, "name": f"@{who.username}@{who.domain}"})
    attachment = [
        {
            "type": "Document",
            "mediaType": "image/png",
            "url": media_path(status, n),
            "name": alt,
            "blurhash": "U00000fQfQfQfQfQfQfQfQfQfQfQ",
            "width": 1,
            "height": 1,
        }
        for n, alt in enumerate(status.media_alt)
    ]
    reply_to = status.parent.uri if status.parent is not None else (status.parent_uri or None)
    return {
        "id": f"{status.uri}/activity",
        "type": "Create",
        "actor": status.author.actor,
        "published": ap_time(status.created),
        "to": [AS_PUBLIC],
        "cc": cc,
        "object": {
            "id": status.uri,
            "type": "Note",
            "summary": status.spoiler or None,
            "inReplyTo": reply_to,
            "published": ap_time(status.created),
            "url": status.url,
            "attributedTo": status.author.actor,
            "to": [AS_PUBLIC],
            "cc": cc,
            "sensitive": bool(status.spoiler),
            "atomUri": status.uri,
            "inReplyToAtomUri": reply_to,
            "conversation": status.conversation,
            "content": content,
            "contentMap": {status.language: content},
            "attachment": attachment,
            "tag": tags,
            "replies": {
                "id": f"{status.uri}/replies",
                "type": "Collection",
                "first": {"type": "CollectionPage", "partOf": f"{status.uri}/replies", "items": []},
            },
        },
    }


def announce_activity(owner: Author, sid: str, created: datetime, target_uri: str, target_actor: str) -> dict:
    """A boost (``Announce``); its object is the boosted status's URI, as in the fixtures."""
    uri = f"{owner.actor}/statuses/{sid}/activity"
    return {
        "id": uri,
        "type": "Announce",
        "actor": owner.actor,
        "published": ap_time(created),
        "to": [AS_PUBLIC],
        "cc": [target_actor, f"{owner.actor}/followers"],
        "object": target_uri,
        "atomUri": uri,
    }


def delete_activity(owner: Author, sid: str, deleted: datetime) -> dict[str, Any]:
    """A deleted status: ``Delete`` with a ``Tombstone`` object (the fixtures' shape)."""
    uri = f"{owner.actor}/statuses/{sid}"
    return {
        "id": f"{uri}#delete",
        "type": "Delete",
        "actor": owner.actor,
        "published": ap_time(deleted),
        "to": [AS_PUBLIC],
        "cc": [f"{owner.actor}/followers"],
        "object": {"id": uri, "type": "Tombstone"},
    }


def ordered_collection(name: str, items: list[Any], total: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"@context": AS_CONTEXT, "id": name, "type": "OrderedCollection"}
    if total:
        out["totalItems"] = len(items)
    out["orderedItems"] = items
    return out


def actor_document(owner: Author, created: datetime, bio: str) -> dict[str, Any]:
    return {
        "@context": [AS_CONTEXT, "https://w3id.org/security/v1", MASTODON_CONTEXT[1]],
        "id": owner.actor,
        "type": "Person",
        "following": f"{owner.actor}/following",
        "followers": f"{owner.actor}/followers",
        "inbox": f"{owner.actor}/inbox",
        "outbox": "outbox.json",
        "featured": f"{owner.actor}/collections/featured",
        "preferredUsername": owner.username,
        "name": owner.display_name,
        "summary": f"<p>{html.escape(bio)}</p>",
        "url": owner.profile,
        "manuallyApprovesFollowers": False,
        "discoverable": True,
        "published": ap_time(created),
        "tag": [],
        "attachment": [],
        "endpoints": {"sharedInbox": f"https://{owner.domain}/inbox"},
        "icon": {"type": "Image", "mediaType": "image/png", "url": "avatar.png"},
        "likes": "likes.json",
        "bookmarks": "bookmarks.json",
    }


def api_account(who: Author) -> dict[str, Any]:
    return {
        "id": who.account_id,
        "username": who.username,
        "acct": f"{who.username}@{who.domain}",
        "display_name": who.display_name,
        "locked": False,
        "bot": False,
        "created_at": "2022-11-01T00:00:00.000Z",
        "note": "",
        "url": who.profile,
        "uri": who.actor,
        "avatar": f"https://{who.domain}/avatars/original/missing.png",
        "followers_count": 100 + int(who.account_id) % 900,
        "following_count": 50 + int(who.account_id) % 300,
        "statuses_count": 1000 + int(who.account_id) % 5000,
        "emojis": [],
        "fields": [],
    }


def api_status(status: Status) -> dict[str, Any]:
    """A status as the Mastodon REST API returns it (``GET /api/v1/timelines/home``), saved before I acted on it."""
    parent = status.parent
    return {
        "id": status.sid,
        "created_at": api_time(status.created),
        "in_reply_to_id": parent.sid if parent is not None else None,
        "in_reply_to_account_id": parent.author.account_id if parent is not None else None,
        "sensitive": bool(status.spoiler),
        "spoiler_text": status.spoiler,
        "visibility": "public",
        "language": status.language,
        "uri": status.uri,
        "url": status.url,
        "replies_count": 0,
        "reblogs_count": int(status.sid) % 7,
        "favourites_count": int(status.sid) % 23,
        "edited_at": None,
        "favourited": False,
        "reblogged": False,
        "bookmarked": False,
        "content": content_html(status),
        "reblog": None,
        "account": api_account(status.author),
        "media_attachments": [
            {
                "id": f"{status.sid}{n}",
                "type": "image",
                "url": f"https://{status.author.domain}/{media_path(status, n)}",
                "preview_url": None,
                "remote_url": None,
                "description": alt,
                "blurhash": None,
            }
            for n, alt in enumerate(status.media_alt)
        ],
        "mentions": (
            [
                {
                    "id": parent.author.account_id,
                    "username": parent.author.username,
                    "url": parent.author.profile,
                    "acct": f"{parent.author.username}@{parent.author.domain}",
                }
            ]
            if parent is not None
            else []
        ),
        "tags": [{"name": t, "url": f"https://{status.author.domain}/tags/{t}"} for t in status.hashtags],
        "emojis": [],
        "card": None,
        "poll": None,
    }


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


def write_export_zip(path: Path, files: dict[str, Any], media: list[str]) -> None:
    """The export zip, byte-for-byte reproducible (fixed timestamps, sorted names)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            data = json.dumps(files[name], ensure_ascii=False, indent=1).encode()
            zf.writestr(zipfile.ZipInfo(name, ZIP_DATE), data, compress_type=zipfile.ZIP_DEFLATED)
        for name in ["avatar.png", *sorted(set(media))]:
            zf.writestr(zipfile.ZipInfo(name, ZIP_DATE), TINY_PNG)
