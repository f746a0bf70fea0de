"""Name keys: the normal form two surface names of one entity share (case, articles, quotes, plurals).

``name_key("The S languages")`` == ``name_key("S language")`` == ``"s language"``. Used by canonicalisation, by the
gold-set scorer and by graph lookups, so that all three agree on when two names are "the same".
"""

from __future__ import annotations

import re
import unicodedata

_QUOTES = str.maketrans({c: "" for c in "\"'`‘’“”«»*"})
_ARTICLE = re.compile(r"^(the|a|an)\s+", re.IGNORECASE)
_POSSESSIVE = re.compile(r"(?:'s|’s)\b")
_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\s.,;:!?()\[\]{}-]+|[\s.,;:!?()\[\]{}-]+$")
#: words whose plural is not the word + s/es/ies (and words ending in s that are not plurals)
_IRREGULAR = {"indices": "index", "matrices": "matrix", "data": "data", "analyses": "analysis", "children": "child"}
_NOT_PLURAL = ("ss", "us", "is", "os", "ics", "as")


def singular(word: str) -> str:
    """A plain English singular of one lower-case word (``classes`` -> ``class``, ``libraries`` -> ``library``)."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha() or word.endswith(_NOT_PLURAL):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def name_key(name: str) -> str:
    """The normal form of an entity name: NFKC, quotes and emphasis marks dropped, possessive and leading article
    removed, lower case, spaces collapsed, the last word singular when it is written in lower case. Code-like names (``help()``, ``__init__``) keep
    their punctuation."""
    text = _POSSESSIVE.sub("", unicodedata.normalize("NFKC", name)).translate(_QUOTES)
    text = _SPACE.sub(" ", text).strip()
    if not re.search(r"\(\)|__|\.\w", text):
        text = _EDGE_PUNCT.sub("", text)
    text = _ARTICLE.sub("", text)
    parts = text.split(" ")
    if parts and parts[-1] and parts[-1].islower():  # "classes" -> "class"; "Bell Laboratories" stays
        parts[-1] = singular(parts[-1])
    return " ".join(parts).lower()
