"""Which archive a path is: ``mastodon``, ``twitter`` or ``None`` (zip or unpacked folder)."""

from __future__ import annotations

import zipfile
from pathlib import Path

#: the values of ``doctune ingest --as`` that mean a social archive
ARCHIVE_KINDS = ("mastodon", "twitter")

MASTODON_MARKERS = ("outbox.json", "actor.json")
TWITTER_MARKERS = ("data/tweets.js", "data/tweet.js", "data/account.js", "data/like.js", "data/tweets-part1.js")


def _names(path: Path) -> list[str]:
    if path.is_dir():
        names = []
        for p in path.rglob("*"):
            if len(names) > 100_000:
                break
            if p.is_file():
                names.append(p.relative_to(path).as_posix())
        return names
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                return zf.namelist()
        except (zipfile.BadZipFile, OSError):
            return []
    return []


def _has(names: list[str], marker: str) -> bool:
    return any(n == marker or n.endswith("/" + marker) for n in names)


def detect_archive(path: Path) -> str | None:
    """``mastodon`` when the zip or folder holds ``outbox.json`` (or ``actor.json``), ``twitter`` when it holds
    ``data/tweets.js`` (or ``tweet.js``, ``account.js``, ``like.js``); otherwise ``None``."""
    names = _names(path)
    if any(_has(names, m) for m in MASTODON_MARKERS):
        return "mastodon"
    if any(_has(names, m) for m in TWITTER_MARKERS):
        return "twitter"
    return None


def split_archives(paths: list[Path], as_kind: str | None) -> tuple[list[str], list[str]]:
    """(social archives, other paths) of an ``ingest`` command line: with ``--as mastodon|twitter`` every path is
    an archive; with no ``--as``, archives are recognised; with ``--as play|prose`` none is."""
    if as_kind in ARCHIVE_KINDS:
        return [str(p) for p in paths], []
    if as_kind is not None:
        return [], [str(p) for p in paths]
    archives = [str(p) for p in paths if detect_archive(p)]
    return archives, [str(p) for p in paths if str(p) not in archives]
