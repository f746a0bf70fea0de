"""Retrieval over a play for talking to one of its characters, limited to what the character could know.

``PlayIndex`` embeds every speech of the ``speeches`` artifact once (any embedder of ``doctune.curate.embeddings``,
by default the packaged all-MiniLM-L6-v2) and ``retrieve`` returns, for a query, the character's own most similar
speeches and the most similar earlier speeches of the current scene, never a speech the character could not know
(``known_speeches``). ``passages_prompt`` turns them into a block for the character's prompt; ``Passage.source``
is the one-liner shown by ``/sources``.

The presence rule (``known_speeches``), per scene (same play, act and scene), walking its speeches in order:

- a character is *present* from the speech in which they speak (joint speeches "A/B" count for each of A and B;
  group speakers such as ALL count for no one) or after the speech whose stage directions name them entering
  ("Enter ...", "Re-enter ..."), and *absent* again after a direction names them leaving ("Exit NAME",
  "Exeunt A and B"), after an unnamed "Exit" in their own speech, or after an unnamed "Exeunt" / "Exeunt all"
  ("... but NAME" / "except NAME" keeps NAME);
- a speech is known when the character speaks it (always) or was present for all of it: a speech during which
  they enter or leave is not known, since the text does not say where in it the direction falls;
- a scene starts with nobody present, and only speeches at or before ``upto_index`` (the last speech that has
  taken place) of the character's own play count.

Names in directions are matched case-insensitively as whole words against the play's speakers, the longest match
first (so "Enter Lady Macbeth" is not MACBETH entering), a final plural "s" allowed ("Exit Attendant" is
ATTENDANTS), and a multi-word name also by its last word when no other speaker's name holds that word
("Enter POLONIUS" is LORD POLONIUS). The rule errs towards knowing less. Its limits: a character on stage before
their first speech without a kept "Enter" direction (the markdown layout keeps no direction between speeches) is
only known present from that speech on, and one who leaves without a kept "Exit" direction still hears the rest of
the scene; presence without speaking and without a direction cannot be seen in the text at all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from doctune.curate.embeddings import Embedder, EmbeddingCache, embed_texts, normalize_rows
from doctune.records import Speech

log = logging.getLogger(__name__)

GROUP_SPEAKERS = ("ALL", "BOTH")  # names that stand for several unnamed people: no one's presence follows from them
_CUE = re.compile(r"\b(re-?enter|enter|exeunt|exit|manet|manent)\b", re.IGNORECASE)
_EXCEPT = re.compile(r"\b(?:but|except|save)\b", re.IGNORECASE)
_ALL = re.compile(r"\ball\b", re.IGNORECASE)
_ROMAN = re.compile(r"^[IVXLC]+$")


def normalize_name(name: str) -> str:
    """A speaker name in the canonical form of ``Speech.speaker``: upper case, single spaces."""
    return " ".join(name.upper().split())


def speakers_of(speech: Speech) -> set[str]:
    """The characters who speak ``speech``: each name of a joint speech "A/B"."""
    return {normalize_name(part) for part in speech.speaker.split("/") if part.strip()}


def _is_group(name: str) -> bool:
    return any(name == word or name.startswith(word + " ") for word in GROUP_SPEAKERS)


class _NameFinder:
    """Finds the play's speakers named in a stage direction (see the module docstring for the matching rule)."""

    def __init__(self, names: Iterable[str]):
        names = sorted({normalize_name(n) for n in names if n.strip() and not _is_group(normalize_name(n))})
        words = {n: n.split() for n in names}
        terms: list[tuple[str, list[str]]] = [(n, words[n]) for n in names]
        for name in names:  # a multi-word name also by its last word, when no other name holds that word
            last = words[name][-1]
            if len(words[name]) > 1 and not any(last in words[other] for other in names if other != name):
                terms.append((name, [last]))
        self._patterns: list[tuple[str, re.Pattern[str], re.Pattern[str]]] = []
        for name, parts in terms:
            stem = r"\s+".join(re.escape(p) for p in parts)
            last = re.escape(parts[-1])
            head = r"\s+".join(re.escape(p) for p in parts[:-1]) + (r"\s+" if len(parts) > 1 else "")
            inflected = head + (f"(?:{last}(?:e?s)?" + (f"|{last[:-1]}" if last.endswith("S") else "") + ")")
            exact = re.compile(rf"\b{stem}\b", re.IGNORECASE)
            self._patterns.append((name, exact, re.compile(rf"\b{inflected}\b", re.IGNORECASE)))

    def find(self, text: str) -> set[str]:
        """The names in ``text``: longest matches first, an exact match before an inflected one, no overlaps."""
        matches = []
        for name, exact, inflected in self._patterns:
            for rank, pattern in ((0, exact), (1, inflected)):
                matches += [(-(m.end() - m.start()), rank, m.start(), m.end(), name) for m in pattern.finditer(text)]
        taken: list[tuple[int, int]] = []
        found: set[str] = set()
        for _, _, start, end, name in sorted(matches):
            if all(end <= s or start >= e for s, e in taken):
                taken.append((start, end))
                found.add(name)
        return found


