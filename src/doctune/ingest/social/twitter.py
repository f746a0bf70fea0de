"""Twitter/X archive (zip or folder) -> ``Post`` rows.

Files under ``data/``: ``account.js`` (the owner), ``tweets.js`` (older archives: ``tweet.js``; large ones add
``tweets-part1.js``, ...), each ``window.YTD.tweets.part0 = [{"tweet": {...}}, ...]``; ``note-tweet.js`` (the full
text of long posts that ``tweets.js`` cuts: matched by time and text prefix, as the export carries no link
between the two); ``like.js`` (liked tweet ids, sometimes with their text); ``direct-messages.js`` (left out unless
``social.include_direct_messages``). t.co links are expanded from ``entities``, media links dropped (the alt text
is kept in ``media_alt``); retweets are boosts.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from doctune.config_social import SocialConfig
from doctune.ingest.social import ImportResult, iso_utc
from doctune.ingest.social.archive import Archive, ArchiveError, iter_objects, read_ytd
from doctune.ingest.social.detect import TWITTER_MARKERS
from doctune.records import Post

_RT = re.compile(r"^RT @(\w+): ?")
_TWEET_FILES = re.compile(r"^data/(tweets?|tweets?-part\d+)\.js$")


def _ytd(archive: Archive, name: str, result: ImportResult) -> list[tuple[int, Any]]:
    """The items of one ``.js`` file; a cut file keeps the items before the cut (and one error)."""
    try:
        read = read_ytd(archive.read_text(name))
    except ArchiveError as exc:
        result.error(name, "", "unreadable_file", str(exc))
        return []
    if read.problem:
        result.error(name, "", "truncated_file", read.problem)
    return read.items


def import_twitter(path: Path, config: SocialConfig) -> ImportResult:
    """All rows of a Twitter archive; a file that cannot be read is one error, the other files go on."""
    result = ImportResult()
    try:
        archive = Archive(path, TWITTER_MARKERS)
    except ArchiveError as exc:
        result.error(path.name, "", "unreadable_archive", str(exc))
        return result
    try:
        username, account_id = _account(archive, result)
        if username:
            result.owners.append("@" + username)
        notes = _note_tweets(archive, result)
        tweet_files = sorted((n for n in archive.names() if _TWEET_FILES.match(n)), key=_part_number)
        if not tweet_files:
            result.error("data/tweets.js", "", "missing_file", "no data/tweets.js or data/tweet.js in the archive")
        for name in tweet_files:
            for index, tweet in iter_objects(_ytd(archive, name, result), "tweet"):
                locator = f"[{index}].tweet"
                try:
                    result.add(tweet_post(tweet, username, name, locator, notes, is_mine=True))
                except ValueError as exc:
                    result.error(name, locator, "malformed_item", str(exc))
        if archive.exists("data/like.js"):
            _likes(archive, result)
        dm_files = [n for n in archive.names() if re.match(r"^data/direct-messages(-group)?(-part\d+)?\.js$", n)]
        for name in dm_files:
            if config.include_direct_messages:
                _direct_messages(archive, name, username, account_id, result)
            else:
                result.excluded["direct_messages"] += sum(
                    len(c.get("messages") or []) if isinstance(c, dict) else 0
                    for _, c in iter_objects(_ytd(archive, name, result), "dmConversation")
                )
    finally:
        archive.close()
    return result


def _part_number(name: str) -> int:
    """0 for tweets.js / tweet.js, N for tweets-partN.js: the archive's own order."""
    match = re.search(r"-part(\d+)\.js$", name)
    return int(match.group(1)) if match else 0


def _account(archive: Archive, result: ImportResult) -> tuple[str, str]:
    name = "data/account.js"
    if not archive.exists(name):
        result.error(name, "", "missing_file", "the owner is unknown; posts keep an empty author")
        return "", ""
    for _, account in iter_objects(_ytd(archive, name, result), "account"):
        if isinstance(account, dict) and account.get("username"):
            return str(account["username"]), str(account.get("accountId") or "")
    result.error(name, "", "malformed_item", "no account with a username")
    return "", ""


def _prefix_key(text: str) -> str:
    """The comparable start of a tweet's text: links, ellipses and spacing removed."""
    text = re.sub(r"https?://\S+", "", html.unescape(text)).replace("…", "")
    return re.sub(r"\s+", " ", text).strip()[:40]


def _note_tweets(archive: Archive, result: ImportResult) -> dict[tuple[str, str], str]:
    """(created_at, text prefix) -> full text of each long post, with its links expanded."""
    name = "data/note-tweet.js"
    if not archive.exists(name):
        return {}
    out: dict[tuple[str, str], str] = {}
    for index, note in iter_objects(_ytd(archive, name, result), "noteTweet"):
        core = note.get("core") if isinstance(note, dict) else None
        if not isinstance(core, dict) or not isinstance(core.get("text"), str):
            result.error(name, f"[{index}].noteTweet", "malformed_item", "no core.text")
            continue
        text = core["text"]
        for url in core.get("urls") or []:
            if isinstance(url, dict) and url.get("shortUrl") and url.get("expandedUrl"):
                text = text.replace(url["shortUrl"], url["expandedUrl"])
        out[(iso_utc(note.get("createdAt")), _prefix_key(text))] = text
    return out


