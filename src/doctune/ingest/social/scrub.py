"""Privacy scrubbing of post text before it goes into training examples or exports (``social.scrub_*``).

E-mail addresses become ``[email]``, phone numbers (9 digits or more, with the usual separators) ``[phone]``,
other people's handles (``@name``, ``@name@host``) ``@user``; the archive owner's own handles are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from doctune.config_social import SocialConfig

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{6,}\d(?!\w)")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$|^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$")
_HANDLE = re.compile(r"(?<![\w@/])@([A-Za-z0-9_]+)(@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?")


def _phone(match: re.Match[str]) -> str:
    found = match.group(0)
    digits = sum(c.isdigit() for c in found)
    if digits < 9 or digits > 15 or _DATE.match(found.strip()):
        return found
    return "[phone]"


def scrub_text(text: str, config: SocialConfig, own_handles: Iterable[str] = ()) -> str:
    """``text`` with what ``config`` asks scrubbed; ``own_handles`` (``@me``, ``me@host``) are never replaced."""
    if config.scrub_handles:
        keep = {h.lstrip("@").lower() for h in own_handles}

        def handle(match: re.Match[str]) -> str:
            full = match.group(0).lstrip("@").lower()
            return match.group(0) if full in keep or match.group(1).lower() in keep else "@user"

        text = _HANDLE.sub(handle, text)
    if config.scrub_emails:
        text = _EMAIL.sub("[email]", text)
    if config.scrub_phones:
        text = _PHONE.sub(_phone, text)
    return text


def training_posts(config, workspace) -> list:
    """The ``posts`` artifact as the personal recipes train on it: each text scrubbed as ``social.scrub_*`` ask (the
    owners' own handles kept). Search and ranking read the posts as imported: they stay on this machine."""
    from doctune.records import Post

    posts = workspace.read_rows("posts", Post, config)
    owners = workspace.manifest()["posts"].stats.get("owners") or []
    handles = [h for o in (owners.values() if isinstance(owners, dict) else owners) for h in _as_list(o)]
    return [p.model_copy(update={"text": scrub_text(p.text, config.social, handles)}) for p in posts]


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]
