"""Break points of a text, by strength, and the choice of the best one in a window.

A break point is an offset ``e`` where a chunk may end: ``text[e - 1]`` is not whitespace and the next chunk
starts at the first non-whitespace character after ``e``. Strengths, strongest first::

    HEADING 60        before a heading (the first of a run of consecutive headings)
    BLOCK 50          between two blocks (blank line, table/code/heading edges)
    SENTENCE 40       after a sentence (paragraphs only), or at an empty line inside a large code block
    LINE 30           at a line break inside a paragraph, or between rows/lines of a table/code block > max_chars
    CLAUSE 20         whitespace after , ; : ) ] or a dash
    SPACE 15          any other whitespace
    AFTER_HEADING 10  between a heading and what follows it (so a heading is rarely the last thing in a chunk)
    CHAR 0            between any two characters (the character fallback)

Only the few block-level breaks are listed up front; sentence, line, clause and space breaks are searched for
inside the window, backwards from its end, so the work per chunk stays small whatever the text looks like.

*Atomic* spans never contain a break: tables and code blocks that fit in ``max_chars`` (with the headings right
above them glued on when the whole still fits), every row/line of a larger one that fits, and heading lines.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from doctune.chunking.blocks import Block, Structure, rstrip_pos
from doctune.chunking.sentences import last_sentence_end

__all__ = ["Breaks", "best_cut", "find_breaks"]

log = logging.getLogger(__name__)

HEADING, BLOCK, SENTENCE, LINE, CLAUSE, SPACE, AFTER_HEADING, CHAR = 60, 50, 40, 30, 20, 15, 10, 0

_CLAUSE_END = re.compile(r"[,;:)\]—–](?=\s)")
_WORD_END = re.compile(r"\S(?=\s)")
_ROW = re.compile(r"[^\S\n]*([^\n]*\S)")  # a non-blank line, group 1 without surrounding whitespace
_STEP = 128


@dataclass(slots=True)
class Breaks:
    """The listed break points (sorted per strength), the atomic spans and the blocks of one text."""

    ends: dict[int, list[int]]
    atomic_starts: list[int]
    atomic_ends: list[int]
    item_starts: list[int]
    item_ends: list[int]
    """Extents of the headings, tables and code blocks: sentences and lines are only looked for outside them."""
    row_blocks: list[tuple[int, int]]
    """Extents of the tables/code blocks longer than ``max_chars``: each of their lines that fits is atomic."""
    max_chars: int


def _consecutive(text: str, a: Block, b: Block) -> bool:
    """Whether only whitespace separates block ``a`` from the following block ``b``."""
    return rstrip_pos(text, b.start) == a.end


def _glue(text: str, items: list[Block], max_chars: int) -> dict[int, int]:
    """Table/code item index -> index of the first heading glued to it (the longest run suffix that fits)."""
    glued: dict[int, int] = {}
    for i, b in enumerate(items):
        if b.kind in ("table", "code") and i and items[i - 1].kind == "heading" and _consecutive(text, items[i - 1], b):
            j = i - 1
            while j and items[j - 1].kind == "heading" and _consecutive(text, items[j - 1], items[j]):
                j -= 1
            while j < i and b.end - items[j].start > max_chars:
                j += 1
            if j < i:
                glued[i] = j
    return glued


def find_breaks(text: str, st: Structure, max_chars: int) -> Breaks:
    """List the block-level break points and the atomic spans of a text."""
    kinds: dict[int, int] = dict.fromkeys(st.gaps, BLOCK)
    br = Breaks({}, [], [], [b.start for b in st.items], [b.end for b in st.items], [], max_chars)
    glued = _glue(text, st.items, max_chars)
    glued_headings = {k for i, j in glued.items() for k in range(j, i)}
    for i, b in enumerate(st.items):
        before = rstrip_pos(text, b.start)
        if before > 0 and (i - 1) not in glued_headings:
            if b.kind == "heading" and kinds.get(before) != AFTER_HEADING:
                kinds[before] = HEADING
            else:
                kinds.setdefault(before, BLOCK)
        if b.end < st.end and i not in glued_headings:
            kinds[b.end] = AFTER_HEADING if b.kind == "heading" else kinds.get(b.end, BLOCK)
        if b.kind == "heading":
            if i not in glued_headings and b.end - b.start <= max_chars:
                _add_atomic(br, b.start, b.end)
        elif i in glued:
            _add_atomic(br, st.items[glued[i]].start, b.end)
        elif b.end - b.start <= max_chars:
            _add_atomic(br, b.start, b.end)
        else:
            br.row_blocks.append((b.start, b.end))
    br.ends = {s: [] for s in (HEADING, BLOCK, AFTER_HEADING)}
    for pos in sorted(kinds):
        br.ends[kinds[pos]].append(pos)
    return br


def _add_atomic(br: Breaks, start: int, end: int) -> None:
    br.atomic_starts.append(start)
    br.atomic_ends.append(end)


def _rows(text: str, br: Breaks, lo: int, hi: int) -> list[tuple[int, int]]:
    """The lines of oversized tables/code blocks that overlap ``[lo, hi]`` and fit in ``max_chars`` (atomic)."""
    out: list[tuple[int, int]] = []
    k = bisect_left(br.row_blocks, (hi,)) - 1
    while k >= 0 and br.row_blocks[k][1] > lo:
        start, end = br.row_blocks[k]
        for m in _ROW.finditer(text, text.rfind("\n", start, max(lo, start)) + 1 or start, end):
            ls, le = m.span(1)
            if ls >= hi:
                break
            if le - ls <= br.max_chars:
                out.append((ls, le))
        k -= 1
    return out


def _free(text: str, br: Breaks, lo: int, hi: int) -> list[tuple[int, int]]:
    """Sub-ranges ``[a, b]`` of ``[lo, hi]`` where a cut does not fall strictly inside an atomic span, latest first."""
    k = bisect_left(br.atomic_starts, hi) - 1
    spans = _rows(text, br, lo, hi) if br.row_blocks else []
    while k >= 0 and br.atomic_ends[k] > lo:
        spans.append((br.atomic_starts[k], br.atomic_ends[k]))
        k -= 1
    return _outside(sorted(spans), lo, hi)


def _outside(spans: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """Sub-ranges ``[a, b]`` of ``[lo, hi]`` not strictly inside any of the sorted ``spans``, latest first."""
    out: list[tuple[int, int]] = []
    pos = lo
    for a, b in spans:
        if a >= pos and pos <= hi:
            out.append((pos, min(a, hi)))
        pos = max(pos, b)
    if pos <= hi:
        out.append((pos, hi))
    return out[::-1]


def _items(br: Breaks, lo: int, hi: int) -> list[tuple[int, int]]:
    """The headings, tables and code blocks overlapping ``[lo, hi]``, in order."""
    k = bisect_left(br.item_starts, hi)
    j = k
    while j > 0 and br.item_ends[j - 1] > lo:
        j -= 1
    return list(zip(br.item_starts[j:k], br.item_ends[j:k], strict=True))


def _latest(lst: list[int], lo: int, hi: int) -> int:
    """The latest listed position in ``[lo, hi]``, or -1."""
    j = bisect_right(lst, hi) - 1
    return lst[j] if j >= 0 and lst[j] >= lo else -1


def _contains(lst: list[int], x: int) -> bool:
    k = bisect_left(lst, x)
    return k < len(lst) and lst[k] == x


def _line_end(text: str, a: int, b: int, newline: str = "\n") -> int:
    """The end of the text before the latest ``newline`` in ``[a, b]`` if that is not before ``a``, else -1."""
    nl = text.rfind(newline, a, b + 1)
    e = rstrip_pos(text, nl) if nl >= a else -1
    return e if e >= a else -1


def _row_blocks(br: Breaks, lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of ``[lo, hi]`` inside tables/code blocks longer than ``max_chars``."""
    out: list[tuple[int, int]] = []
    k = bisect_left(br.row_blocks, (hi,)) - 1
    while k >= 0 and br.row_blocks[k][1] > lo:
        out.append((max(lo, br.row_blocks[k][0]), min(hi, br.row_blocks[k][1])))
        k -= 1
    return out


