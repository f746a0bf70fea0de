"""A light markdown block parser that keeps offsets into the text.

Every ingested format arrives as markdown-ish text (html is converted to markdown, csv to markdown tables, pdf
is plain page text), so this one parser serves all of them. Blocks:

* ``heading``: an ATX heading line (``#`` to ``######`` followed by whitespace or the end of the line);
* ``code``: a fenced code block opened by ``` or ~~~ (3 or more) and closed by a fence of the same character that
  is at least as long; an unclosed fence runs to the end of the text;
* ``table``: consecutive lines whose first non-blank character is ``|``;
* ``list`` / ``paragraph``: any other run of non-blank lines, ended by a blank line or by one of the blocks above
  (a run whose first line starts with a list marker is a ``list``).

Setext headings, indented code blocks and pipe tables without a leading ``|`` are plain paragraphs.
``Block.start``/``Block.end`` are trimmed: ``text[start:end]`` neither starts nor ends with whitespace.

For speed the text is scanned with a few regular expressions that each jump from newline to newline, not line by
line in Python: :func:`scan_structure` finds the headings, tables, code blocks and blank-line gaps, which is all
the chunker needs; :func:`parse_blocks` fills in the paragraphs between them.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Block", "BlockKind", "Structure", "clean_heading_title", "parse_blocks", "scan_structure"]

BlockKind = Literal["heading", "code", "table", "list", "paragraph"]

# One pass finds every line that matters: the pattern is anchored on the newline before the line, which lets the
# regex engine skip from newline to newline, and a cheap look at the line's first character rules most lines out
# before the alternatives are tried. ``gap`` is a run of blank lines; it stops before the newline that ends
# the last one, so that the line after it can match too. ``_FIRST_LINE`` is the same without the newline.
_LINE_KINDS = (
    r"(?P<fence>[ ]{0,3}(?P<fence_chars>`{3,}|~{3,})(?P<fence_info>[^\n]*))"
    r"|(?P<heading>[ ]{0,3}(?P<level>#{1,6})(?:[ \t]+(?P<title>[^\n]*?))?(?:[ \t]+#+)?(?=[ \t\r]*(?:\n|\Z)))"
    r"|(?P<table>[ \t]*+\|[^\n]*+(?:\n[ \t]*+\|[^\n]*+)*+)"  # possessive: no backtracking state on big tables
)
_GAP = r"(?P<gap>(?:[ \t\r\f\v]*\n(?=[ \t\r\f\v]*\n))*[ \t\r\f\v]*(?=\n))"
_LINES = re.compile(r"\n(?=[ \t\r\f\v]*[\n`~#|])(?:" + _GAP + "|" + _LINE_KINDS + ")")
_FIRST_LINE = re.compile(_LINE_KINDS)
_LIST_ITEM = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)", re.M)
_EMPHASIS = re.compile(r"(?<![\w*])(\*\*\*|\*\*|\*|___|__|_)(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_CODE_SPAN = re.compile(r"`+([^`]*)`+")
_NON_WS = re.compile(r"\S")
_HSPACE = " \t\r\f\v"


@dataclass(frozen=True, slots=True)
class Block:
    """One block of the text: ``text[start:end]`` with surrounding whitespace excluded."""

    kind: BlockKind
    start: int
    end: int
    level: int = 0
    """Heading level 1-6 (0 for other kinds)."""
    title: str = ""
    """Heading title without ``#``, emphasis markers and surrounding whitespace (empty for other kinds)."""


@dataclass(frozen=True, slots=True)
class Structure:
    """The non-paragraph blocks of a text and the blank-line gaps between paragraphs."""

    items: list[Block]
    """Headings, tables and code blocks, in text order."""
    gaps: list[int]
    """End of the text before each blank-line gap outside code blocks (the gap's first whitespace), ascending."""
    start: int
    """Offset of the first non-whitespace character (``len(text)`` if there is none)."""
    end: int
    """Offset just past the last non-whitespace character (0 if there is none)."""


