"""Surface style of a speech or a reply: length, verse, early-modern usage, a character's distinctive words.

All measures are per text, so the fidelity benchmark can put a bootstrap interval on their means:

* ``words``: length in words;
* ``verse_share``: share of non-empty lines with 8-12 syllables (:func:`syllables`: vowel groups, a silent final
  *e* dropped), the span of a pentameter line give or take a feminine ending or elision;
* ``capitalised_lines``: share of non-empty lines starting with a capital (verse is printed so, prose wraps);
* ``early_modern``: share of words from :data:`EARLY_MODERN` (thou, thee, hath, doth, 'tis, ...);
* ``distinctive``: share of words among a character's most distinctive words (log-odds against the rest of its
  play, see :func:`doctune.characters.stats.distinctive_words`), when those words are given.
"""

from __future__ import annotations

import re
from collections.abc import Collection

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*|'(?:tis|twas|twere|twill|gainst)\b", re.IGNORECASE)
_VOWEL_GROUP = re.compile(r"[aeiouy]+")

#: pronouns, verb forms and words of Shakespeare's English that modern English has dropped
EARLY_MODERN = frozenset(
    [
        "thou",
        "thee",
        "thy",
        "thine",
        "ye",
        "art",
        "hast",
        "hath",
        "doth",
        "dost",
        "didst",
        "wilt",
        "shalt",
        "canst",
        "couldst",
        "wouldst",
        "shouldst",
        "mayst",
        "'tis",
        "'twas",
        "'twere",
        "'twill",
        "ere",
        "wherefore",
        "whence",
        "hence",
        "thence",
        "hither",
        "thither",
        "whither",
        "anon",
        "forsooth",
        "prithee",
        "methinks",
        "mine",
        "nay",
        "aye",
        "oft",
        "alack",
        "alas",
        "ay",
        "marry",
        "zounds",
        "'gainst",
        "perchance",
        "sirrah",
        "fie",
        "hie",
        "betwixt",
        "o'er",
        "e'er",
        "ne'er",
        "seest",
        "knowest",
        "sayest",
        "speakest",
        "hadst",
        "wast",
        "wert",
    ]
)

STYLE_METRICS = ("words", "verse_share", "capitalised_lines", "early_modern", "distinctive", "repeated")
_SEGMENT = re.compile(r"[^.!?;\n]+")


def words(text: str) -> list[str]:
    """Lower-cased words (contractions like 'tis kept whole)."""
    return [w.lower() for w in WORD.findall(text)]


def syllables(word: str) -> int:
    """Vowel groups of ``word``, a silent final *e* not counted (never below 1 for a word with letters)."""
    w = word.lower().strip("'")
    if not w:
        return 0
    count = len(_VOWEL_GROUP.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and count > 1:
        count -= 1
    return max(count, 1)


def line_syllables(line: str) -> int:
    return sum(syllables(w) for w in words(line))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and words(line)]


def verse_share(text: str, low: int = 8, high: int = 12) -> float:
    """Share of non-empty lines with ``low``-``high`` syllables (0 for a text without words)."""
    lines = _lines(text)
    return sum(low <= line_syllables(line) <= high for line in lines) / len(lines) if lines else 0.0


def capitalised_lines(text: str) -> float:
    """Share of non-empty lines whose first letter is a capital."""
    lines = _lines(text)
    first = [next((ch for ch in line if ch.isalpha()), "") for line in lines]
    return sum(ch.isupper() for ch in first) / len(lines) if lines else 0.0


def repeated_share(text: str) -> float:
    """Share of the segments of ``text`` (lines and sentences) that repeat an earlier one, word for word: a model
    looping on one line scores near 1, a real speech near 0."""
    segments = [" ".join(words(seg)) for seg in _SEGMENT.findall(text)]
    segments = [seg for seg in segments if seg]
    if len(segments) < 2:
        return 0.0
    seen: set[str] = set()
    repeats = 0
    for seg in segments:
        repeats += seg in seen
        seen.add(seg)
    return repeats / len(segments)


def is_degenerate(text: str) -> bool:
    """A reply that is mostly repeats (more than half its segments repeat an earlier one): a loop, not a speech."""
    return repeated_share(text) > 0.5


def rate(text: str, vocabulary: Collection[str]) -> float:
    """Share of the words of ``text`` that are in ``vocabulary`` (0 for a text without words)."""
    ws = words(text)
    return sum(w in vocabulary for w in ws) / len(ws) if ws else 0.0


def style_metrics(text: str, distinctive: Collection[str] = ()) -> dict[str, float]:
    """Every measure of :data:`STYLE_METRICS` for one text (``distinctive`` is 0 when no words are given)."""
    return {
        "words": float(len(words(text))),
        "verse_share": verse_share(text),
        "capitalised_lines": capitalised_lines(text),
        "early_modern": rate(text, EARLY_MODERN),
        "distinctive": rate(text, {w.lower() for w in distinctive}) if distinctive else 0.0,
        "repeated": repeated_share(text),
    }


def early_modern_rate(text: str) -> float:
    """Share of the words of ``text`` from :data:`EARLY_MODERN`."""
    return rate(text, EARLY_MODERN)
