"""Split a document's clean text into chunks between ``min_chars`` and ``max_chars`` at the best break points.

How it works: :mod:`doctune.chunking.blocks` finds the headings, tables, code blocks and paragraph
gaps, and :mod:`doctune.chunking.breaks` ranks the places where a chunk may end -- before a heading, between
blocks, after a sentence, at a line break, after a clause, at whitespace, after a heading, anywhere -- and keeps
tables, code blocks, their rows and heading lines *atomic* (never split when they fit in ``max_chars``).

Each chunk starts at a non-whitespace character ``s``. With ``respect_headings`` it ends at the first heading at
which it already has ``min_chars``, if that is within ``max_chars``; otherwise, if the rest of the text fits it
is the last chunk; otherwise it ends at the latest break of the highest strength whose chunk length lies in
``[min_chars, max_chars]`` (preferring, among breaks of that strength, one that leaves ``min_chars`` for the rest
of the section). Chunk ends are trimmed, so no chunk starts or ends with whitespace.

Exceptions to ``n_chars >= min_chars`` -- the only ones:

1. the last chunk of the document;
2. a chunk followed by something that cannot join it without going over ``max_chars``: the next chunk starts with
   an atomic unit (a whole table/code block that fits in ``max_chars``, possibly with the headings right above it,
   one row/line of a larger table/code block, or a heading line) and ``text[chunk.start : unit end]`` is longer
   than ``max_chars``; or the next chunk starts with free text and even its first character would not fit
   (``next.start + 1 - chunk.start > max_chars``: a run of whitespace longer than ``max_chars - min_chars``).

Headings: with ``respect_headings``, a run of headings never starts inside a chunk that already had ``min_chars``
before it; a chunk other than the last ends with a heading line only when the text before its trailing headings is
shorter than ``min_chars`` (so the heading could not start the next chunk instead). ``heading_path`` holds the
titles of the headings in effect at the chunk start, outermost first, including those the chunk starts with.

Cost: one regex pass over the text finds the block structure; per chunk, a few binary searches over the listed
breaks and, only when the window has no block break, a backwards search from the window's end that stops at the
first usable break (at most ``max_chars - min_chars`` characters). So the time is linear in the text length
(``O(n * max_chars / min_chars)`` in the very worst case), with no re-scanning of earlier text.

There is no separate exception for sections: with ``respect_headings`` a heading only starts a new chunk once the
current one has ``min_chars``; a shorter section is continued into the next one instead.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from dataclasses import dataclass

from doctune.chunking.blocks import Block, rstrip_pos, scan_structure
from doctune.chunking.breaks import HEADING, best_cut, find_breaks
from doctune.config import ChunkConfig
from doctune.records import Chunk, Document, SourceSpan

__all__ = ["TextChunk", "chunk_document", "chunk_text"]

log = logging.getLogger(__name__)

_NON_WS = re.compile(r"\S")


@dataclass(frozen=True, slots=True)
class TextChunk:
    """A chunk of a text: ``text[start:end]``, and the headings in effect where it starts (outermost first)."""

    start: int
    end: int
    heading_path: tuple[str, ...] = ()


def chunk_text(text: str, cfg: ChunkConfig) -> list[TextChunk]:
    """Chunk ``text``: spans in order, non-overlapping, trimmed, covering every non-whitespace character."""
    max_chars = cfg.max_chars
    min_chars = max(1, min(cfg.min_chars, max_chars))
    st = scan_structure(text)
    if st.end == 0:
        return []
    br = find_breaks(text, st, max_chars)
    heading_ends = br.ends[HEADING]
    spans: list[tuple[int, int]] = []
    s = st.start
    while True:
        stop = st.end
        if cfg.respect_headings and (k := bisect_left(heading_ends, s + min_chars)) < len(heading_ends):
            stop = heading_ends[k]
        if stop - s <= max_chars:
            e = stop
        else:
            e = rstrip_pos(text, best_cut(text, br, s, s + min_chars, s + max_chars, stop - min_chars))
        spans.append((s, e))
        if e >= st.end:
            break
        nxt = _NON_WS.search(text, e)
        assert nxt is not None  # e < st.end: there is more text
        s = nxt.start()
    return _with_heading_paths(text, [b for b in st.items if b.kind == "heading"], spans)


def _with_heading_paths(text: str, headings: list[Block], spans: list[tuple[int, int]]) -> list[TextChunk]:
    """Attach to each span the titles of the headings in effect at its start, including its own leading headings."""
    out: list[TextChunk] = []
    stack: list[tuple[int, str]] = []
    hi, nh = 0, len(headings)

    def apply(h: Block) -> None:
        while stack and stack[-1][0] >= h.level:
            stack.pop()
        stack.append((h.level, h.title))

    for s, e in spans:
        while hi < nh and headings[hi].start <= s:
            apply(headings[hi])
            hi += 1
        if hi and headings[hi - 1].start == s:  # the chunk starts with a run of headings: all of them apply
            while hi < nh and headings[hi].start < e and rstrip_pos(text, headings[hi].start) == headings[hi - 1].end:
                apply(headings[hi])
                hi += 1
        out.append(TextChunk(s, e, tuple(t for _, t in stack if t)))
    return out


def _locators(spans: list[SourceSpan], chunks: list[TextChunk]) -> list[list[str]]:
    """For each chunk, the distinct locators of the source spans overlapping it, in span order."""
    ordered = sorted(spans, key=lambda sp: (sp.start, sp.end))
    out: list[list[str]] = []
    lo = 0
    for c in chunks:
        while lo < len(ordered) and ordered[lo].end <= c.start:
            lo += 1
        seen: dict[str, None] = {}
        j = lo
        while j < len(ordered) and ordered[j].start < c.end:
            if ordered[j].end > c.start:
                seen.setdefault(ordered[j].locator)
            j += 1
        out.append(list(seen))
    return out


def chunk_document(doc: Document, cfg: ChunkConfig) -> list[Chunk]:
    """Chunk ``doc.text``; each chunk is an exact slice with its heading path and source locators."""
    pieces = chunk_text(doc.text, cfg)
    locators = _locators(doc.spans, pieces)
    chunks = [
        Chunk(
            chunk_id=f"{doc.doc_id}-{i:04d}",
            doc_id=doc.doc_id,
            index=i,
            text=doc.text[p.start : p.end],
            char_start=p.start,
            char_end=p.end,
            n_chars=p.end - p.start,
            heading_path=list(p.heading_path),
            locators=locs,
        )
        for i, (p, locs) in enumerate(zip(pieces, locators, strict=True))
    ]
    log.debug("%s: %d chars -> %d chunks", doc.doc_id, len(doc.text), len(chunks))
    return chunks
