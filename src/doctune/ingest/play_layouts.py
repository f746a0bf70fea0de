"""The speech layouts of plays: detecting which one a text uses, and scanning it into raw speeches.

Four layouts (``LAYOUTS``), each a way of marking who speaks:

- ``markdown``: the speaker as a bold line (``**HAMLET**``), acts and scenes as ``#`` headings, stage directions
  in ``_..._``;
- ``speaker_line``: the speaker alone on a line after a blank line, full or abbreviated, any case (``Ham.``,
  ``HAMLET.``, ``First Witch.``), the speech on the following lines (Project Gutenberg's modern texts);
- ``inline``: the speaker at the start of the speech's first line (``  Hor. And then it started``), as in old
  Globe and Folio texts;
- ``screenplay``: ``NAME: words`` (the words may also start on the next line).

Acts and scenes are recognised in every layout (``ACT I``, ``Actus Primus``, ``SCENE II``, ``Scena Secunda``...,
with or without ``#``). Stage directions are ``[...]``, ``_..._`` (markdown), a parenthesised whole line (and, in
screenplays, a parenthetical after the name), and lines starting with ``Enter``, ``Exit``, ``Exeunt``, ``Re-enter``
and the like. A direction inside a speech (more speech follows before the next speaker) belongs to that speech; one
between speeches belongs to none. Everything before the first act or scene heading is front matter (title, list of
persons) and holds no speech, unless the play has no heading at all.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

LAYOUTS = ("markdown", "speaker_line", "inline", "screenplay")

_LATIN_ORDINALS = (
    r"prim[ao]|primus|secund[ao]|secundus|terti[ao]|tertius|quart[ao]|quartus|quint[ao]|quintus|sext[ao]|septim[ao]"
)
_LABEL = rf"(?P<label>[IVXLC]+|\d+|{_LATIN_ORDINALS})"
ACT_HEADING = re.compile(rf"^\s{{0,3}}(?:#{{1,6}}\s*)?(?:ACT|Act|Actus|ACTUS)\s+{_LABEL}(?=[\s.:,]|$)", re.IGNORECASE)
SCENE_HEADING = re.compile(
    rf"(?:^\s{{0,3}}(?:#{{1,6}}\s*)?|\.\s+)(?:SCENE|Scene|Scena|Scoena|Scaena|SCENA)\s+{_LABEL}(?=[\s.:,]|$)",
    re.IGNORECASE,
)
_DIRECTION_WORDS = (
    r"Enter|Enters|Re-enter|Reenter|Re-enters|Exit|Exeunt|Exit\s+\w+|Manet|Manent|Flourish|Alarum|Alarums|"
    r"Sennet|Thunder|Hautboys|Trumpets|Retreat|Dies|Dyes"
)
DIRECTION_LINE = re.compile(rf"^\s*(?:{_DIRECTION_WORDS})\b(?!\s*[,!?])", re.IGNORECASE)
_BRACKETED = re.compile(r"\[[^\]\n]*(?:\n[^\]\n]*){0,4}\]")
_UNDERSCORED = re.compile(r"(?<![\w\\])_(?=\S)[^_]*?(?<=\S)_(?!\w)", re.DOTALL)
_PARENTHESISED_LINE = re.compile(r"^\s*\([^()]*\)\s*$")
_LEADING_PARENTHETICAL = re.compile(r"^\s*\(([^()]*)\)\s*")

# speaker tags: words starting with a capital or a digit, joined by spaces, "and" or "&"
_TAG_WORD = r"[A-Z0-9][A-Za-z'’-]*\.?"
_TAG = rf"{_TAG_WORD}(?:\s+(?:and|&|of|{_TAG_WORD})){{0,3}}"
MARKDOWN_TAG = re.compile(r"^\s{0,3}\*\*(?P<tag>[^*\n]{1,60}?)\*\*[ \t]*(?:\\)?$")
SPEAKER_LINE_TAG = re.compile(rf"^(?P<tag>{_TAG})[ \t]*$")
INLINE_TAG = re.compile(
    r"^(?P<indent>[ \t]*)(?P<tag>(?:(?:\d+\.?|[A-Z][a-z]*)[ \t])?[A-Z0-9][A-Za-z'’-]*)\.[ \t]+(?=\S)"
)
SCREENPLAY_TAG = re.compile(
    r"^[ \t]*(?P<tag>[A-Z][A-Za-z0-9.'’-]*(?:[ \t]+(?:and|&|[A-Z0-9][A-Za-z0-9.'’-]*)){0,3}):(?:[ \t]+|$)"
)
_NOT_TAGS = {"ACT", "SCENE", "ENTER", "EXIT", "EXEUNT", "PERSONS", "DRAMATIS", "THE", "FINIS", "EPILOGUE", "NOTE"}

# a layout is detected when it has this many speaker tags, some tags repeat, and tags are this share of lines
MIN_TAGS = 8
MIN_TAG_SHARE = 0.05


@dataclass
class Line:
    """One line of the text: its content (without the newline) and where it starts."""

    start: int
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def blank(self) -> bool:
        return not self.text.strip()


@dataclass
class RawSpeech:
    """A speech as scanned: the tag as written, where it is, its spoken lines and directions."""

    tag: str
    start: int
    end: int
    act: str
    scene: str
    spoken: list[str] = field(default_factory=list)
    directions: list[str] = field(default_factory=list)


@dataclass
class Scan:
    """What a layout scan found: the speeches, the front matter before the first heading, the directions."""

    speeches: list[RawSpeech]
    front_matter: str
    directions: list[str]


def split_lines(text: str) -> list[Line]:
    """The lines of ``text`` with their offsets."""
    lines, pos = [], 0
    for piece in text.split("\n"):
        lines.append(Line(pos, piece))
        pos += len(piece) + 1
    return lines


def heading_of(line: str) -> tuple[str | None, str | None]:
    """``(act label, scene label)`` a heading line names (either may be ``None``)."""
    act = ACT_HEADING.match(line)
    scene = SCENE_HEADING.search(line) if len(line) < 120 else None
    if scene and not act and not re.match(r"^\s{0,3}(?:#{1,6}\s*)?(?:SCENE|Scene|Scena|Scoena|Scaena)", line, re.I):
        scene = None
    return (act.group("label") if act else None), (scene.group("label") if scene else None)


def is_tag(tag: str) -> bool:
    """Whether a candidate speaker tag is plausible (not a heading word, not too long)."""
    words = tag.replace(".", " ").split()
    return bool(words) and len(tag) <= 40 and words[0].upper() not in _NOT_TAGS


def find_tag(layout: str, lines: list[Line], i: int, indented: bool = False) -> tuple[str, int] | None:
    """The speaker tag starting line ``i`` in ``layout`` and the offset where the speech's words start."""
    line = lines[i]
    if line.blank or any(heading_of(line.text)):
        return None
    if layout != "markdown" and DIRECTION_LINE.match(line.text):
        return None
    if layout == "markdown":
        m = MARKDOWN_TAG.match(line.text)
        return (m.group("tag").strip(), line.end) if m and is_tag(m.group("tag")) else None
    if layout == "speaker_line":
        previous_blank = i == 0 or lines[i - 1].blank or _is_direction_only(lines[i - 1].text)
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        m = SPEAKER_LINE_TAG.match(line.text.strip())
        if not (m and previous_blank and nxt is not None and not nxt.blank):
            return None
        tag = m.group("tag")
        if not (tag.endswith(".") or (tag.isupper() and len(tag) > 1)) or not is_tag(tag):
            return None
        return tag, line.end
    if layout == "inline":
        m = INLINE_TAG.match(line.text)
        if not m or (indented and not m.group("indent")) or not is_tag(m.group("tag")):
            return None
        return m.group("tag") + ".", line.start + m.end()
    m = SCREENPLAY_TAG.match(line.text)
    if not m or not is_tag(m.group("tag")):
        return None
    if m.end() == len(line.text) and (i + 1 >= len(lines) or lines[i + 1].blank):
        return None
    return m.group("tag"), line.start + m.end()


