"""The character recipe: teach a model to speak as one character of a play, one adapter per character.

Input: the ``speeches`` and ``persons`` artifacts of ``doctune ingest`` on a play. One example per speech of a
chosen character (speeches under ``character.min_reply_words`` words are not targets but stay as context):

* system: the character card: who they are (``plays.persons`` if it names them, else the play's list of
  persons), and to reply in their voice;
* user: the scene ("Hamlet, Act I, Scene 2"), the ``character.context_speeches`` speeches before it in the scene
  as ``SPEAKER: words`` (the oldest cut first to ``character.max_context_chars``), and a line naming who replies;
* assistant: the character's real speech, cut at a sentence or line end before ``character.max_reply_chars``.

Which characters: ``--character`` / ``character.characters``; by default every character with at least
``2 * character.min_heldout`` usable speeches (enough to hold ``min_heldout`` out and train on as many). A
character asked for but absent is reported as an error (the generate stage lists it), not a crash.

Split: by scene (group ``play|act|scene``); see :mod:`doctune.recipes.character_split`. Checks beyond the base
ones: ``target_not_real_speech`` (the reply is not the speech it claims, compared through a hash of its
whitespace-normalised text kept in the fields) and ``context_has_target`` (the user turn already holds the reply).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from doctune.recipes.base import GateSpec, Recipe, RecipeOutput
from doctune.recipes.character_split import cap_evenly, choose_heldout_scenes
from doctune.records import Example, Person, Speech

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"""[.!?]['"’”)\]]*(?=\s|$)""")
_ROMAN = re.compile(r"^(?=[MDCLXVI])M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$", re.IGNORECASE)
_ROMAN_VALUES = {"M": 1000, "D": 500, "C": 100, "L": 50, "X": 10, "V": 5, "I": 1}


class CharacterFields(BaseModel):
    """The typed fields of a character example."""

    model_config = ConfigDict(extra="forbid")

    character: str = Field(description="Canonical name of the speaker of the target (one adapter per character).")
    play: str
    act: str
    scene: str
    speech_id: str
    speech_index: int = Field(description="Position of the speech in its play (orders the examples).")
    context_speakers: list[str] = Field(description="Speakers of the context speeches, oldest first.")
    card: str = Field(description="The character card (the system message).")
    reply_hash: str = Field(description="sha256 of the whitespace-normalised reply as cut from the real speech.")
    reply_cut: bool = Field(False, description="The reply is the start of a longer speech.")


def normalize(text: str) -> str:
    """Whitespace collapsed to single spaces (how texts are compared)."""
    return " ".join(text.split())


def text_hash(text: str) -> str:
    return hashlib.sha256(normalize(text).encode()).hexdigest()[:32]


def scene_number(label: str) -> str:
    """A roman scene label as an arabic number ("II" -> "2"); other labels as written."""
    label = label.strip()
    if not _ROMAN.match(label):
        return label
    values = [_ROMAN_VALUES[ch] for ch in label.upper()]
    return str(sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values)))


def scene_label(play: str, act: str, scene: str) -> str:
    """ "Hamlet, Act I, Scene 2" (parts the play lacks are left out)."""
    parts = [play]
    if act:
        parts.append(f"Act {act}")
    if scene:
        parts.append(f"Scene {scene_number(scene)}")
    return ", ".join(parts)


