"""Entity mentions of a chunk found by written rules, no model: the span strategy's entities.

A chunk is cut into *units* (:func:`doctune.knowledge.relations.text_units`: its sentences, further cut at title
lines, list items, headings and command lines, so that a PDF's title block or a bulleted list does not read as one
sentence). In each prose unit the rules take, in this order (a span taken by one rule is masked for the next):

- code names: backticked identifiers (`` `global` statement`` -> ``global statement``), calls (``help(solve)`` ->
  ``help()``, ``help.start()``), dunders (``__init__``), a dotted name followed by "command"/"function";
- publications: a capitalised title after "reference is", "covered in", "described in", "book(s)", up to "by";
- concepts: quoted terms (“character string”; a quoted single capital, ‘S’, is that letter), emphasised
  terms (``*namespace*``, not an adjective such as "are *public*"), and terms a sentence defines ("known as
  aliasing", "A namespace is a ...");
- proper names: runs of capitalised words, with initials ("W. N. Venables") and the connectors of/for (and
  and/& inside titles, never between two persons); a capitalised word that starts a unit only when the chunk also
  writes it capitalised mid-sentence; acronyms and product-like words (SAS, Modula-3, S-Plus, macOS, C++); a
  capital letter followed by a generic noun as one name ("S language", "R program").

Types come from :func:`entity_type` (organisation words, given names and initials, a small gazetteer of places and
of software, publication cues). Precision matters as much as recall: every rule has its stop list.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass

from doctune.knowledge.claims import cite_in_chunk
from doctune.knowledge.names import name_key
from doctune.knowledge.relations import TextUnit, fence_spans, mentions_name, name_pattern, text_units
from doctune.knowledge.rows import KGMention
from doctune.knowledge.wordlists import (
    _CODE_KEYWORDS,
    COMMON_CAPS,
    CONNECTORS,
    GENERIC_NOUNS,
    GIVEN_NAMES,
    ORG_WORDS,
    PLACES,
    REF_WORDS,
    SOFTWARE,
    STOP,
    TERM_STOP,
    THING_WORDS,
    _word_set,
)
from doctune.records import Chunk

MASK = "\x1f"


_CODE_DEFINED = re.compile(r"^[ \t]*(?:def[ \t]+)?([A-Za-z_]\w*)[ \t]*(?:=(?!=)|\()", re.MULTILINE)
#: words after an emphasised or quoted term that show it names something (else it modifies the next word)
_NAMING_FOLLOWERS = _word_set(
    "of is are for in to with and or as was were that which before after from by has have can may here means"
)

_URL = re.compile(r"https?://[^\s)]+(?:\.\n[a-z]+)?|\S+@\S+\.\w+")
_REFERENCE = re.compile(
    rf"\b{REF_WORDS}\s+(?:“[^”]*”|[A-Z0-9][\d.]*\.?)(?:\s*\[[^\]]*\])?(?:,\s*page\s+\d+)?|\[[^\]\n]*\],?\s*page\s+\d+"
)
_BACKTICK = re.compile(r"`([^`\n]{1,60})`")
_CALL = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*[A-Za-z_0-9])\([^()\s]{0,20}\)|(?<![\w.])([a-z])\(\)")
_DUNDER = re.compile(r"(?<![\w.])__\w+__(?![\w])")
_DOTTED_COMMAND = re.compile(r"(?<![\w.])([a-z]\w*\.[a-z]\w*)(?=\s+(?:command|function)s?\b)")
_CODE_NOUN = re.compile(r"\s+(statement|keyword|command|function|method|module)s?\b")
PUB_TRIGGER = r"\b(?:reference is|covered in|described in|books?|entitled|titled)"
_PUBLICATION = re.compile(
    PUB_TRIGGER + r"\s+(?P<t>(?:The\s+|A\s+|An\s+)?[A-Z][^,;()\[\]]*?)(?=\s+(?:edited\s+)?by\b|[,;()\[\]]|\.\s|\.$|$)"
)
_TITLE_SMALL = _word_set("in with of for and the a an on to from at")
_QUOTED = re.compile(r"[“‘]([^“”‘’]{1,60}?)[”’]")
_EMPHASIS = re.compile(r"(?<![\w*])\*([^*\n]{1,60}?)\*(?![\w*])")
_PHRASE = r"([a-z][\w-]*(?:\s+[a-z][\w-]*){0,3})"
_DEFINED = [
    re.compile(r"\b(?:is|are)\s+(?:known as|called|termed)\s+" + _PHRASE),
    re.compile(r",\s+called\s+" + _PHRASE),
    re.compile(r"^(?:A|An|The)\s+" + _PHRASE + r"\s+(?:is|are)\s+(?:a|an|the)\b"),
]
_TOKEN = re.compile(r"[A-Z]\.(?=\s)|&|[A-Za-z0-9_]+(?:[’'][A-Za-z]+)?(?:-\n?[A-Za-z0-9_]+)*(?:\+\+|#)?")
_JOINABLE_GAP = re.compile(r"[ \t]*\n?[ \t]*")
_POSSESSIVE = re.compile(r"[’']s$")
_DESCRIBES = r"(?:[’']s)?[”’*`)]?\s+(?:is|are|was|were|provides?|means?|refers? to|contains?|stands? for)\b"


def _normalise(surface: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"-\n\s*", "-", surface)).strip()


def _is_cap(token: str) -> bool:
    return token[0].isupper() or (token[0].islower() and any(c.isupper() for c in token[1:]))


def _product_like(token: str) -> bool:
    """Acronyms, digits, hyphens, inner capitals, C++: names even at a sentence start."""
    letters = re.sub(r"[^A-Za-z]", "", token)
    return (
        (len(letters) >= 2 and letters.isupper())
        or (any(c.isdigit() for c in token) and any(c.isalpha() for c in token))
        or ("-" in token and _is_cap(token))
        or any(c.isupper() for c in token[1:])
        or token.endswith(("++", "#"))
        or (len(token) == 1 and token.isupper() and token not in ("I", "A"))
    )


def _person_like(tokens: list[str]) -> bool:
    return bool(tokens) and (tokens[0] in GIVEN_NAMES or any(re.fullmatch(r"[A-Z]\.", t) for t in tokens))


def entity_type(name: str, sentence: str) -> str:
    """The type (one of ``ENTITY_TYPES``) of an entity named ``name`` in ``sentence``, by rules."""
    tokens = name.replace("-", " ").split()
    if not tokens:
        return "other"
    if re.search(r"\(\)|__|`|^[a-z_]+\.[a-z_]|_", name):
        return "software"
    if any(t.strip(".,") in ORG_WORDS for t in tokens):
        return "organization"
    if len(tokens) >= 2 and re.search(PUB_TRIGGER + r"\s+" + name_pattern(name).pattern, _normalise(sentence)):
        return "publication"
    if all(t in PLACES for t in tokens if t[0].isupper()) and name[0].isupper():
        return "place"
    words = name.split()
    thing = any(w.strip(".") in THING_WORDS for w in words)
    if 2 <= len(words) <= 4 and all(_is_cap(w) for w in words) and _person_like(words) and not thing:
        return "person"
    if name in SOFTWARE or re.fullmatch(rf"[A-Z]\s+{GENERIC_NOUNS}", name) or (len(words) == 1 and _product_like(name)):
        return "software"
    if name[0].islower():
        return "concept"
    return "other"


@dataclass
class _Found:
    start: int
    name: str
    type: str


class _UnitScanner:
    """The candidates of one unit; spans taken by a rule are masked (same length) for the next rules."""

    def __init__(self, text: str, caps_elsewhere: set[str], vocabulary: DocumentVocabulary):
        self.text = text
        self.placeholders = vocabulary.placeholders
        self.lower_words = vocabulary.lower_words
        self.masked = _URL.sub(lambda m: MASK * len(m.group()), text)
        self.masked = _REFERENCE.sub(lambda m: MASK * len(m.group()), self.masked)
        self.caps_elsewhere = caps_elsewhere
        self.found: list[_Found] = []

    def _take(self, start: int, end: int, name: str, type_: str) -> None:
        name = _normalise(name)
        if name and re.search(r"[A-Za-z]", name):
            self.found.append(_Found(start, name, type_))
        self.masked = self.masked[:start] + MASK * (end - start) + self.masked[end:]

    def code(self) -> None:
        for m in list(_BACKTICK.finditer(self.masked)):
            content = m.group(1).strip()
            if not re.fullmatch(r"[A-Za-z_][\w.]*(?:\(\))?", content) or len(content) < 2:
                self._take(m.start(), m.end(), "", "")
                continue
            noun = _CODE_NOUN.match(self.masked, m.end())
            bare = not noun and not content.endswith("()") and not _DUNDER.fullmatch(content)
            if bare and ("." in content or content in self.placeholders):
                self._take(m.start(), m.end(), "", "")  # `z.real`, `modname`: example code, not an entity
                continue
            name = f"{content} {noun.group(1)}" if noun and not content.endswith("()") else content
            self._take(m.start(), m.end(), name, "software")
        for rx in (_CALL, _DUNDER, _DOTTED_COMMAND):
            for m in list(rx.finditer(self.masked)):
                if rx is _CALL:
                    name = (m.group(1) or m.group(2)) + "()"
                else:
                    name = m.group(1) if rx is _DOTTED_COMMAND else m.group()
                self._take(m.start(), m.end(), name, "software")

    def publications(self) -> None:
        for m in list(_PUBLICATION.finditer(self.masked)):
            title = m.group("t").rstrip()
            words = title.split()
            while words and words[-1] in _TITLE_SMALL:
                words.pop()
            ok = all(w[0].isupper() or w[0].isdigit() or w.rstrip(":") in _TITLE_SMALL for w in words)
            if ok and 2 <= len(words) <= 15:
                end = m.start("t") + title.find(words[-1], len(" ".join(words[:-1])) - 1) + len(words[-1])
                self._take(m.start("t"), end, self.text[m.start("t") : end], "publication")

    def concepts(self) -> None:
        for m in list(_QUOTED.finditer(self.masked)):
            term = m.group(1).strip()
            before, after = self.masked[: m.start()].rstrip(), self.masked[m.end() :]
            coordinated = after.lstrip().startswith(("and “", "or “")) or re.search(r"[”’]\s+(?:and|or)$", before)
            if len(term) == 1 and term.isupper():
                self._take(m.start(), m.end(), term, "software")
            elif self._quoted_term(term, before, m.end()) and not coordinated:
                type_ = entity_type(term, self.text)
                self._take(m.start(), m.end(), term, "concept" if type_ == "other" else type_)
        for m in list(_EMPHASIS.finditer(self.masked)):
            term = m.group(1).strip()
            if term in self.placeholders:
                self._take(m.start(), m.end(), "", "")  # *spam*: a name of the example code
                continue
            if "_" in term or re.fullmatch(r"[a-z_]\w*\(\)", term):
                self._take(m.start(), m.end(), term, "software")
                continue
            before = self.masked[: m.start()].split()[-1:] or [""]
            if (
                before[0].lower() in ("is", "are", "was", "were", "be")
                or self._modifies(m.end())
                or len(term.split()) > 4
            ):
                continue
            self._take(m.start(), m.end(), term, "concept")
        for rx in _DEFINED:
            for m in list(rx.finditer(self.masked)):
                words = []
                for w in m.group(1).split():
                    if w in _NAMING_FOLLOWERS or w in ("the", "a", "an", "this", "that"):
                        break
                    words.append(w)
                if words:
                    start = m.start(1)
                    self._take(start, start + len(" ".join(words)), " ".join(words), "concept")

    def _quoted_term(self, term: str, before: str, end: int) -> bool:
        """A quoted short noun phrase: letters, 1-4 words, not a question, not a string example, not a modifier."""
        short = re.search(r"[A-Za-z]", term) is not None and len(term.split()) <= 4 and "?" not in term
        return short and not before.endswith(("string", "strings")) and not self._modifies(end)

    def _modifies(self, end: int) -> bool:
        """Whether the word after a quoted or emphasised term is a noun it modifies ("*local* assignment")."""
        nxt = re.match(r"\s+([A-Za-z]+)", self.masked[end:])
        return nxt is not None and nxt.group(1).lower() not in _NAMING_FOLLOWERS

    def proper_names(self) -> None:
        tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(self.masked)]
        first_word = next((i for i, t in enumerate(tokens) if re.search(r"[A-Za-z]", t[0])), -1)
        runs: list[list[int]] = []
        current: list[int] = []
        for i, (tok, start, _) in enumerate(tokens):
            joins = bool(current) and _JOINABLE_GAP.fullmatch(self.masked[tokens[i - 1][2] : start]) is not None
            if _is_cap(tok):
                current = [*current, i] if joins else [i]
            elif tok in CONNECTORS and joins and i + 1 < len(tokens) and _is_cap(tokens[i + 1][0]):
                current.append(i)
                continue
            else:
                current = []
                continue
            if len(current) == 1:
                runs.append(current)
            else:
                runs[-1] = current
        for run in runs:
            for segment in self._segments([tokens[i] for i in run], first=run[0] == first_word):
                self._accept(segment)

    def _segments(self, run: list[tuple[str, int, int]], first: bool) -> list[list[tuple[str, int, int]]]:
        """A run cut at stop words and at and/& between persons or single words; edges cleaned."""
        segments: list[list[tuple[str, int, int]]] = [[]]
        initial = first
        for tok in run:
            word = _POSSESSIVE.sub("", tok[0])
            if word in STOP or tok[0] in STOP:
                segments.append([])
                initial = False  # "The Earth": a capital after a sentence-initial stop word is a name's
                continue
            known = word in self.caps_elsewhere or word in SOFTWARE or word in GIVEN_NAMES or word in PLACES
            if initial and not segments[-1] and not known and not _product_like(word):
                segments.append([])
                initial = False
                continue
            initial = False
            segments[-1].append(tok)
        out = []
        for seg in segments:
            while seg and seg[0][0] in CONNECTORS:
                seg = seg[1:]
            while seg and seg[-1][0] in CONNECTORS:
                seg = seg[:-1]
            out.extend(self._split_coordination(seg))
        return [s for s in out if s]

    def _split_coordination(self, seg: list[tuple[str, int, int]]) -> list[list[tuple[str, int, int]]]:
        cut = next((k for k, t in enumerate(seg) if t[0] in ("and", "&")), None)
        if cut is None:
            return [seg]
        left, right = seg[:cut], seg[cut + 1 :]
        words = [t[0] for t in left], [t[0] for t in right]
        joined = len(left) >= 2 and not any(_person_like(w) for w in words)
        joined = joined and not any(len(w) == 1 and _product_like(w[0]) for w in words)
        if joined:
            return [seg]
        return [left, *self._split_coordination(right)]

    def _accept(self, seg: list[tuple[str, int, int]]) -> None:
        start, end = seg[0][1], seg[-1][2]
        if len(seg) == 1:
            word = _POSSESSIVE.sub("", seg[0][0])
            if re.fullmatch(r"[A-Z]\.", word):
                word = word[0]
            if len(word) == 1 and word in ("I", "A"):
                return
            known = word in SOFTWARE or word in PLACES or word in GIVEN_NAMES or word in ORG_WORDS
            if word in COMMON_CAPS or (not known and len(word) > 2 and word.lower() in self.lower_words):
                return  # "the Start In field", "the Web": a common word, not a name
            if "-" in word and re.fullmatch(r"[A-Za-z]+", word.split("-")[-1]) and word.split("-")[-1].islower():
                word = word.split("-")[0]  # "HTML-based" -> "HTML"
            generic = re.match(rf"\s+{GENERIC_NOUNS}\b", self.masked[end:]) if len(word) == 1 else None
            if generic:
                end += generic.end()
                word = self.text[start:end]
            self._take(start, end, word, entity_type(_normalise(word), self.text))
            return
        surface = _POSSESSIVE.sub("", self.text[start:end])
        self._take(start, end, surface, entity_type(_normalise(surface), self.text))

    def terms(self, terms: Collection[str]) -> None:
        """The document's terms wherever they occur (lower case, or capitalised at the unit's start; plurals)."""
        for term in terms:
            body = r"\s+".join(re.escape(w) for w in term.split())
            first = re.escape(term[0].upper()) + body[1:] if term[0].isalpha() else body
            rx = re.compile(rf"(?<![\w.@-])(?:{body}|^{first})(?:s|es)?(?![\w@+]|[-.]\w)")
            for m in list(rx.finditer(self.masked)):
                if not re.search(r"[A-Z][\w+-]*[`*’”]?\s+$", self.text[: m.start()]):  # not "S-Plus environments"
                    self._take(m.start(), m.end(), term, "concept")

    def scan(self, terms: Collection[str] = ()) -> list[_Found]:
        self.code()
        self.publications()
        self.concepts()
        self.proper_names()
        self.terms(terms)
        return sorted(self.found, key=lambda f: f.start)


def _caps_elsewhere(units: list[TextUnit]) -> set[str]:
    """Capitalised words the chunk writes in the middle of a prose unit (so a unit-initial one may be a name)."""
    out: set[str] = set()
    for unit in units:
        if unit.kind == "prose":
            tokens = [m.group() for m in _TOKEN.finditer(unit.text)]
            first = next((i for i, t in enumerate(tokens) if re.search(r"[A-Za-z]", t)), len(tokens))
            for token in tokens[first + 1 :]:
                if _is_cap(token):
                    out.add(_POSSESSIVE.sub("", token))
    return out


def _description(name: str, sentence: str) -> str:
    """The sentence when it defines or describes the entity ("X is ...", "called X"), else ""."""
    flat = _normalise(sentence)
    if len(flat) > 400:
        return ""
    body = name_pattern(name, plural=name[:1].islower()).pattern
    if re.search(rf"{body}{_DESCRIBES}", flat, re.IGNORECASE if len(name) > 2 else 0):
        return flat
    if re.search(rf"\b(?:called|known as|term|word)\s+[“‘*`]?{body}", flat, re.IGNORECASE if len(name) > 2 else 0):
        return flat
    return ""


@dataclass(frozen=True)
class DocumentVocabulary:
    """What the rules need to know of a whole document: the identifiers of its example code (``placeholders``) and
    the words it writes in lower case (``lower_words``)."""

    placeholders: frozenset[str]
    lower_words: frozenset[str]


@functools.lru_cache(maxsize=32)
def document_vocabulary(text: str) -> DocumentVocabulary:
    """The vocabulary of a document's text. Placeholders are the identifiers of backticked dotted expressions and
    statements (`` `modname.funcname` ``, `` `del modname.the_answer` ``) and the names its fenced code assigns or
    defines (``spam = ...``, ``def scope_test():``), keywords excepted: names of example code, not entities."""
    placeholders: set[str] = set()
    for m in _BACKTICK.finditer(text):
        if re.search(r"[.=\s]", m.group(1)) and not m.group(1).rstrip().endswith("()"):
            placeholders.update(re.findall(r"[A-Za-z_]\w*", m.group(1)))
    for start, end in fence_spans(text):
        placeholders.update(m.group(1) for m in _CODE_DEFINED.finditer(text[start:end]))
    lower = {w for w in re.findall(r"(?<![\w.`])[a-z][a-z-]+(?![\w(`])", text)}
    return DocumentVocabulary(frozenset(placeholders - _CODE_KEYWORDS), frozenset(lower))


def term_of(mention: KGMention) -> str:
    """The document term a mention gives (its name key) when it is a lower-case concept of 1-3 words, else ""."""
    key = name_key(mention.name)
    words = key.split()
    if mention.type != "concept" or not mention.name[:1].islower() or not 1 <= len(words) <= 3:
        return ""
    if key in TERM_STOP or words[0] in TERM_STOP or not re.fullmatch(r"[a-z][a-z -]*[a-z]", key):
        return ""
    return key


def mention_id(chunk_id: str, name: str) -> str:
    """Stable id of a mention: a hash of its chunk and name."""
    return hashlib.sha256(f"{chunk_id}\x00{name}".encode()).hexdigest()[:16]


def find_mentions(
    chunk: Chunk, terms: Collection[str] | None = None, document_text: str | None = None
) -> list[KGMention]:
    """One mention per distinct name (by name key) in the chunk, in order of first appearance. ``terms`` are the
    document's terms (:func:`term_of`), found wherever they occur; ``document_text`` (default: the chunk's text)
    gives the :func:`document_vocabulary`."""
    units = text_units(chunk.text)
    caps = _caps_elsewhere(units)
    vocabulary = document_vocabulary(document_text if document_text is not None else chunk.text)
    seen: set[str] = set()
    mentions: list[KGMention] = []
    for unit in units:
        if unit.kind in ("heading", "code"):
            continue
        scanner = _UnitScanner(unit.text, caps, vocabulary)
        if unit.kind == "command":
            scanner.code()
            found = scanner.found
        else:
            found = scanner.scan(sorted(terms or (), key=len, reverse=True))
        for item in found:
            key = name_key(item.name)
            if not key or key in seen:
                continue
            seen.add(key)
            first = next((u for u in units if u.kind == "prose" and mentions_name(u.text, item.name)), unit)
            citation = cite_in_chunk(first.text, chunk)
            mentions.append(
                KGMention(
                    mention_id=mention_id(chunk.chunk_id, item.name),
                    chunk_id=chunk.chunk_id,
                    doc_id=chunk.doc_id,
                    name=item.name,
                    type=item.type,
                    description=_description(item.name, first.text),
                    citation=citation,
                    method="rules",
                )
            )
    return mentions
