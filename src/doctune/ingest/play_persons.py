"""The persons of a play: its list of persons (dramatis personae), and resolving speaker tags to canonical names.

Resolution is by rule, never by per-play alias tables. A tag is normalised (upper case, punctuation dropped,
``1.``/``I``/``First`` -> ``FIRST``) and then, with a list of persons, tried in order:

1. exactly a listed name (``HAMLET.``);
2. an abbreviation of one: each word of the tag starts a word of the name, in order (``Ham.``, ``Lady M.``,
   ``L. Macd.``; names whose first word the tag starts win: ``Macb.`` is MACBETH, not LADY MACBETH), or -- for old spellings -- the tag's consonants start the name's (``Rosin.`` -> ROSENCRANTZ,
   with ``u``/``v`` and ``i``/``j`` read alike);
3. exactly the title a description starts with (``King.`` -> CLAUDIUS, "King of Denmark");
4. an ordinal and a noun the list mentions (``First Witch.`` / ``1. Witch.`` with "three Witches") -> FIRST WITCH.

When several names match, those some other tag of the play resolves to uniquely are set aside (``L. Macd.`` takes
LADY MACDUFF, so ``Lady M.`` is LADY MACBETH); if that leaves one, it wins, otherwise the tag stays unresolved.

Without a list of persons the candidates are the names in entrances (``Enter Polonius and Reynoldo``): a tag
written with a closing period is matched to them by the rules above, and a tag that matches none is a character
of its own (so a play in full-name tags, like the markdown layout, resolves every tag to itself).

Group speakers -- tags starting with ``All`` or ``Both`` -- are names of their own (``ALL``, ``BOTH``,
``BOTH MURDERERS``) and count as resolved. Joint tags (``Ros. and Guil.``, ``MARCELLUS & BERNARDO``) resolve each
part and join the names with ``/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ORDINALS = {
    "1": "FIRST", "I": "FIRST", "FIRST": "FIRST", "2": "SECOND", "II": "SECOND", "SECOND": "SECOND",
    "3": "THIRD", "III": "THIRD", "THIRD": "THIRD", "4": "FOURTH", "IV": "FOURTH", "FOURTH": "FOURTH",
}  # fmt: skip
GROUP_WORDS = {"ALL", "BOTH"}
_PERSONS_HEADER = re.compile(
    r"^\s*(?:#+\s*)?(?:dramatis\s+person\w*|persons\s+represented|the\s+persons\s+of\s+the\s+play|"
    r"characters(?:\s+in\s+the\s+play)?|names\s+of\s+the\s+actors)\s*[.:]?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_ARTICLES = {"A", "AN", "THE", "TWO", "THREE", "FOUR", "SEVERAL", "OTHER", "AND"}
_JOINT = re.compile(r"\s+(?:and|&)\s+", re.IGNORECASE)
_ENTRANCE = re.compile(r"\b(?:Enter|Re-enter|Reenter)\b(?P<who>[^.\]\n]*(?:\n[^.\]\n]*)?)", re.IGNORECASE)
_NAME_RUN = re.compile(r"[A-Z][A-Za-z'’-]*(?:\s+[A-Z][A-Za-z'’-]*)*")
_ENTRANCE_STOPWORDS = {"ENTER", "AND", "WITH", "THE", "A", "AN", "TO", "HIS", "HER", "OTHERS", "ALL", "SEVERALLY"}


@dataclass
class ListedPerson:
    """An entry of the list of persons."""

    name: str
    description: str = ""


@dataclass
class Resolution:
    """What a speaker tag resolved to: a canonical name, or ``None`` with the reason."""

    name: str | None
    group: bool = False
    reason: str = ""


@dataclass
class Resolver:
    """Resolves the speaker tags of one play (see the module docstring)."""

    persons: list[ListedPerson]
    entrance_names: list[str] = field(default_factory=list)
    persons_text: str = ""

    def resolve_all(self, tags: list[str]) -> dict[str, Resolution]:
        """The resolution of every distinct tag, with ambiguities settled by elimination."""
        candidates = {tag: self._candidates(tag) for tag in dict.fromkeys(tags)}
        claimed = {c[0] for c in candidates.values() if isinstance(c, list) and len(c) == 1}
        resolved: dict[str, Resolution] = {}
        for tag, found in candidates.items():
            if isinstance(found, Resolution):
                resolved[tag] = found
            elif len(found) == 1 or _nested(found):
                resolved[tag] = Resolution(found[0] if len(found) == 1 else min(found, key=len))
            elif len(rest := [name for name in found if name not in claimed]) == 1:
                resolved[tag] = Resolution(rest[0])
            elif found:
                resolved[tag] = Resolution(None, reason=f"ambiguous: {', '.join(found)}")
            else:
                resolved[tag] = Resolution(None, reason="matches no one in the list of persons")
        return resolved

    def _candidates(self, tag: str) -> list[str] | Resolution:
        parts = [p for p in _JOINT.split(tag.strip()) if p.strip(" .:")]
        if len(parts) > 1:
            names = []
            for part in parts:
                found = self._candidates(part)
                if isinstance(found, Resolution):
                    names.append(found.name)
                elif len(found) == 1:
                    names.append(found[0])
                else:
                    return Resolution(None, reason=f"joint speaker: cannot resolve {part.strip()!r}")
            return Resolution("/".join(n for n in names if n))
        words = normalize_tag(tag)
        if not words:
            return Resolution(None, reason="empty speaker tag")
        if words[0] in GROUP_WORDS:
            return Resolution(" ".join(words), group=True)
        if not self.persons:
            return self._candidates_without_list(tag, words)
        listed = [(p.name, p.name.split()) for p in self.persons]
        for rule in (_exact, _abbreviates_from_first_word, _abbreviates, _old_spelling):
            found = [name for name, name_words in listed if rule(words, name_words)]
            if found:
                return found
        titles = [(p.name, normalize_tag(_title_of(p.description))) for p in self.persons]
        found = [name for name, title in titles if title and _exact(words, title)]
        if found:
            return found
        if len(words) == 2 and words[0] in ORDINALS.values() and _mentions(self.persons_text, words[1]):
            return Resolution(" ".join(words))
        return []

    def _candidates_without_list(self, tag: str, words: list[str]) -> list[str] | Resolution:
        known = [(name, name.split()) for name in self.entrance_names]
        if tag.rstrip().endswith("."):
            for rule in (_exact, _abbreviates_from_first_word, _abbreviates, _old_spelling):
                found = [name for name, name_words in known if rule(words, name_words)]
                if found:
                    return found
        return Resolution(" ".join(words))


def _nested(names: list[str]) -> bool:
    """Whether the shortest of ``names`` starts all the others (``GUILDENSTERNE``, ``GUILDENSTERNE CUMALIJS``)."""
    if not names:
        return False
    shortest = min(names, key=len)
    return all(n == shortest or n.startswith(shortest + " ") for n in names)


def normalize_tag(tag: str) -> list[str]:
    """The words of a speaker tag: upper case, without punctuation, ordinals spelled ``FIRST``..."""
    words = [w for w in re.split(r"[\s.:,;!?()]+", tag.upper().replace("’", "'")) if w]
    if len(words) >= 2 and words[0] in ORDINALS:
        words[0] = ORDINALS[words[0]]
    return words


def parse_persons_list(front_matter: str) -> list[ListedPerson]:
    """The entries of the list of persons in the front matter (empty when it has no such list).

    The list starts after a header (``Dramatis Personae``, ``Persons Represented``, ``Characters``...) and ends at
    a ``SCENE`` line or the end of the front matter. Wrapped lines are joined; each sentence is an entry
    ``Name, description``; a line listing several groups (``Lords, Ladies, Officers, ...``) gives one entry each.
    """
    header = _PERSONS_HEADER.search(front_matter)
    if not header:
        return []
    entries, logical = [], ""
    lines = [line.strip() for line in front_matter[header.end() :].split("\n")]
    for i, line in enumerate(lines):
        if re.match(r"^(?:#+\s*)?SCENE\b", line, re.IGNORECASE):
            break
        logical = f"{logical} {line}".strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if logical and (not line or line.endswith(".") or not _wraps(line, nxt)):
            entries.append(logical)
            logical = ""
    if logical:
        entries.append(logical)
    persons: list[ListedPerson] = []
    for entry in entries:
        for sentence in re.split(r"(?<=\.)\s+(?=[A-Z])", entry):
            persons += _entry_persons(sentence.strip().rstrip("."))
    seen: dict[str, ListedPerson] = {}
    for person in persons:
        seen.setdefault(person.name, person)
    return list(seen.values())


def _entry_persons(sentence: str) -> list[ListedPerson]:
    parts = [p.strip() for p in sentence.split(",") if p.strip()]
    if not parts:
        return []
    if len(parts) >= 3 and all(_is_short_name(p) for p in parts):
        return [ListedPerson(name) for p in parts if (name := _clean_name(p))]
    if len(parts) == 1:  # "Ghost of Hamlet's Father", "Gentlewoman attending on Lady Macbeth"
        m = re.match(r"^((?:[A-Z][\w'’-]*\s*)+)(.*)$", parts[0])
        if m and m.group(2):
            parts = [m.group(1), m.group(2)]
    name = _clean_name(parts[0])
    return [ListedPerson(name, ", ".join(parts[1:]))] if name else []


def _wraps(line: str, nxt: str) -> bool:
    """Whether an entry of the list of persons goes on to the next line (``An Old`` / ``Man.``)."""
    if not nxt:
        return False
    last = line.split()[-1]
    return line.endswith(",") or last.islower() or (len(nxt.split()) <= 2 and "," not in nxt)


def _is_short_name(part: str) -> bool:
    words = [w for w in part.split() if w.lower() not in ("and", "other")]
    return 0 < len(words) <= 2 and all(w[0].isupper() for w in words)


def _clean_name(text: str) -> str:
    words = normalize_tag(text)
    while words and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def entrance_names(directions: list[str]) -> list[str]:
    """Names in entrances (``Enter King, Queene, Rosincrane, and Guildensterne``), upper case, longest first."""
    names: set[str] = set()
    for direction in directions:
        for entrance in _ENTRANCE.finditer(direction):
            for run in _NAME_RUN.findall(entrance.group("who")):
                words = [w for w in normalize_tag(run) if w not in _ENTRANCE_STOPWORDS]
                names.update(words)  # each word ("Guildensterne") and the run ("LADY MACBETH")
                if len(words) > 1:
                    names.add(" ".join(words))
    return sorted(names, key=lambda n: (-len(n), n))


def _exact(words: list[str], name: list[str]) -> bool:
    return words == name


def _abbreviates(words: list[str], name: list[str]) -> bool:
    """Each word of the tag starts a word of the name, in order (``LADY M`` -> ``LADY MACBETH``)."""
    if len(words) > len(name):
        return False
    j = 0
    for word in words:
        while j < len(name) and not name[j].startswith(word):
            j += 1
        if j == len(name):
            return False
        j += 1
    return True


def _abbreviates_from_first_word(words: list[str], name: list[str]) -> bool:
    """An abbreviation that starts with the name's first word (``Macb.`` is MACBETH before LADY MACBETH)."""
    return bool(name) and name[0].startswith(words[0]) and _abbreviates(words, name)


