"""Sentences, names in them, and the relations between two names of one sentence; the check every relation passes.

:func:`text_units` cuts a chunk into sentences and sentence-like pieces (title lines, list items, headings, command
lines, fenced code), each a verbatim slice of the chunk; :func:`mentions_name` says whether a text names an entity
(whole words, any line breaks, name keys, markup ignored).

:func:`sentence_relations` proposes ``(A, phrase, B)`` for two names that follow each other in a sentence when the
words between them are a short relation phrase (it starts with a verb, a relational preposition or an adverb; no
punctuation that ends a clause, no capitalised word that may be a missed name). Names listed together ("by Rick
Becker, John Chambers and Allan Wilks") share the phrase of the first; a passive "developed at X by Y" gives
"developed at X" and "developed by Y" to the sentence's subject, not "X by Y".

:func:`check_relation` accepts a relation only when its cited span names both ends (or an alias) and the grounding
verifier supports the statement "source relation target. description" against the span. The default
(word-overlap) verifier catches words that are not in the span; it cannot catch a wrong relation built only from the
span's own words (two names of one sentence joined by a phrase that links other things): the rules above are what
keeps those few.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from doctune.chunking.sentences import split_sentences
from doctune.knowledge.claims import cite_in_chunk, verify_claim
from doctune.knowledge.names import name_key
from doctune.knowledge.rows import KGMention
from doctune.records import Chunk, Citation


def _word_set(text: str) -> frozenset[str]:
    """The words of ``text``, a set (the word lists below are written as text)."""
    return frozenset(text.split())


RELATIONAL_PREPOSITIONS = _word_set(
    "of by in at from with to for on under into onto via as over within through about between among"
)
_VERBS = _word_set(
    """is are was were be been being has have had can could may might will would shall should must do does did
    provide provides contain contains include includes use uses implement implements describe describes form forms
    give gives make makes call calls define defines support supports run runs create creates hold holds bind binds
    allow allows offer offers extend extends derive derives write writes become becomes mean means live lives go
    goes refer refers develop develops build builds require requires return returns store stores"""
)
_PARTICIPLES = _word_set(
    "written made done given built known taken seen found held run begun become bound drawn gone shown set put"
)
_LEADING_DROP = _word_set("the a an which that who whom whose and also its their his her")
_TRAILING_DROP = _word_set("the a an its their his her this these those that and or but")
_CLAUSE_BREAK = re.compile(r"[;:()\[\]?!—,•\"“”]|\s–\s|\n\s*\n")
_LIST_GAP = re.compile(r"\s*(?:,\s*(?:and|or)?|and|or|&|/)\s*", re.IGNORECASE)
_MARKUP = "`*’‘“”'"
#: words a relation phrase may start with besides verbs, prepositions and adverbs
_OPENERS = _word_set("not when where then also both")
_NOT_ADVERBS = _word_set("family supply reply assembly italy july fly ally rely apply")
_CONJUNCTIONS = _word_set("and or but nor")
_COPULAS = _word_set("is are was were be been being a an the")
#: lower-case words that may follow a name without modifying it (function words; verbs and adverbs are tested apart)
_FUNCTION_WORDS = _word_set(
    """a an the this that these those which who whom whose what and or but nor not no so than then there here also
    only too very just even as if when where while because since until unless although though whether it its they
    their them he she his her we our you your i me my all any each every both either neither some such own other
    another same more most much many few less least one ones s"""
)
_DETERMINERS = _word_set("a an the its their his her this that these those some any every each no")


_FENCE = re.compile(r"^```", re.MULTILINE)
_HEADING_LINE = re.compile(r"^(?:#{1,6}\s|\d+(?:\.\d+)+\.?\s+\S|\d+\s+[A-Z]|\d+$|Chapter \d+:)")
_BREAK_BEFORE = re.compile(r"^(?:[•\-*]\s|\d+\.\s|[>$]\s)")
_COMMAND_LINE = re.compile(r"^[>$]\s")


@dataclass(frozen=True)
class TextUnit:
    """A sentence or sentence-like piece of a chunk: ``chunk.text[start:end] == text``. ``kind`` is ``prose``,
    ``heading`` (no names taken, no relations), ``command`` (a shell or R prompt line: code names only) or ``code``
    (fenced code: skipped)."""

    start: int
    end: int
    text: str
    kind: str


def fence_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) spans of the fenced code blocks of a text (an unclosed fence runs to the end)."""
    marks = [m.start() for m in _FENCE.finditer(text)]
    if len(marks) % 2:
        marks.append(len(text))
    return [(marks[i], marks[i + 1] + 3) for i in range(0, len(marks), 2)]