def cut_reply(text: str, max_chars: int) -> str:
    """``text`` (stripped), or its start cut at the last sentence end, else line end, else word end before
    ``max_chars``: always a prefix of the stripped text."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= max_chars // 3:
        return head[: ends[-1]].rstrip()
    line = head.rfind("\n")
    if line >= max_chars // 3:
        return head[:line].rstrip()
    if ends:
        return head[: ends[-1]].rstrip()
    space = head.rfind(" ")
    return head[:space].rstrip() if space > 0 else head


def _tail(text: str, max_chars: int) -> str:
    """The end of ``text`` in at most ``max_chars`` characters, cut at a word start and marked with "…"."""
    if len(text) <= max_chars:
        return text
    tail = text[len(text) - max_chars + 2 :]
    space = tail.find(" ")
    if 0 <= space < len(tail) - 1:
        tail = tail[space + 1 :]
    return "… " + tail.lstrip()


def format_context(previous: Sequence[Speech], max_chars: int) -> tuple[str, list[str]]:
    """The context block (``SPEAKER: words`` paragraphs, newest kept whole first) and its speakers, oldest first."""
    blocks: list[str] = []
    speakers: list[str] = []
    used = 0
    for speech in reversed(previous):
        prefix = f"{speech.speaker}: "
        sep = 2 if blocks else 0
        room = max_chars - used - sep - len(prefix)
        if room < 20:
            break
        words = normalize(speech.text)
        block = prefix + _tail(words, room)
        blocks.insert(0, block)
        speakers.insert(0, speech.speaker)
        used += sep + len(block)
        if len(words) > room:
            break
    return "\n\n".join(blocks), speakers


def character_card(name: str, play: str, description: str) -> str:
    """The system message: who the character is and how to reply."""
    lines = [f"You are {name}, a character in {play}."]
    if description:
        lines.append(f"Who you are: {description.strip()}")
    lines.append(f"Speak in {name}'s voice: reply with {name}'s next speech only, in the language of the play.")
    return "\n".join(lines)


class CharacterRecipe(Recipe):
    """Per speech of a character: card + preceding speeches of the scene -> the real speech (see the module)."""

    name = "character"
    description = "Per speech: the character card and the preceding speeches of the scene -> the real speech."
    inputs = ("speeches", "persons")
    config_sections = ("character",)
    fields_model = CharacterFields
    splits = ("train", "eval")
    metrics = ("perplexity", "attribution", "style", "in_character")
    gate = GateSpec(metric="perplexity", split="eval", higher_is_better=False)
    adapter_field = "character"

    # -- making examples ------------------------------------------------------------------
    def build_examples(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> RecipeOutput:
        speeches = sorted(workspace.read_rows("speeches", Speech, config), key=lambda s: (s.doc_id, s.index))
        persons: list[Person] = []
        if workspace.freshness("persons", config) == "missing":
            log.warning("no persons artifact: character cards carry no description (unless plays.persons has one)")
        else:
            persons = workspace.read_rows("persons", Person, config)
        return self.examples_from(speeches, persons, config, options)

    def examples_from(
        self,
        speeches: Sequence[Speech],
        persons: Sequence[Person],
        config: DoctuneConfig,
        options: Mapping[str, Any] | None = None,
    ) -> RecipeOutput:
        """The examples of ``speeches`` (ordered by play and position), without a workspace."""
        cfg = config.character
        usable = Counter(s.speaker for s in speeches if len(s.text.split()) >= cfg.min_reply_words)
        chosen, errors = self._choose(usable, speeches, persons, config, options or {})
        descriptions = {(p.play, p.name): p.description for p in persons}
        overrides = {k.strip().upper(): v for k, v in config.plays.persons.items()}

        scenes: dict[tuple[str, str, str], list[Speech]] = defaultdict(list)
        examples: list[Example] = []
        short = 0
        for speech in speeches:
            previous = scenes[(speech.doc_id, speech.act, speech.scene)]
            if speech.speaker in chosen:
                if len(speech.text.split()) < cfg.min_reply_words:
                    short += 1
                else:
                    desc = overrides.get(speech.speaker.upper()) or descriptions.get((speech.play, speech.speaker), "")
                    examples.append(self._example(speech, previous, desc, config))
            previous.append(speech)
        per_character = Counter(self.adapter_key(e) or "" for e in examples)
        stats = {
            "characters": sorted(chosen),
            "per_character": {c: per_character[c] for c in sorted(chosen)},
            "speeches": len(speeches),
            "too_short": short,
        }
        log.info("character examples: %s", ", ".join(f"{c} {n}" for c, n in sorted(per_character.items())))
        return RecipeOutput(examples=examples, errors=errors, stats=stats)

    def _choose(
        self,
        usable: Counter[str],
        speeches: Sequence[Speech],
        persons: Sequence[Person],
        config: DoctuneConfig,
        options: Mapping[str, Any],
    ) -> tuple[set[str], list[dict[str, str]]]:
        """The characters to make examples for, and one error per character asked for but absent."""
        asked = options.get("characters") or options.get("character") or config.character.characters
        asked = [asked] if isinstance(asked, str) else list(asked)
        plays = ", ".join(sorted({s.play for s in speeches})) or "(no play ingested)"
        if not asked:
            least = 2 * config.character.min_heldout
            chosen = {c for c, n in usable.items() if n >= least and "/" not in c}
            if not chosen:
                top = ", ".join(f"{c} ({n})" for c, n in usable.most_common(5))
                reason = (
                    f"no character has {least}+ speeches of {config.character.min_reply_words}+ words in {plays} "
                    f"(most: {top or 'none'}); name them with --character or lower character.min_heldout"
                )
                return set(), [{"character": "", "reason": reason}]
            return chosen, []
        by_name = {c.upper(): c for c in usable}
        for p in persons:
            for alias in [p.name, *p.aliases]:
                by_name.setdefault(alias.upper(), p.name)
        chosen, errors = set(), []
        for name in asked:
            found = by_name.get(name.strip().upper())
            if found is None or usable[found] == 0:
                top = ", ".join(c for c, _ in usable.most_common(8))
                reason = f"character {name!r} has no speech of {config.character.min_reply_words}+ words in {plays}"
                errors.append({"character": name, "reason": f"{reason} (characters with most: {top})"})
            else:
                chosen.add(found)
        return chosen, errors

    def _example(self, speech: Speech, previous: Sequence[Speech], description: str, config: DoctuneConfig) -> Example:
        cfg = config.character
        card = character_card(speech.speaker, speech.play, description)
        context, speakers = format_context(
            previous[-cfg.context_speeches :] if cfg.context_speeches else [], cfg.max_context_chars
        )
        label = scene_label(speech.play, speech.act, speech.scene)
        opening = context or f"({speech.speaker} speaks first in this scene.)"
        user = f"{label}\n\n{opening}\n\nReply as {speech.speaker}."
        reply = cut_reply(speech.text, cfg.max_reply_chars)
        fields = CharacterFields(
            character=speech.speaker,
            play=speech.play,
            act=speech.act,
            scene=speech.scene,
            speech_id=speech.speech_id,
            speech_index=speech.index,
            context_speakers=speakers,
            card=card,
            reply_hash=text_hash(reply),
            reply_cut=normalize(reply) != normalize(speech.text),
        )
        messages = [
            {"role": "system", "content": card},
            {"role": "user", "content": user},
            {"role": "assistant", "content": reply},
        ]
        group = f"{speech.play}|{speech.act}|{speech.scene}"
        return self.example(speech.speech_id, group, messages, fields, doc_ids=[speech.doc_id])

    # -- curation -------------------------------------------------------------------------
    def check(self, example: Example) -> list[str]:
        failed = super().check(example)
        if failed:
            return failed
        values = example.field_values()
        target = normalize(example.target)
        if text_hash(target) != values["reply_hash"]:
            failed.append("target_not_real_speech")
        users = [m.content for m in example.prompt_messages if m.role == "user"]
        if target and users and target in normalize(users[-1]):
            failed.append("context_has_target")
        return failed

    def split_examples(self, examples: Sequence[Example], config: DoctuneConfig) -> dict[str, list[Example]]:
        """Whole scenes held out as ``eval`` (enough for every character), the rest ``train`` (capped evenly)."""
        cfg = config.character
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for ex in examples:
            counts[ex.group][self.adapter_key(ex) or ""] += 1
        choice = choose_heldout_scenes(counts, cfg.min_heldout, cfg.seed)
        heldout = set(choice.scenes)
        out: dict[str, list[Example]] = {"train": [], "eval": []}
        train_by_character: dict[str, list[Example]] = defaultdict(list)
        for ex in examples:
            if ex.group in heldout:
                out["eval"].append(ex)
            else:
                train_by_character[self.adapter_key(ex) or ""].append(ex)
        for character in sorted(train_by_character):
            ordered = sorted(train_by_character[character], key=_position)
            out["train"].extend(cap_evenly(ordered, cfg.max_train_per_character))
        log.info(
            "held-out scenes: %s; per character (train/eval): %s",
            ", ".join(choice.scenes) or "none",
            ", ".join(f"{c} {choice.totals[c] - choice.heldout[c]}/{choice.heldout[c]}" for c in sorted(choice.totals)),
        )
        return out


def _position(example: Example) -> tuple[str, int]:
    values = example.field_values()
    return values.get("play", ""), int(values.get("speech_index", 0))