def _search(text: str, br: Breaks, strength: int, lo: int, hi: int) -> int:
    """The latest break of ``strength`` in ``[lo, hi]`` (listed or searched for), or -1."""
    if strength in (HEADING, BLOCK):
        return _latest(br.ends[strength], lo, hi)
    if strength in (SENTENCE, LINE):
        best = -1
        for a, b in _outside(_items(br, lo, hi), lo, hi):  # paragraph text
            if strength == SENTENCE:
                k = bisect_left(br.item_starts, b)
                limit = br.item_starts[k] if k < len(br.item_starts) else len(text)
                found = last_sentence_end(text, a, b, limit)
            else:
                found = _line_end(text, a, b)
            if found > a and found >= lo:
                best = found
                break
        for a, b in _row_blocks(br, lo, hi):  # between the lines of large tables/code, at blank lines in code
            found = _line_end(text, a, b, "\n\n" if strength == SENTENCE else "\n")
            if found >= lo:
                best = max(best, found)
        return best
    pattern = _CLAUSE_END if strength == CLAUSE else _WORD_END
    after_heading = br.ends[AFTER_HEADING]
    for a, b in _free(text, br, lo, hi):
        seg_hi = b
        while seg_hi >= a:  # backwards, a step at a time: the latest match is usually near the end
            seg_lo = max(a, seg_hi - _STEP)
            found = -1
            for m in pattern.finditer(text, max(seg_lo - 1, 0), seg_hi + 1):
                e = m.end()
                if seg_lo <= e <= seg_hi and not _contains(after_heading, e):
                    found = e
            if found >= 0:
                return found
            seg_hi = seg_lo - 1
    return -1