def _title_break(prev: str, line: str, max_line: int) -> bool:
    """A short line without final punctuation followed by a capitalised line: a title or heading line."""
    prev, line = prev.strip(), line.strip()
    return bool(prev and line) and len(prev) < 0.75 * max_line and prev[-1] not in ".,;:!?" and line[0].isupper()


def _in_heading_line(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` lies within one line that is a heading ("## 9.1. ...", "1.2 Related ...")."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    return end <= line_end and _HEADING_LINE.match(text[line_start:line_end].strip()) is not None


def text_units(text: str) -> list[TextUnit]:
    """The units of a chunk's text, in order (see the module docstring)."""
    fences = fence_spans(text)
    max_line = max((len(line.strip()) for line in text.split("\n")), default=0)
    units: list[TextUnit] = []
    pos = 0
    for sentence in split_sentences(text):
        start = text.find(sentence, pos)
        if start < 0:
            continue
        pos = start + len(sentence)
        pieces: list[tuple[int, int]] = []
        offset, lines = start, sentence.split("\n")
        piece_start = start
        for i, line in enumerate(lines):
            if i > 0 and (
                not lines[i - 1].strip()
                or _HEADING_LINE.match(lines[i - 1].strip())
                or _HEADING_LINE.match(line.strip())
                or _BREAK_BEFORE.match(line.strip())
                or _COMMAND_LINE.match(lines[i - 1].strip())
                or (_title_break(lines[i - 1], line, max_line) and (i > 1 or start == 0 or text[start - 1] == "\n"))
            ):
                pieces.append((piece_start, offset - 1))
                piece_start = offset
            offset += len(line) + 1
        pieces.append((piece_start, pos))
        for a, b in pieces:
            piece = text[a:b]
            lead = len(piece) - len(piece.lstrip())
            piece = piece.strip()
            if not piece:
                continue
            a += lead
            if any(fa <= a < fb for fa, fb in fences) or piece.startswith("```"):
                kind = "code"
            elif _COMMAND_LINE.match(piece):
                kind = "command"
            elif _in_heading_line(text, a, a + len(piece)):
                kind = "heading"
            else:
                kind = "prose"
            units.append(TextUnit(a, a + len(piece), piece, kind))
    return units


def name_pattern(name: str, plural: bool = False) -> re.Pattern[str]:
    """A regex finding ``name`` as a whole word in text (any whitespace between its words, a line break after a
    hyphen; case-insensitive unless the name is one or two characters; optional plural ending when asked)."""
    parts = [re.escape(p) for p in name.split()]
    body = r"[`*’]?\s+[`*‘]?".join(parts).replace(r"\-", r"-\s?")
    suffix = r"(?:s|es)?" if plural else ""
    flags = 0 if len(name) <= 2 else re.IGNORECASE
    return re.compile(rf"(?<![\w@.-]){body}{suffix}(?![\w@+]|[-.]\w)", flags)


def mentions_name(text: str, name: str) -> bool:
    """Whether ``text`` names ``name`` (also its name key, and with emphasis/quote marks ignored)."""
    plain = re.sub(r"[*`“”‘]", "", text)
    forms = {name, name_key(name)} - {""}
    for form in forms:
        plural = form[-1:].islower()
        if name_pattern(form, plural).search(text) or name_pattern(form, plural).search(plain):
            return True
    return False


@dataclass
class RelationCandidate:
    """A proposed relation: ``source phrase target`` read in ``sentence`` (a verbatim piece of the chunk)."""

    source: str
    target: str
    phrase: str
    sentence: str


@dataclass
class _Occurrence:
    start: int
    end: int
    name: str


def _is_verb(word: str) -> bool:
    w = word.lower()
    return w in _VERBS or w in _PARTICIPLES or (len(w) > 4 and w.endswith(("ed", "ing")))


def _phrase_words(between: str) -> list[str] | None:
    """The relation phrase's words, or None when the text between two names is not a relation phrase."""
    between = between.strip().strip(_MARKUP).strip()
    if _CLAUSE_BREAK.search(between) or re.search(f"[{_MARKUP}/]", between):
        return None
    words = between.split()
    while words and words[0].lower() in _LEADING_DROP:
        words = words[1:]
    while words and words[-1].lower() in _TRAILING_DROP:
        words = words[:-1]
    if not words or not any(_is_verb(w) or w.lower() in RELATIONAL_PREPOSITIONS for w in words):
        return None
    first = words[0].lower()
    adverb = first.endswith("ly") and first not in _NOT_ADVERBS
    if not (_is_verb(first) or first in RELATIONAL_PREPOSITIONS or adverb or first in _OPENERS):
        return None  # "CRAN family of Internet sites": the phrase starts with a noun, not a relation
    if any(w.lower() in _CONJUNCTIONS for w in between.split()):
        return None  # "is a module object and": two clauses (a list of names is a group, not a phrase)
    last = words[-1].lower()
    if not (_is_verb(last) or last in RELATIONAL_PREPOSITIONS or last in ("than", "when")):
        return None  # "as the global": the phrase ends in a modifier of the next name ("global scope")
    if any(w[0].isupper() for w in words):
        return None  # a capitalised word between two names: a name the rules missed sits there
    return words


def _occurrences(sentence: str, names: Sequence[str]) -> list[_Occurrence]:
    """Where the names occur in the sentence, in order; of two overlapping occurrences the longer is kept."""
    found = [
        _Occurrence(m.start(), m.end(), name)
        for name in names
        for m in name_pattern(name, plural=name[:1].islower()).finditer(sentence)
    ]
    found.sort(key=lambda o: (o.start, -(o.end - o.start)))
    kept: list[_Occurrence] = []
    for occ in found:
        if kept and occ.start < kept[-1].end:
            if occ.end - occ.start > kept[-1].end - kept[-1].start:
                kept[-1] = occ
            continue
        kept.append(occ)
    return kept


def _modifies_next_word(sentence: str, end: int) -> bool:
    """Whether the name ending at ``end`` modifies the lower-case noun right after it ("Python dictionaries",
    "a Python program"): the next word is a content word that is not a verb, an adverb or a preposition."""
    m = re.match(r"[`*”’]?[ \t]*\n?[ \t]*([a-z][a-z-]*)(?:\s+([A-Za-z]+))?", sentence[end:])
    if m is None:
        return False
    word, after = m.group(1), (m.group(2) or "").lower()
    if word in _FUNCTION_WORDS or word in RELATIONAL_PREPOSITIONS or word in _OPENERS or _is_verb(word):
        return False
    if word.endswith("ly") and word not in _NOT_ADVERBS:
        return False
    return not (word.endswith("s") and not word.endswith("ss") and after in _DETERMINERS)  # "Python treats the"


def _groups(sentence: str, occs: list[_Occurrence]) -> list[list[_Occurrence]]:
    """Occurrences listed together ("A, B and C") form one group."""
    groups: list[list[_Occurrence]] = []
    for occ in occs:
        if groups and _LIST_GAP.fullmatch(sentence[groups[-1][-1].end : occ.start]):
            groups[-1].append(occ)
        else:
            groups.append([occ])
    return groups


def _object_of_preposition(sentence: str, start: int, between: str) -> bool:
    """Whether the name at ``start`` is the object of a preposition and the verb after it belongs to an earlier
    subject ("documentation for S can be used with R": S is not what can be used)."""
    before = sentence[:start].rstrip(" \n`*‘“/").split()
    first = between.strip(_MARKUP + " \n").split()[:1]
    if not before or not first or first[0].lower() in _LEADING_DROP:
        return False
    return before[-1].lower() in RELATIONAL_PREPOSITIONS and first[0].lower() in _VERBS  # finite, not "edited by"


def sentence_relations(chunk: Chunk, mentions: list[KGMention], max_words: int) -> list[RelationCandidate]:
    """Relation candidates between the chunk's mentions, sentence by sentence (see the module docstring)."""
    names = sorted({m.name for m in mentions if m.chunk_id == chunk.chunk_id}, key=len, reverse=True)
    out: list[RelationCandidate] = []
    seen: set[tuple[str, str, str]] = set()

    def propose(sources: list[_Occurrence], phrase: str, targets: list[_Occurrence], sentence: str) -> None:
        for a in sources:
            for b in targets:
                key = (a.name, phrase.lower(), b.name)
                if a.name != b.name and key not in seen:
                    seen.add(key)
                    out.append(RelationCandidate(a.name, b.name, phrase, sentence))

    for unit in text_units(chunk.text):
        if unit.kind != "prose" or cite_in_chunk(unit.text, chunk) is None:
            continue
        occurrences = [o for o in _occurrences(unit.text, names) if not _modifies_next_word(unit.text, o.end)]
        groups = _groups(unit.text, occurrences)
        phrases: list[list[str] | None] = []
        for left, right in itertools.pairwise(groups):
            words = _phrase_words(unit.text[left[-1].end : right[0].start])
            if words and _object_of_preposition(unit.text, left[0].start, unit.text[left[-1].end : right[0].start]):
                words = None
            phrases.append(words if words and len(words) <= max_words else None)
        for k, words in enumerate(phrases):
            if words is None:
                continue
            passive_subject = k > 0 and phrases[k - 1] is not None and [w.lower() for w in words] == ["by"]
            previous = phrases[k - 1] if passive_subject else None
            if previous and any(_is_verb(w) for w in previous) and previous[-1].lower() in RELATIONAL_PREPOSITIONS:
                # "S which was developed at Bell Laboratories by Rick Becker": Rick Becker developed S, not Bell Labs
                propose(groups[k - 1], " ".join([*previous[:-1], "by"]), groups[k + 1], unit.text)
                continue
            propose(groups[k], " ".join(words), groups[k + 1], unit.text)
    return out


def endpoint_in_text(text: str, name: str, aliases: Mapping[str, Sequence[str]] | None = None) -> bool:
    """Whether ``text`` names ``name`` or one of its aliases (case-insensitive, whole words, also by name key)."""
    return any(mentions_name(text, form) for form in [name, *((aliases or {}).get(name, ()))] if form.strip())


def check_relation(
    source: str,
    relation: str,
    target: str,
    citation: Citation,
    aliases: Mapping[str, Sequence[str]] | None = None,
    verifier=None,
    description: str = "",
) -> list[str]:
    """Why the relation is rejected (``self_loop``, ``empty_relation``, ``bare_copula`` (only "is"/"are", no content
    word), ``endpoint_not_in_citation``, then the grounding verifier's reasons); an empty list when it is accepted."""
    if name_key(source) == name_key(target):
        return ["self_loop"]
    if not relation.strip():
        return ["empty_relation"]
    if all(w in _COPULAS for w in re.findall(r"[\w’']+", relation.lower())):
        return ["bare_copula"]
    if not (endpoint_in_text(citation.quote, source, aliases) and endpoint_in_text(citation.quote, target, aliases)):
        return ["endpoint_not_in_citation"]
    claim = f"{source} {relation} {target}. {description}".strip()
    return list(verify_claim(claim, citation.quote, topic=source, verifier=verifier).reasons)