@lru_cache(maxsize=32)
def _finder(names: frozenset[str]) -> _NameFinder:
    return _NameFinder(names)


def _moves(direction: str, character: str, speakers: set[str], finder: _NameFinder) -> list[bool]:
    """What ``direction`` does to ``character``, in order: True = enters, False = leaves (nothing else listed)."""
    cues = list(_CUE.finditer(direction))
    moves: list[bool] = []
    for i, cue in enumerate(cues):
        body = direction[cue.end() : cues[i + 1].start() if i + 1 < len(cues) else len(direction)]
        word = cue.group(1).lower()
        if word.endswith("enter"):
            if character in finder.find(body):
                moves.append(True)
        elif word in ("exit", "exeunt"):
            leaving_part, *staying_part = _EXCEPT.split(body, maxsplit=1)
            staying = finder.find(staying_part[0]) if staying_part else set()
            leaving = finder.find(leaving_part)
            if not leaving:  # unnamed: "Exit" is the speaker, "Exeunt" / "Exeunt all (but ...)" everyone
                everyone = word == "exeunt" or bool(_ALL.search(leaving_part)) or bool(staying)
                leaving = {character} if everyone else speakers
            if character in leaving and character not in staying:
                moves.append(False)
    return moves


def _known_in_scene(scene: Sequence[Speech], character: str, finder: _NameFinder) -> list[Speech]:
    present = False
    known = []
    for speech in scene:
        speakers = speakers_of(speech)
        speaks = character in speakers
        present = present or speaks
        was_present = present
        moves = [m for d in speech.stage_directions for m in _moves(d, character, speakers, finder)]
        if moves:
            present = moves[-1]
        if speaks or (was_present and not moves):
            known.append(speech)
    return known


def character_play(speeches: Iterable[Speech], character: str) -> str | None:
    """The play in which ``character`` speaks; None when in none; ValueError when in several (pass ``play``)."""
    name = normalize_name(character)
    plays = sorted({s.play for s in speeches if name in speakers_of(s)})
    if len(plays) > 1:
        raise ValueError(f"{name} speaks in several plays ({', '.join(plays)}): say which play")
    return plays[0] if plays else None


def known_speeches(
    speeches: Iterable[Speech], character: str, upto_index: int | None = None, play: str | None = None
) -> list[Speech]:
    """The speeches ``character`` could know, in play order: those of ``play`` (default: the one play the character
    speaks in) at or before ``upto_index`` (None: the end) that the presence rule of this module allows."""
    speeches = list(speeches)
    name = normalize_name(character)
    play = play if play is not None else character_play(speeches, name)
    if play is None:
        log.warning("%s speaks in no play of these speeches: nothing known", name)
        return []
    in_play = sorted((s for s in speeches if s.play == play), key=lambda s: s.index)
    finder = _finder(frozenset({name} | {n for s in in_play for n in speakers_of(s)}))
    scenes: dict[tuple[str, str], list[Speech]] = {}
    for speech in in_play:
        if upto_index is None or speech.index <= upto_index:
            scenes.setdefault((speech.act, speech.scene), []).append(speech)
    known = [s for scene in scenes.values() for s in _known_in_scene(scene, name, finder)]
    return sorted(known, key=lambda s: s.index)


def _place(act: str, scene: str) -> str:
    scene_label = scene.lower() if _ROMAN.match(scene) else scene
    return ".".join(part for part in (act, scene_label) if part)


@dataclass(frozen=True)
class Passage:
    """One retrieved speech: ``kind`` "own" (the character's own speech) or "scene" (said earlier in the current
    scene by someone else), with its cosine similarity to the query."""

    speech_id: str
    play: str
    act: str
    scene: str
    index: int
    speaker: str
    text: str
    score: float
    kind: Literal["own", "scene"]

    def source(self) -> str:
        """Where the passage comes from, for ``/sources``: ``Hamlet I.ii #123 HAMLET``."""
        place = _place(self.act, self.scene)
        return " ".join(part for part in (self.play, place, f"#{self.index}", self.speaker) if part)


