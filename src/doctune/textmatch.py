"""Word-level comparison of short texts, shared by the grounding verifier and the deterministic grader.

Content words are lowercased alphanumeric words that are not stopwords, reduced by a light suffix stemmer (so
"rotates" and "rotate", "countries" and "country" meet); numbers are read from digits ("98", "1,024", "99.86")
and number words ("eleven", "twenty-one"), so "eleven countries" and "11 countries" hold the same number.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z0-9]+(?:[.,'][A-Za-z0-9]+)*")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?![\w])|(?<![\w.])\d+(?:\.\d+)?")

_STOPWORD_TEXT = """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each either few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me might more most
    must my myself no nor not now of off on once only or other our ours ourselves out over own same shall she
    should so some such than that the their theirs them themselves then there these they this those through to
    too under until up upon us very was we were what when where which while who whom whose why will with would
    yes you your yours yourself yourselves one ones thing things way ways called known used use uses"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000, "million": 10**6,
    "billion": 10**9, "dozen": 12,
}  # fmt: skip
#: number words that are also ordinary words ("one of them"): a number only in a run ("one hundred")
_AMBIGUOUS = frozenset({"one"})


def words(text: str) -> list[str]:
    """Lowercased words of ``text`` (digits kept, punctuation dropped; "fs.chmod" stays one word)."""
    return [w.lower() for w in _WORD.findall(text)]


def stem(word: str) -> str:
    """A light English stemmer: plural and verb endings, then a final "e", so that "degree"/"degrees",
    "change"/"changes"/"changed"/"changing" and "country"/"countries" meet."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def content_words(text: str) -> set[str]:
    """Stemmed words of ``text`` that carry content: not stopwords, not number words, not one letter."""
    return {stem(w) for w in words(text) if w not in STOPWORDS and w not in _UNITS and len(w) > 1 and not _is_num(w)}


def _is_num(word: str) -> bool:
    return _parse_number(word) is not None


def _parse_number(token: str) -> float | None:
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return None


_NUMBER_WORDS = "|".join(sorted(_UNITS, key=len, reverse=True))
_WORD_RUN = re.compile(rf"\b(?:{_NUMBER_WORDS})(?:(?:[\s-]+(?:and[\s-]+)?)(?:{_NUMBER_WORDS}))*\b", re.IGNORECASE)


def _words_value(run: str) -> float:
    total, current = 0.0, 0.0
    for token in re.findall(r"[a-z]+", run.lower()):
        if token == "and":
            continue
        value = _UNITS[token]
        if value in (100, 1000, 10**6, 10**9):
            current = max(current, 1) * value
            if value >= 1000:
                total, current = total + current, 0.0
        else:
            current += value
    return total + current


def numbers(text: str) -> set[float]:
    """The numbers ``text`` states, from digits or number words ("eleven", "twenty-one", "one hundred and five")."""
    found: set[float] = set()
    for match in _NUMBER.finditer(text):
        value = _parse_number(match.group(0))
        if value is not None:
            found.add(value)
    for match in _WORD_RUN.finditer(text):
        run = match.group(0)
        if run.lower() in _AMBIGUOUS:
            continue
        found.add(_words_value(run))
    return found


def recall(reference: set[str], candidate: set[str]) -> float:
    """Share of ``reference`` found in ``candidate`` (1.0 when ``reference`` is empty)."""
    return len(reference & candidate) / len(reference) if reference else 1.0