def best_cut(text: str, br: Breaks, s: int, lo: int, hi: int, bal: int) -> int:
    """Where a chunk starting at ``s`` ends: the strongest break with its end in ``[lo, hi]``.

    Among breaks of that strength the latest one not after ``bal`` is taken if there is one (it leaves room for
    ``min_chars`` before the next hard stop), else the latest. With no break in the window at all (it lies inside an
    atomic span), the latest break before ``lo`` is taken: a chunk shorter than ``min_chars``.
    """
    for strength in (HEADING, BLOCK, SENTENCE, LINE, CLAUSE, SPACE):
        e = _search(text, br, strength, lo, hi)
        if e >= 0:
            if lo <= bal < hi and (b := _search(text, br, strength, lo, bal)) >= 0:
                return b
            return e
    after_heading = br.ends[AFTER_HEADING]
    j = bisect_left(after_heading, lo)  # the earliest, so that the chunk's last heading could not start it
    if j < len(after_heading) and after_heading[j] <= hi:
        return after_heading[j]
    free = _free(text, br, lo, hi)
    for a, b in free:  # character fallback: between two non-whitespace characters if possible
        for q in (min(b, bal), b):
            if a <= q and not text[q - 1].isspace():
                return q
    if free:
        return free[0][1]
    # The window lies inside one atomic span: end before it (the chunk is shorter than min_chars).
    best = max((lst[k] for lst in br.ends.values() if (k := bisect_left(lst, lo) - 1) >= 0), default=s)
    for a, b in _row_blocks(br, s, lo):
        best = max(best, _line_end(text, a, b))
    if best > s:
        return best
    log.warning("no break point found after offset %d; cutting at %d characters", s, hi - s)
    return hi