def clean_heading_title(raw: str) -> str:
    """Strip emphasis markers, code-span backticks and surrounding whitespace from a heading title."""
    title = raw.strip()
    if not any(c in title for c in "*_`"):
        return " ".join(title.split())
    for _ in range(3):  # nested emphasis such as **_x_**
        new = _EMPHASIS.sub(r"\2", title)
        if new == title:
            break
        title = new
    title = _CODE_SPAN.sub(r"\1", title)
    return " ".join(title.strip(" \t*_").split())


def rstrip_pos(text: str, pos: int) -> int:
    """The offset just past the last non-whitespace character before ``pos`` (0 if there is none)."""
    while pos > 0 and text[pos - 1].isspace():
        pos -= 1
    return pos


def scan_structure(text: str) -> Structure:
    """Find the headings, tables, code blocks and blank-line gaps of ``text`` in one regex pass."""
    first = _NON_WS.search(text)
    if first is None:
        return Structure([], [], len(text), 0)
    end = rstrip_pos(text, len(text))
    items: list[Block] = []
    gaps: list[int] = []
    opened: tuple[str, int, int] | None = None  # fence character, fence length, offset of an open code fence
    m0 = _FIRST_LINE.match(text)
    matches = _LINES.finditer(text, m0.end() if m0 else 0)
    for m in itertools.chain((m0,) if m0 else (), matches):
        kind = m.lastgroup
        if opened is not None:  # inside a code block only its closing fence counts
            if kind == "fence":
                fence = m.group("fence_chars")
                if fence[0] == opened[0] and len(fence) >= opened[1] and not m.group("fence_info").strip():
                    items.append(Block("code", opened[2], rstrip_pos(text, m.end())))
                    opened = None
        elif kind == "gap":
            pos = m.start()
            if text[pos - 1] in _HSPACE:
                pos = rstrip_pos(text, pos)
            if 0 < pos < end and (not gaps or gaps[-1] != pos):
                gaps.append(pos)
        elif kind == "heading":
            title = clean_heading_title(m.group("title") or "")
            items.append(Block("heading", m.start("level"), rstrip_pos(text, m.end()), len(m.group("level")), title))
        elif kind == "table":
            items.append(Block("table", text.index("|", m.start()), rstrip_pos(text, m.end())))
        elif kind == "fence":
            fence = m.group("fence_chars")
            if fence[0] != "`" or "`" not in m.group("fence_info"):
                opened = (fence[0], len(fence), m.start("fence_chars"))
    if opened is not None:
        items.append(Block("code", opened[2], end))
    return Structure(items, gaps, first.start(), end)


def parse_blocks(text: str) -> list[Block]:
    """Split ``text`` into blocks, in order; whitespace-only text gives no blocks."""
    st = scan_structure(text)
    blocks: list[Block] = []
    gi = 0

    def paragraphs(start: int, stop: int) -> None:
        """The paragraphs in ``text[start:stop]``, which holds no heading, table or code block."""
        nonlocal gi
        while gi < len(st.gaps) and st.gaps[gi] < start:
            gi += 1
        bounds = [start]
        while gi < len(st.gaps) and st.gaps[gi] < stop:
            bounds += [st.gaps[gi], st.gaps[gi]]
            gi += 1
        bounds.append(stop)
        for s, e in zip(bounds[::2], bounds[1::2], strict=True):
            m = _NON_WS.search(text, s, e)
            if m is not None:
                e = rstrip_pos(text, e)
                kind: BlockKind = "list" if _LIST_ITEM.match(text, m.start()) else "paragraph"
                blocks.append(Block(kind, m.start(), e))

    pos = 0
    for item in st.items:
        paragraphs(pos, item.start)
        blocks.append(item)
        pos = item.end
    paragraphs(pos, len(text))
    return blocks
