"""Locating a model's citation in its source text.

A quote is looked for, in order: verbatim; after normalising whitespace, quotes, dashes and case;
then by fuzzy alignment above a threshold. Whatever matched, the result is the *exact* span of the
source text, so a stored citation is always a verbatim slice with its offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz

MatchMethod = Literal["exact", "normalized", "fuzzy"]
_TRANSLATE = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'", "—": "-", "–": "-", "‐": "-"})
_TRIM = " \t\n\r\"'.,;:!?()[]*_`"


@dataclass(frozen=True)
class CitationMatch:
    """``text[start:end]`` is the verbatim source of the quote."""

    start: int
    end: int
    quote: str
    method: MatchMethod
    score: float


def _normalize(text: str) -> tuple[str, list[int]]:
    """Casefolded text with unified punctuation and single spaces, and for each output character the
    index of the source character it came from."""
    out: list[str] = []
    index: list[int] = []
    pending_space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            pending_space = bool(out)
            continue
        if pending_space:
            out.append(" ")
            index.append(i - 1)
            pending_space = False
        norm = ch.translate(_TRANSLATE).casefold()
        out.extend(norm)
        index.extend([i] * len(norm))
    return "".join(out), index


def _clean_quote(quote: str) -> str:
    quote = quote.strip().strip(_TRIM).strip()
    return re.sub(r"\s*(\.\.\.|…)\s*$", "", quote)


def locate_citation(quote: str, text: str, fuzzy_threshold: float = 90.0) -> CitationMatch | None:
    """Find ``quote`` in ``text``; ``None`` when it is not there (or is too short to mean anything)."""
    wanted = quote.strip()
    if len(_clean_quote(wanted)) < 3:
        return None
    pos = text.find(wanted)
    if pos != -1:
        return CitationMatch(pos, pos + len(wanted), wanted, "exact", 100.0)
    core = _clean_quote(wanted)
    norm_text, index = _normalize(text)
    for candidate in dict.fromkeys([wanted, core]):  # as given, then without wrapping quotes and ellipses
        norm_quote, _ = _normalize(candidate)
        pos = norm_text.find(norm_quote)
        if pos != -1:
            start, end = index[pos], index[pos + len(norm_quote) - 1] + 1
            return CitationMatch(start, end, text[start:end], "normalized", 100.0)
    norm_quote, _ = _normalize(core)
    if len(norm_quote) < 12:  # fuzzy matching of very short quotes finds noise
        return None
    align = fuzz.partial_ratio_alignment(norm_quote, norm_text, score_cutoff=fuzzy_threshold)
    if align is None or align.dest_end <= align.dest_start:
        return None
    start, end, score = _refine(norm_quote, norm_text, align.dest_start, align.dest_end)
    if score < fuzzy_threshold:
        return None
    src_start, src_end = index[start], index[end - 1] + 1
    return CitationMatch(src_start, src_end, text[src_start:src_end], "fuzzy", round(score, 1))


def _refine(quote: str, text: str, start: int, end: int) -> tuple[int, int, float]:
    """Move a fuzzy window's edges to the word boundaries nearby that best match the whole quote
    (partial alignment keeps the quote's length, so it can cut the first or last word)."""
    slack = max(8, len(quote) // 5)
    starts = [i for i in range(max(0, start - slack), min(len(text), start + slack)) if i == 0 or text[i - 1] == " "]
    ends = [i for i in range(max(1, end - slack), min(len(text), end + slack) + 1) if i == len(text) or text[i] == " "]
    best = (start, end, fuzz.ratio(quote, text[start:end]))
    for s in starts or [start]:
        for e in ends or [end]:
            if e > s:
                score = fuzz.ratio(quote, text[s:e])
                if score > best[2]:
                    best = (s, e, score)
    return best
