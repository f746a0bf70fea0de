"""Plain text and Markdown: the document text is the decoded source, so character offsets are source offsets.

The only change made to the source is line-ending normalisation (``\\r\\n`` and ``\\r`` become ``\\n``).
"""

from __future__ import annotations

import re

from doctune.config import IngestConfig
from doctune.ingest.base import Extracted, SourceFile, first_nonempty_line, normalize_newlines, shorten_title

_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(?P<title>.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")
_FRONT_MATTER_TITLE = re.compile(r"^title:\s*(?P<title>.+?)\s*$")


def read_plain_text(source: SourceFile, cfg: IngestConfig) -> Extracted:
    """A ``.txt`` file; the title is its first non-empty line, or the file name."""
    text = normalize_newlines(source.text)
    line = first_nonempty_line(text)
    return Extracted(text=text, title=shorten_title(line) if line else source.path.stem)


def read_markdown(source: SourceFile, cfg: IngestConfig) -> Extracted:
    """A Markdown file; the title is its front-matter title, first heading, first non-empty line, or file name."""
    text = normalize_newlines(source.text)
    return Extracted(text=text, title=markdown_title(text) or source.path.stem)


def markdown_title(text: str) -> str | None:
    """The document title of Markdown ``text``, or ``None`` when it has no text at all."""
    lines = text.split("\n")
    body_start = 0
    if lines and lines[0].strip() == "---":
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() in ("---", "..."):
                for meta in lines[1:i]:
                    if m := _FRONT_MATTER_TITLE.match(meta):
                        return shorten_title(m.group("title").strip("'\""))
                body_start = i + 1
                break
    fence: str | None = None
    previous = ""
    for line in lines[body_start:]:
        if m := _FENCE.match(line):
            marker = m.group("fence")
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence) and not line.strip().strip(marker[0]):
                fence = None
            previous = ""
            continue
        if fence is not None:
            continue
        if m := _ATX_HEADING.match(line):
            return shorten_title(m.group("title"))
        if previous.strip() and _SETEXT_UNDERLINE.match(line) and not _is_list_or_rule(previous):
            return shorten_title(previous)
        previous = line
    for line in lines[body_start:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("<!--"):
            return shorten_title(stripped)
    return None


def _is_list_or_rule(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(("- ", "* ", "+ ", ">")) or bool(_SETEXT_UNDERLINE.match(line))
