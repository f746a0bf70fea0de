"""A fast, regex-based sentence boundary finder (no NLP models, no downloads).

A boundary is a run of terminators (``.``, ``?``, ``!``, ``…``), optionally followed by closing quotes,
brackets or emphasis markers, followed by whitespace and then more text. A candidate is rejected when:

* the next word starts with a lowercase letter (``"approx. five"``, ``"Who? said he"``);
* the terminator is a single ``.`` after a known abbreviation (``e.g.``, ``i.e.``, ``Mr.``, ``Dr.``, ``vs.``...),
  after a single letter (initials such as ``J. R. R. Tolkien``), or after a number at the start of a line
  (a numbered-list marker such as ``"1. First"``);
* the word before is ``etc.`` (or ``et al.``) and the next word does not start with an uppercase letter.

Decimals (``3.14``), version numbers and URLs never match, because the terminator must be followed by
whitespace. Newlines are not boundaries here; the chunker treats line breaks as weaker break points itself.
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "last_sentence_end", "sentence_ends", "split_sentences"]

ABBREVIATIONS: frozenset[str] = frozenset(
    {
        # titles
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "gen", "col", "capt", "lt", "sgt", "gov",
        "sen", "rep", "hon", "messrs", "mme", "mlle",
        # latin and common prose abbreviations
        "e.g", "i.e", "cf", "vs", "viz", "approx", "ca", "c", "v",
        # references
        "fig", "figs", "eq", "eqs", "no", "nos", "vol", "vols", "p", "pp", "ch", "chap", "sec", "art", "ed", "eds",
        "op", "cit", "ibid", "ref", "refs", "dept", "est", "inc", "ltd", "co", "corp", "bros",
        # months and days
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun",
    }
)  # fmt: skip
"""Lowercased words (without the final period) after which a single ``.`` does not end a sentence."""

_SOFT_ABBREVIATIONS = frozenset({"etc", "al"})
"""Abbreviations that end a sentence only when the next word starts with an uppercase letter."""

_BOUNDARY = re.compile(r"""([.!?…]+)["'”’»)\]}*_]*(?=\s+(\S))""")
_WORD_BEFORE = re.compile(r"(\S+)$")
_LEADING_PUNCT = "\"'“‘«([{*_"
_LOOKBACK = 32
_STOP_CHARS = frozenset(".!?…\"'”’»)]}*_")
_STEP = 256
_LOOKAHEAD = 64


def _is_boundary(text: str, stop_start: int, stop: str, nxt: str) -> bool:
    """Decide whether the terminator ``stop`` at ``stop_start``, followed by the character ``nxt``, ends a sentence."""
    if nxt.islower():
        return False
    if stop != ".":
        return True
    m = _WORD_BEFORE.search(text, max(0, stop_start - _LOOKBACK), stop_start)
    if m is None:
        return True
    word = m.group(1).lstrip(_LEADING_PUNCT).lower()
    if not word:
        return True
    if word in ABBREVIATIONS:
        return False
    if word in _SOFT_ABBREVIATIONS:
        return nxt.isupper()
    if len(word) == 1 and word.isalpha():
        return False
    if word.isdigit():
        line_start = text.rfind("\n", 0, m.start()) + 1
        if not text[line_start : m.start()].strip():
            return False
    return True


def sentence_ends(text: str, start: int = 0, end: int | None = None) -> list[int]:
    """Offsets just past each sentence end found in ``text[start:end]``, in increasing order.

    Each offset points right after the terminator and any closing quotes/brackets, i.e. at the whitespace
    that separates the sentence from the next one. The end of the range itself is never reported.
    """
    stop = len(text) if end is None else end
    ends: list[int] = []
    for m in _BOUNDARY.finditer(text, start, stop):
        if _is_boundary(text, m.start(), m.group(1), m.group(2)):
            ends.append(m.end())
    return ends


def last_sentence_end(text: str, lo: int, hi: int, limit: int | None = None) -> int:
    """The latest sentence end ``e`` (as reported by :func:`sentence_ends`) with ``lo <= e <= hi``, or -1.

    Scans backwards from ``hi`` in steps of a few hundred characters, so the cost does not depend on how far
    ``lo`` is. The text from ``limit`` on (default: the end) is not looked at, not even as the next sentence.
    """
    stop = len(text) if limit is None else min(limit, len(text))
    seg_hi = min(hi, stop)
    while seg_hi >= lo:
        seg_lo = max(lo, seg_hi - _STEP)
        scan = max(seg_lo - 1, 0)
        while scan > 0 and text[scan - 1] in _STOP_CHARS:  # start at the beginning of a run of terminators
            scan -= 1
        best = -1
        for m in _BOUNDARY.finditer(text, scan, min(stop, seg_hi + _LOOKAHEAD)):
            e = m.end()
            if e > seg_hi:
                break
            if e >= seg_lo and _is_boundary(text, m.start(), m.group(1), m.group(2)):
                best = e
        if best >= 0:
            return best
        seg_hi = seg_lo - 1
    return -1


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (whitespace between sentences dropped); mostly a convenience for tests."""
    out: list[str] = []
    pos = 0
    for e in [*sentence_ends(text), len(text)]:
        piece = text[pos:e].strip()
        if piece:
            out.append(piece)
        pos = e
    return out