def expand_text(tweet: dict[str, Any]) -> str:
    """``full_text`` with t.co links replaced by their ``expanded_url``, media links removed, entities unescaped."""
    text = tweet.get("full_text") if isinstance(tweet.get("full_text"), str) else tweet.get("text")
    if not isinstance(text, str):
        raise ValueError("no full_text")
    entities = tweet.get("entities") if isinstance(tweet.get("entities"), dict) else {}
    for url in entities.get("urls") or []:
        if isinstance(url, dict) and url.get("url"):
            text = text.replace(url["url"], url.get("expanded_url") or url["url"])
    media = (tweet.get("extended_entities") or {}).get("media") or entities.get("media") or []
    for m in media:
        if isinstance(m, dict) and m.get("url"):
            text = text.replace(m["url"], "")
    return html.unescape(text).strip()


def tweet_post(
    tweet: Any,
    username: str,
    source: str,
    locator: str,
    notes: dict[tuple[str, str], str] | None = None,
    is_mine: bool = True,
) -> Post:
    """The row of one tweet (mine: post, reply or boost; someone else's: feed). Raises ``ValueError``."""
    if not isinstance(tweet, dict):
        raise ValueError(f"expected an object, got {type(tweet).__name__}")
    tweet_id = tweet.get("id_str") or tweet.get("id")
    if not tweet_id:
        raise ValueError("no id_str")
    text = expand_text(tweet)
    created = iso_utc(tweet.get("created_at"))
    full = (notes or {}).get((created, _prefix_key(text)))
    if full is not None:
        text = full
    author = username
    if not is_mine:
        user = tweet.get("user") if isinstance(tweet.get("user"), dict) else {}
        author = user.get("screen_name") or tweet.get("screen_name") or ""
    parent = tweet.get("in_reply_to_status_id_str") or ""
    target, rt = "", _RT.match(text)
    retweeted = tweet.get("retweeted_status") if isinstance(tweet.get("retweeted_status"), dict) else None
    if is_mine and (rt or retweeted):
        kind = "boost"
        if retweeted:
            target = f"twitter:{retweeted.get('id_str') or retweeted.get('id')}"
            text, author = expand_text(retweeted), ((retweeted.get("user") or {}).get("screen_name") or "")
        else:
            text, author = text[rt.end() :], rt.group(1)
    else:
        kind = ("reply" if parent else "post") if is_mine else "feed"
    media = (tweet.get("extended_entities") or {}).get("media") or []
    return Post(
        post_id=f"twitter:{tweet_id}",
        platform="twitter",
        kind=kind,
        author=author,
        is_mine=is_mine,
        created_at=created,
        text=text,
        resolved=True,
        in_reply_to=f"twitter:{parent}" if parent else "",
        target=target,
        language=tweet.get("lang") if isinstance(tweet.get("lang"), str) and tweet.get("lang") != "und" else "",
        media_alt=[m["ext_alt_text"] for m in media if isinstance(m, dict) and isinstance(m.get("ext_alt_text"), str)],
        url=f"https://twitter.com/{author or 'i/web'}/status/{tweet_id}" if kind != "boost" else "",
        source_file=source,
        locator=locator,
    )


def _likes(archive: Archive, result: ImportResult) -> None:
    name = "data/like.js"
    for index, like in iter_objects(_ytd(archive, name, result), "like"):
        locator = f"[{index}].like"
        tweet_id = like.get("tweetId") if isinstance(like, dict) else None
        if not tweet_id:
            result.error(name, locator, "malformed_item", "no tweetId")
            continue
        text = like.get("fullText") if isinstance(like.get("fullText"), str) else ""
        result.add(
            Post(
                post_id=f"twitter:like:{tweet_id}",
                platform="twitter",
                kind="like",
                author="",
                is_mine=True,
                created_at="",
                text=html.unescape(text),
                resolved=bool(text),
                target=f"twitter:{tweet_id}",
                url=like.get("expandedUrl") or "",
                source_file=name,
                locator=locator,
            )
        )


def _direct_messages(archive: Archive, name: str, username: str, account_id: str, result: ImportResult) -> None:
    """Direct messages, when asked for: mine are replies to the message before (or posts), others' are feed."""
    for index, conv in iter_objects(_ytd(archive, name, result), "dmConversation"):
        if not isinstance(conv, dict):
            result.error(name, f"[{index}]", "malformed_item", "no dmConversation")
            continue
        messages = [m.get("messageCreate") for m in conv.get("messages") or [] if isinstance(m, dict)]
        messages = sorted(
            (m for m in messages if isinstance(m, dict) and m.get("id")), key=lambda m: m.get("createdAt", "")
        )
        previous = ""
        for m in messages:
            mine = bool(account_id) and m.get("senderId") == account_id
            post_id = f"twitter:dm:{m['id']}"
            result.add(
                Post(
                    post_id=post_id,
                    platform="twitter",
                    kind=("reply" if previous else "post") if mine else "feed",
                    author=username if mine else str(m.get("senderId") or ""),
                    is_mine=mine,
                    created_at=iso_utc(m.get("createdAt")),
                    text=html.unescape(m.get("text") or ""),
                    resolved=True,
                    in_reply_to=previous if mine else "",
                    conversation=f"twitter:dm:{conv.get('conversationId', '')}",
                    source_file=name,
                    locator=f"[{index}].dmConversation.messages[{m['id']}]",
                )
            )
            previous = "" if mine else post_id
