"""The cite-first recipe for small models: doctune picks the sentences to cite, then asks the model
only for the question those sentences answer (plus answer, criteria, difficulty, category).

A 135M model cannot both find the facts worth asking about and quote them verbatim; given the
sentence, it can write a question about it. Citations are exact by construction.
"""

from __future__ import annotations

import re

from doctune.chunking.sentences import split_sentences
from doctune.records import Chunk

MIN_CHARS = 40
MAX_CHARS = 400
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_NOISE = re.compile(r"^\s*(\||```|~~~|#|\*\*[A-Z ]+\*\*\s*$)")
_STOPWORDS = frozenset(
    [
        "this",
        "that",
        "with",
        "from",
        "have",
        "were",
        "been",
        "they",
        "them",
        "their",
        "there",
        "which",
        "when",
        "what",
        "will",
        "would",
        "could",
        "should",
        "about",
        "into",
        "your",
        "also",
        "than",
        "then",
        "only",
        "other",
        "some",
        "such",
        "more",
        "most",
        "very",
        "these",
        "those",
        "does",
        "each",
    ]
)


def sentence_score(sentence: str) -> float:
    """How much a sentence is worth asking about: distinct content words, a bonus for numbers."""
    words = {w.lower() for w in _WORD.findall(sentence)} - _STOPWORDS
    return len(words) + (2.0 if re.search(r"\d", sentence) else 0.0)


def candidate_sentences(chunk: Chunk) -> list[str]:
    """Sentences of a chunk that can be cited: prose of a sensible length, no table rows or code fences."""
    out = []
    for sentence in split_sentences(chunk.text):
        if MIN_CHARS <= len(sentence) <= MAX_CHARS and not _NOISE.match(sentence):
            out.append(sentence)
    return out


def pick_sentences(chunk: Chunk, n: int) -> list[str]:
    """The ``n`` best sentences of a chunk, in the order they appear."""
    candidates = candidate_sentences(chunk)
    best = sorted(candidates, key=sentence_score, reverse=True)[:n]
    return [s for s in candidates if s in best]


def pick_group_sentences(chunks: list[Chunk]) -> list[str]:
    """The best sentence of each chunk of a group; empty if some chunk has none."""
    picked = [pick_sentences(c, 1) for c in chunks]
    return [p[0] for p in picked] if all(picked) else []