class PlayIndex:
    """Every speech's embedding (unit rows), built once; ``retrieve`` searches only what a character could know."""

    def __init__(
        self,
        speeches: Iterable[Speech],
        embedder: Embedder,
        cache: EmbeddingCache | None = None,
        batch_size: int = 64,
        progress: bool = False,
    ):
        self.speeches = sorted(speeches, key=lambda s: (s.play, s.index))
        self.embedder = embedder
        texts = [s.text for s in self.speeches]
        log.info("indexing %d speeches with %s", len(texts), embedder.label())
        vectors = embed_texts(embedder, texts, cache=cache, batch_size=batch_size, progress=progress)
        self.vectors = normalize_rows(vectors) if len(texts) else vectors
        self._row = {s.speech_id: i for i, s in enumerate(self.speeches)}

    @classmethod
    def build(
        cls,
        speeches: Iterable[Speech],
        embedder: Embedder,
        cache: EmbeddingCache | None = None,
        batch_size: int = 64,
        progress: bool = False,
    ) -> PlayIndex:
        """The index of ``speeches`` (the constructor, by name)."""
        return cls(speeches, embedder, cache=cache, batch_size=batch_size, progress=progress)

    def current_scene(self, play: str, upto_index: int) -> tuple[str, str, str] | None:
        """The scene (play, act, scene) of the last speech of ``play`` at or before ``upto_index``."""
        before = [s for s in self.speeches if s.play == play and s.index <= upto_index]
        return (play, before[-1].act, before[-1].scene) if before else None

    def known(self, character: str, upto_index: int | None = None, play: str | None = None) -> list[Speech]:
        """``known_speeches`` over this index's speeches."""
        return known_speeches(self.speeches, character, upto_index=upto_index, play=play)

    def retrieve(
        self,
        query: str,
        character: str,
        upto_index: int | None = None,
        scene: tuple[str, str, str] | None = None,
        k_own: int = 3,
        k_scene: int = 2,
        play: str | None = None,
    ) -> list[Passage]:
        """The ``k_own`` known speeches of ``character`` most similar to ``query`` (best first), then the
        ``k_scene`` most similar known speeches of others in ``scene`` (play, act, scene) at or before
        ``upto_index``, in play order. Ties go to the earlier speech. ``play`` defaults to the scene's play, else the
        one play the character speaks in; ``scene`` defaults to the scene of ``upto_index`` (none without it)."""
        name = normalize_name(character)
        play = scene[0] if scene is not None else (play or character_play(self.speeches, name))
        if scene is None and play is not None and upto_index is not None:
            scene = self.current_scene(play, upto_index)
        known = [s for s in self.known(name, upto_index=upto_index, play=play) if s.text.strip()]
        own = [s for s in known if name in speakers_of(s)]
        here = tuple(scene) if scene is not None else None
        others = [s for s in known if (s.play, s.act, s.scene) == here and name not in speakers_of(s)]
        if not own and not others:
            return []
        q = self.embedder.embed([query])[0]
        passages = self._top(own, q, k_own, "own")
        passages += sorted(self._top(others, q, k_scene, "scene"), key=lambda p: p.index)
        log.debug("retrieved for %s: %s", name, [p.source() for p in passages])
        return passages

    def _top(self, candidates: list[Speech], query: np.ndarray, k: int, kind: Literal["own", "scene"]) -> list[Passage]:
        if k <= 0 or not candidates:
            return []
        scores = self.vectors[[self._row[s.speech_id] for s in candidates]] @ query
        order = sorted(range(len(candidates)), key=lambda i: (-round(float(scores[i]), 6), candidates[i].index))
        fields = {"speech_id", "play", "act", "scene", "index", "speaker", "text"}
        return [
            Passage(**candidates[i].model_dump(include=fields), score=float(scores[i]), kind=kind) for i in order[:k]
        ]


def _trim(text: str, max_chars: int) -> str:
    flat = " / ".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    if len(flat) <= max_chars:
        return flat
    cut = flat[: max(max_chars - 1, 1)]
    cut = cut[: cut.rfind(" ")] if " " in cut else cut
    return cut.rstrip(" /,;:") + "…"


def passages_prompt(passages: Sequence[Passage], max_chars: int = 300) -> str:
    """The block for the character's prompt: their own lines, then what was said earlier in the scene; each
    passage on one line (verse lines joined by " / "), cut to ``max_chars``. Empty when there is nothing."""
    own = [p for p in passages if p.kind == "own"]
    scene = [p for p in passages if p.kind == "scene"]
    blocks = []
    if own:
        blocks.append("Lines you have spoken:\n" + "\n".join(f"- {_trim(p.text, max_chars)}" for p in own))
    if scene:
        lines = "\n".join(f"- {p.speaker}: {_trim(p.text, max_chars)}" for p in scene)
        blocks.append("Earlier in this scene:\n" + lines)
    return "\n".join(blocks)


def sources_text(passages: Sequence[Passage]) -> str:
    """What ``/sources`` shows: one line per passage, its source, kind and score."""
    if not passages:
        return "(no sources)"
    return "\n".join(f"{p.source()}  [{p.kind}, {p.score:.2f}]" for p in passages)