def _is_direction_only(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and not _BRACKETED.sub("", stripped).strip()


def count_tags(layout: str, lines: list[Line]) -> Counter[str]:
    """How often each speaker tag occurs in ``lines`` under ``layout``."""
    tags: Counter[str] = Counter()
    for i in range(len(lines)):
        found = find_tag(layout, lines, i)
        if found:
            tags[found[0]] += 1
    return tags


def detect_layout(text: str) -> str | None:
    """The layout of ``text`` (one of ``LAYOUTS``), or ``None`` when it is in none (prose, not a play).

    A layout qualifies with at least ``MIN_TAGS`` speaker tags, two tags used at least twice each, and tag lines
    making up at least ``MIN_TAG_SHARE`` of the non-blank lines; the layout with the most tags wins.
    """
    lines = split_lines(text)
    nonblank = sum(1 for line in lines if not line.blank) or 1
    best: tuple[int, str] | None = None
    for layout in LAYOUTS:
        tags = count_tags(layout, lines)
        total = sum(tags.values())
        repeated = sum(1 for n in tags.values() if n >= 2)
        qualifies = total >= MIN_TAGS and repeated >= 2 and total >= MIN_TAG_SHARE * nonblank
        if qualifies and (best is None or total > best[0]):
            best = (total, layout)
    return best[1] if best else None


def scan_play(text: str, layout: str) -> Scan:
    """Scan ``text`` in ``layout`` into raw speeches (see the module docstring for the rules)."""
    lines = split_lines(text)
    indented = False
    if layout == "inline":
        matches = [INLINE_TAG.match(line.text) for line in lines]
        found = [m for m in matches if m]
        indented = bool(found) and sum(1 for m in found if m.group("indent")) >= 0.8 * len(found)
    body_start = next((i for i, line in enumerate(lines) if any(heading_of(line.text))), 0)
    front_matter = text[: lines[body_start].start] if body_start else ""
    act = scene = ""
    speeches: list[RawSpeech] = []
    between: list[str] = []
    current: RawSpeech | None = None
    pending: list[str] = []  # directions seen inside the current speech, waiting for more speech
    i = body_start
    while i < len(lines):
        line = lines[i]
        new_act, new_scene = heading_of(line.text)
        if new_act or new_scene:
            act = new_act or act
            scene = new_scene or ("" if new_act else scene)
            current, between = None, between + pending
            pending = []
            i += 1
            continue
        found = find_tag(layout, lines, i, indented)
        if found:
            between += pending
            pending = []
            tag, words_start = found
            current = RawSpeech(tag=tag, start=line.start, end=words_start, act=act, scene=scene)
            speeches.append(current)
            rest = text[words_start : line.end]
            if layout == "screenplay" and (m := _LEADING_PARENTHETICAL.match(rest)):
                current.directions.append(m.group(1).strip())
                rest = rest[m.end() :]
            if rest.strip():
                _add_spoken(current, rest, pending, words_start + len(text[words_start : line.end]))
            i += 1
            continue
        if line.blank:
            if layout in ("speaker_line", "markdown") and current is not None and not _continues(layout, lines, i):
                current = None
            i += 1
            continue
        direction, i = _direction_block(layout, lines, i)
        if direction is not None:
            (pending if current is not None else between).append(direction)
            continue
        if current is not None:
            _add_spoken(current, line.text, pending, line.end)
        i += 1
    return Scan(speeches=[s for s in speeches if s.spoken], front_matter=front_matter, directions=between)


def _continues(layout: str, lines: list[Line], i: int) -> bool:
    """After a blank line in a speaker_line or markdown play: does the speech go on (after a direction)?"""
    j = i + 1
    while j < len(lines) and lines[j].blank:
        j += 1
    if j >= len(lines) or (not _is_direction_only(lines[j].text) and not _UNDERSCORED.fullmatch(lines[j].text.strip())):
        return False
    k = j + 1
    while k < len(lines) and lines[k].blank:
        k += 1
    return (
        k < len(lines)
        and not lines[k].blank
        and find_tag(layout, lines, k) is None
        and not any(heading_of(lines[k].text))
    )


def _direction_block(layout: str, lines: list[Line], i: int) -> tuple[str | None, int]:
    """A stage direction starting at line ``i`` (possibly over several lines) and the line after it."""
    text = lines[i].text.strip()
    if layout == "markdown" and text.startswith("_") and not text.endswith("_"):
        j = i
        while j + 1 < len(lines) and not lines[j].blank and not lines[j].text.rstrip().endswith("_"):
            j += 1
        block = " ".join(line.text.strip() for line in lines[i : j + 1])
        if _UNDERSCORED.fullmatch(block):
            return block.strip("_").strip(), j + 1
    if text.startswith("[") and "]" not in text:
        j = i
        while j + 1 < len(lines) and "]" not in lines[j].text and j - i < 5:
            j += 1
        block = " ".join(line.text.strip() for line in lines[i : j + 1])
        if block.endswith("]"):
            return block[1:-1].strip(), j + 1
    if _is_direction_only(text) or _PARENTHESISED_LINE.match(text) or _UNDERSCORED.fullmatch(text):
        return text.strip("[]()_ ").strip(), i + 1
    if layout != "markdown" and DIRECTION_LINE.match(text):
        j = i
        while (
            j + 1 < len(lines)
            and not lines[j].text.rstrip().endswith((".", "]"))
            and not lines[j + 1].blank
            and find_tag(layout, lines, j + 1) is None
            and j - i < 3
        ):
            j += 1
        return " ".join(line.text.strip() for line in lines[i : j + 1]).strip("[] "), j + 1
    return None, i


def _add_spoken(speech: RawSpeech, piece: str, pending: list[str], end: int) -> None:
    """Add one line of speech, with its inline directions taken out, and the directions waiting before it."""
    directions = [m.group(0)[1:-1].strip() for m in _BRACKETED.finditer(piece)]
    words = _BRACKETED.sub(" ", piece)
    directions += [m.group(0)[1:-1].strip() for m in _UNDERSCORED.finditer(words)]
    words = _UNDERSCORED.sub(" ", words)
    words = " ".join(words.replace("\\", "").split())
    speech.directions += pending + [d for d in directions if d]
    pending.clear()
    if words:
        speech.spoken.append(words)
        speech.end = end