def _skeleton(word: str) -> str:
    word = word.replace("V", "U").replace("J", "I").replace("CK", "C").replace("'", "")
    consonants = re.sub(r"[AEIOUY]", "", word[1:])
    return word[0] + re.sub(r"(.)\1+", r"\1", consonants)


def _old_spelling(words: list[str], name: list[str]) -> bool:
    """The tag's consonants start the name's (one word each, at least three letters): an old spelling."""
    if len(words) != 1 or len(words[0]) < 3:
        return False
    tag = _skeleton(words[0])
    return any(
        len(tag) >= 2 and (_skeleton(n).startswith(tag) or (tag.startswith(_skeleton(n)) and len(n) >= 4)) for n in name
    )


def _title_of(description: str) -> str:
    """The title a description starts with: ``King`` of "King of Denmark", ``Queen`` of "Queen of Denmark, ..."."""
    m = re.match(r"^\s*([A-Z][A-Za-z]+(?:\s+[A-Z][A-Za-z]+)?)\b", description)
    return m.group(1) if m else ""


def _mentions(text: str, noun: str) -> bool:
    """Whether the list of persons mentions ``noun`` (singular or plural)."""
    pattern = rf"\b{re.escape(noun)}(?:S|ES)?\b"
    return bool(re.search(pattern, text.upper()))
