"""What the user typed, made safe for FTS5, and the snippet with the matched words marked.

A query is never passed to FTS5 as written: it is split into words (``\\w+``, any script), each sent as a quoted
string, so FTS5 syntax (quotes, ``AND``/``OR``/``NOT``/``NEAR``, ``*``, ``-``, ``:``, parentheses) is only ever text.
Three forms are kept: ``"a phrase"`` in double quotes and words joined by punctuation (``ZX-7731``, ``e-mail``)
are phrases, and ``word*`` is a prefix search.
Words in scripts written without spaces (Chinese, Japanese, Thai, ...) go to the trigram table instead.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_PHRASE = re.compile(r'"([^"]*)"')
_TERM = re.compile(r"(\w+)(\*?)")
#: scripts written without spaces between words: unicode61 would make a whole run one token
_NO_SPACE = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"
)


def has_no_space_script(text: str) -> bool:
    """Whether ``text`` holds characters of a script written without spaces (CJK, Thai, ...)."""
    return _NO_SPACE.search(text) is not None


def fold(text: str) -> str:
    """Lower case without diacritics, one character out per character in (``Café`` -> ``cafe``)."""
    out = []
    for ch in text:
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)).lower()
        out.append(base[:1] if base else ch.lower()[:1] or ch)
    return "".join(out)


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


@dataclass
class ParsedQuery:
    """The words of a query, ready for the two FTS5 tables."""

    words: list[str] = field(default_factory=list)  # spaced scripts: unicode61 table
    prefixes: set[str] = field(default_factory=set)  # of ``words``: searched as prefixes
    phrases: list[list[str]] = field(default_factory=list)  # spaced scripts, several words in order
    cjk: list[str] = field(default_factory=list)  # runs of no-space scripts: trigram table

    @property
    def empty(self) -> bool:
        return not (self.words or self.phrases or self.cjk)

    def fts(self, operator: str = "AND") -> str:
        """FTS5 MATCH expression of the spaced words, each quoted; '' when there is none."""
        parts = [_quote(" ".join(p)) for p in self.phrases]  # one quoted string: a phrase
        parts += [_quote(w) + ("*" if w in self.prefixes else "") for w in self.words]
        return f" {operator} ".join(parts)

    def trigram(self) -> str | None:
        """FTS5 MATCH expression for the trigram table, or None when a run is shorter than 3 characters (trigram
        cannot match those: the caller scans with instr())."""
        if not self.cjk or any(len(run) < 3 for run in self.cjk):
            return None
        return " AND ".join(_quote(run) for run in self.cjk)

    def marks(self) -> list[str]:
        """Folded words to mark in a snippet, longest first; a prefix search's word ends in ``*``."""
        terms = {fold(w) + ("*" if w in self.prefixes else "") for w in self.words}
        terms |= {fold(w) for p in self.phrases for w in p} | {fold(c) for c in self.cjk}
        return sorted((t for t in terms if t.rstrip("*")), key=len, reverse=True)


def _split_scripts(word: str) -> tuple[list[str], list[str]]:
    """A ``\\w+`` run split into its spaced-script parts and its no-space-script parts."""
    spaced, cjk, current, current_cjk = [], [], "", None
    for ch in word:
        is_cjk = _NO_SPACE.match(ch) is not None
        if current and is_cjk != current_cjk:
            (cjk if current_cjk else spaced).append(current)
            current = ""
        current, current_cjk = current + ch, is_cjk
    if current:
        (cjk if current_cjk else spaced).append(current)
    return spaced, cjk


def parse_query(query: str) -> ParsedQuery:
    """Words, phrases, prefixes and no-space-script runs of ``query``; nothing of it is FTS5 syntax any more."""
    parsed = ParsedQuery()
    rest = query
    if query.count('"') >= 2:
        for inner in _PHRASE.findall(query):
            words = [w for w, _ in _TERM.findall(inner)]
            spaced = [s for w in words for s in _split_scripts(w)[0]]
            parsed.cjk += [c for w in words for c in _split_scripts(w)[1]]
            if len(spaced) > 1:
                parsed.phrases.append(spaced)
            else:
                parsed.words += spaced
        rest = _PHRASE.sub(" ", query)
    for chunk in rest.split():
        terms = _TERM.findall(chunk)
        spaced_terms = [(s, star) for word, star in terms for s in _split_scripts(word)[0]]
        parsed.cjk += [c for word, _ in terms for c in _split_scripts(word)[1]]
        if len(spaced_terms) > 1:  # ZX-7731, e-mail, o'clock: the parts in this order
            parsed.phrases.append([s for s, _ in spaced_terms])
            continue
        for w, star in spaced_terms:
            if w.upper() in {"AND", "OR", "NOT", "NEAR"} and w.isupper():
                continue  # an operator typed out of habit: not a word to look for
            parsed.words.append(w)
            if star:
                parsed.prefixes.add(w)
    parsed.words = list(dict.fromkeys(parsed.words))
    parsed.cjk = list(dict.fromkeys(parsed.cjk))
    return parsed


def mark_snippet(text: str, terms: list[str], width: int, open_mark: str = "**", close_mark: str = "**") -> str:
    """About ``width`` characters of ``text`` around its first matched term, every match wrapped in marks.

    Matching ignores case and diacritics; a spaced-script term matches a whole word (``word*``: any word it
    starts), a no-space-script term anywhere."""
    folded = fold(text)
    spans: list[tuple[int, int]] = []
    for mark in terms:
        term, prefix = mark.rstrip("*"), mark.endswith("*")
        anywhere = has_no_space_script(term)
        start = folded.find(term)
        while start != -1:
            end = start + len(term)
            if prefix:  # extend a prefix match to the end of its word
                while end < len(folded) and folded[end].isalnum():
                    end += 1
            whole = anywhere or (
                (start == 0 or not folded[start - 1].isalnum()) and (end == len(folded) or not folded[end].isalnum())
            )
            if whole and not any(s < end and start < e for s, e in spans):
                spans.append((start, end))
            start = folded.find(term, start + 1)
    spans.sort()
    first = spans[0][0] if spans else 0
    lo = max(0, first - width // 3)
    if lo:  # start at a word boundary
        space = text.find(" ", lo)
        lo = space + 1 if 0 <= space < first else lo
    hi = min(len(text), lo + width)
    out, pos = [], lo
    for s, e in spans:
        if s < lo or e > hi:
            continue
        out += [text[pos:s], open_mark, text[s:e], close_mark]
        pos = e
    out.append(text[pos:hi])
    body = "".join(out).replace("\n", " ")
    return ("…" if lo else "") + body + ("…" if hi < len(text) else "")
