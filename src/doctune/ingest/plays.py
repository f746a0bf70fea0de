"""Plays: a document -> its speeches (``Speech``) and characters (``Person``), for the ``speeches`` artifact.

:func:`parse_play` detects the layout (see :mod:`doctune.ingest.play_layouts`), scans the speeches, reads the
list of persons from the front matter and resolves every speaker tag to a canonical name by rule (see
:mod:`doctune.ingest.play_persons`). Tags that resolve to no one are kept -- the speech is written with its tag
upper-cased as speaker and ``unresolved=True`` -- and listed in :attr:`PlayParse.unresolved`; nothing is merged
or dropped silently. Group speakers (``ALL``, ``BOTH``) are characters of their own; a joint speech's speaker is
``A/B`` and counts for no single character in the ``Person`` rows.

``char_start``/``char_end`` of a speech are offsets into ``Document.text`` from its tag to its last spoken line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from doctune.config_recipes import PlaysConfig
from doctune.ingest.play_layouts import LAYOUTS, detect_layout, scan_play
from doctune.ingest.play_persons import ListedPerson, Resolution, Resolver, entrance_names, parse_persons_list
from doctune.records import Document, IngestError, Person, Speech

log = logging.getLogger(__name__)

PLAY_FORMATS = ("md", "txt")
NO_LAYOUT_MESSAGE = (
    "no play layout recognised (speaker tags as **NAME** lines, NAME. lines, inline 'Nam. words' or NAME: lines); "
    "kept as prose"
)

__all__ = [
    "LAYOUTS",
    "NO_LAYOUT_MESSAGE",
    "PlayParse",
    "PlaysResult",
    "UnresolvedTag",
    "detect_layout",
    "parse_play",
    "parse_plays",
]


@dataclass
class UnresolvedTag:
    """A speaker tag that matched no character, how often it occurs and why."""

    tag: str
    speeches: int
    reason: str


@dataclass
class PlayParse:
    """The speeches and characters of one play document, and how it was read."""

    doc_id: str
    play: str
    layout: str | None
    speeches: list[Speech] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    unresolved: list[UnresolvedTag] = field(default_factory=list)
    has_persons_list: bool = False

    def report(self) -> dict:
        """The per-file summary for the ingest report (``stats["plays"][source]``)."""
        if self.layout is None:
            return {"layout": None, "message": NO_LAYOUT_MESSAGE}
        return {
            "layout": self.layout,
            "speeches": len(self.speeches),
            "characters": sum(1 for p in self.persons if p.speeches),
            "persons_list": self.has_persons_list,
            "unresolved": [f"{u.tag} ({u.speeches}): {u.reason}" for u in self.unresolved],
        }


@dataclass
class PlaysResult:
    """The plays among a set of documents: all speeches and persons, the per-file report and warnings."""

    speeches: list[Speech] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    report: dict[str, dict] = field(default_factory=dict)
    warnings: list[IngestError] = field(default_factory=list)


def parse_plays(documents: list[Document], cfg: PlaysConfig, as_kind: str | None = None) -> PlaysResult:
    """Parse the md/txt ``documents`` that are plays (``as_kind="play"``: all of them; ``"prose"``: none;
    ``None``: those in a detected layout, when ``cfg.detect`` is on).

    ``report`` maps each play's source path to :meth:`PlayParse.report`. A document forced to be a play but in no
    layout stays a (prose) document; it is reported, with a warning row naming it.
    """
    result = PlaysResult()
    if as_kind == "prose" or (as_kind is None and not cfg.detect):
        return result
    for document in documents:
        if document.format not in PLAY_FORMATS:
            continue
        if as_kind is None and detect_layout(document.text) is None:
            continue  # prose
        parse = parse_play(document, cfg.layout, cfg.persons)
        if parse.layout is None:
            if as_kind == "play":
                log.warning("%s: %s", document.source_path, NO_LAYOUT_MESSAGE)
                result.warnings.append(IngestError(source_path=document.source_path, reason=NO_LAYOUT_MESSAGE))
                result.report[document.source_path] = parse.report()
            continue
        result.speeches += parse.speeches
        result.persons += parse.persons
        result.report[document.source_path] = parse.report()
    return result


def parse_play(document: Document, layout: str = "auto", persons_override: dict[str, str] | None = None) -> PlayParse:
    """Parse ``document`` as a play in ``layout`` (``auto``: detected; see :data:`LAYOUTS`).

    ``persons_override`` maps character names to descriptions. In a play with a list of persons they replace its
    entries of the same name and join the list (so a tag can resolve to them); in a play without one they only
    describe the characters of those names that speak (one config can describe the characters of several plays).
    A document in no layout gives a ``PlayParse`` with ``layout=None`` and no speeches.
    """
    chosen = detect_layout(document.text) if layout == "auto" else layout
    if chosen is None:
        return PlayParse(doc_id=document.doc_id, play=document.title, layout=None)
    if chosen not in LAYOUTS:
        raise ValueError(f"unknown play layout {chosen!r}; choose auto or one of {', '.join(LAYOUTS)}")
    scan = scan_play(document.text, chosen)
    listed = parse_persons_list(scan.front_matter)
    has_list = bool(listed)
    if has_list:
        listed = _apply_overrides(listed, persons_override or {})
    all_directions = scan.directions + [d for s in scan.speeches for d in s.directions]
    resolver = Resolver(persons=listed, entrance_names=entrance_names(all_directions), persons_text=scan.front_matter)
    resolutions = resolver.resolve_all([s.tag for s in scan.speeches])
    speeches = [_speech(document, i, raw.tag, resolutions[raw.tag], raw) for i, raw in enumerate(scan.speeches)]
    parse = PlayParse(doc_id=document.doc_id, play=document.title, layout=chosen, has_persons_list=has_list)
    parse.speeches = speeches
    parse.persons = _persons(document, listed, speeches, resolutions)
    described = {" ".join(k.upper().split()): v for k, v in (persons_override or {}).items()}
    for person in parse.persons:
        person.description = described.get(person.name, person.description)
    parse.unresolved = _unresolved(speeches, resolutions)
    log.info(
        "%s: %s layout, %d speeches, %d characters, %d unresolved tags",
        document.source_path,
        chosen,
        len(speeches),
        len(parse.persons),
        len(parse.unresolved),
    )
    return parse


def _speech(document: Document, index: int, tag: str, resolution: Resolution, raw) -> Speech:
    speaker = resolution.name or " ".join(tag.upper().rstrip(".:").split())
    return Speech(
        speech_id=f"{document.doc_id}-{index}",
        doc_id=document.doc_id,
        play=document.title,
        act=raw.act,
        scene=raw.scene,
        index=index,
        speaker=speaker,
        raw_speaker=tag,
        text="\n".join(raw.spoken),
        stage_directions=raw.directions,
        char_start=raw.start,
        char_end=raw.end,
        unresolved=resolution.name is None,
    )


def _apply_overrides(listed: list[ListedPerson], overrides: dict[str, str]) -> list[ListedPerson]:
    by_name = {p.name: p for p in listed}
    for name, description in overrides.items():
        key = " ".join(name.upper().split())
        by_name[key] = ListedPerson(key, description)
    return list(by_name.values())


def _persons(
    document: Document, listed: list[ListedPerson], speeches: list[Speech], resolutions: dict[str, Resolution]
) -> list[Person]:
    """One row per listed person and per other name a single speaker resolved to (joint ``A/B`` speakers: none)."""
    descriptions = {p.name: p.description for p in listed}
    order = list(descriptions)
    for speech in speeches:
        if not speech.unresolved and "/" not in speech.speaker and speech.speaker not in descriptions:
            descriptions[speech.speaker] = "group speaker (joint speech)" if _is_group(speech, resolutions) else ""
            order.append(speech.speaker)
    rows = {
        name: Person(doc_id=document.doc_id, play=document.title, name=name, description=descriptions[name])
        for name in order
    }
    for speech in speeches:
        row = rows.get(speech.speaker)
        if row is None or speech.unresolved:
            continue
        row.speeches += 1
        row.words += len(speech.text.split())
        if speech.raw_speaker not in row.aliases:
            row.aliases.append(speech.raw_speaker)
    return list(rows.values())


def _is_group(speech: Speech, resolutions: dict[str, Resolution]) -> bool:
    return resolutions[speech.raw_speaker].group


def _unresolved(speeches: list[Speech], resolutions: dict[str, Resolution]) -> list[UnresolvedTag]:
    counts: dict[str, int] = {}
    for speech in speeches:
        if speech.unresolved:
            counts[speech.raw_speaker] = counts.get(speech.raw_speaker, 0) + 1
    return [UnresolvedTag(tag, n, resolutions[tag].reason) for tag, n in counts.items()]
