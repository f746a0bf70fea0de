"""Social archives (Mastodon, Twitter/X) -> ``Post`` rows of the ``posts`` artifact.

Each importer reads one archive (a zip or the unpacked folder) and returns an :class:`ImportResult`: the rows, one
:class:`~doctune.records.IngestError` per item it could not use (file, place in the file, reason) and counts. A bad
item or a cut file never stops the import: what can be read is kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from doctune.records import IngestError, Post


@dataclass
class ImportResult:
    """Rows, per-item errors and counts of one import (or of several, merged)."""

    posts: list[Post] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)
    error_reasons: Counter[str] = field(default_factory=Counter)  # short reason code -> count
    per_file: Counter[str] = field(default_factory=Counter)  # source file -> rows
    excluded: Counter[str] = field(default_factory=Counter)  # e.g. direct_messages -> count
    owners: list[str] = field(default_factory=list)  # the archive owners' handles

    def error(self, source: str, locator: str, code: str, detail: str = "") -> None:
        """Record one unusable item: ``code`` is the short reason counted in stats, ``detail`` says more."""
        where = f"{source} {locator}".strip()
        self.errors.append(IngestError(source_path=where, reason=f"{code}: {detail}" if detail else code))
        self.error_reasons[code] += 1

    def add(self, post: Post) -> None:
        self.posts.append(post)
        self.per_file[post.source_file] += 1

    def merge(self, other: ImportResult) -> None:
        self.posts.extend(other.posts)
        self.errors.extend(other.errors)
        self.error_reasons.update(other.error_reasons)
        self.per_file.update(other.per_file)
        self.excluded.update(other.excluded)
        self.owners.extend(o for o in other.owners if o not in self.owners)


def iso_utc(value: object) -> str:
    """ISO 8601 UTC (``2019-06-29T21:08:45Z``) of an ActivityStreams date, ``Wed Oct 10 20:19:24 +0000 2018``
    (Twitter) or an ISO date with any offset; ``""`` for what cannot be read."""
    if not isinstance(value, str) or not value.strip():
        return ""
    text = value.strip()
    for parse in (
        lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")),
        lambda t: datetime.strptime(t, "%a %b %d %H:%M:%S %z %Y"),
    ):
        try:
            dt = parse(text)
        except ValueError:
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ""
