"""A conversation between characters (and optionally the user): turns, memory, the stop rule.

Each character's prompt is built only from what it **heard**: the turns spoken while it was present (its own
included). The prompt has the training examples' shape (``doctune.recipes.character``): the character card as the
system message (plus retrieved passages when retrieval is on), and as the user message the scene line, the last
``context_turns`` heard turns as ``SPEAKER: words``, and "Reply as NAME.".

The model side is a :data:`Speak` callable (``doctune.converse.voices`` for real models, a function in tests), so
the rules here are tested without a model. The stop rule: ``max_turns``; a reply that repeats an earlier reply
(``stop_on_repeat``); nobody left on stage; the user typing ``/exit``; Ctrl-C (the turn in progress is dropped,
every finished turn is in the log).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from doctune.converse.log import ConversationLog, TurnRecord
from doctune.converse.policy import Chooser, next_speaker
from doctune.converse.scenario import Scenario

log = logging.getLogger(__name__)

EXIT = "/exit"


@dataclass
class Reply:
    """What a model said for one turn, and what it cost."""

    text: str
    adapter: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    boosted_used: list[str] = field(default_factory=list)


#: (character, chat messages, seed, write piece | None) -> its reply
Speak = Callable[[str, list[dict[str, str]], int, Callable[[str], Any] | None], Reply]
#: (character, query text, heard turns) -> (passages block for the system message, their sources)
Retrieve = Callable[[str, str, Sequence["Line"]], tuple[str, list[str]]]


@dataclass(frozen=True)
class Line:
    """A turn as the characters hear it."""

    turn: int
    speaker: str
    text: str


@dataclass
class ConversationSettings:
    policy: str = "round_robin"
    max_turns: int = 8
    context_turns: int = 2
    stop_on_repeat: bool = True
    seed: int = 0


def normalize(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def prompt_sha256(messages: Sequence[Mapping[str, str]]) -> str:
    return hashlib.sha256(json.dumps(list(messages), sort_keys=True).encode()).hexdigest()


def character_messages(
    character: str, card: str, scene_line: str, heard: Sequence[Line], context_turns: int, passages: str = ""
) -> list[dict[str, str]]:
    """The chat messages for ``character``'s next turn, from what it heard (see the module docstring)."""
    recent = list(heard)[-context_turns:] if context_turns else []
    context = "\n\n".join(f"{line.speaker}: {line.text.strip()}" for line in recent)
    opening = context or f"({character} speaks first in this scene.)"
    system = card + (f"\n\n{passages.strip()}" if passages.strip() else "")
    user = f"{scene_line}\n\n{opening}\n\nReply as {character}."
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def clean_reply(text: str, speakers: Sequence[str]) -> str:
    """The reply up to where it starts speaking for someone else (a ``NAME:`` line of another speaker)."""
    names = "|".join(re.escape(s) for s in sorted(speakers, key=len, reverse=True) if s)
    if names:
        match = re.search(rf"(^|\n)\s*\**({names})\**\s*[:.]\s", text, flags=re.IGNORECASE)
        if match and match.start() > 0:
            text = text[: match.start()]
    return text.strip()


class ConversationRunner:
    """Runs one scenario to its stop rule, writing each finished turn to ``log``."""

    def __init__(
        self,
        scenario: Scenario,
        speak: Speak,
        cards: Mapping[str, str],
        settings: ConversationSettings,
        log_: ConversationLog | None = None,
        retrieve: Retrieve | None = None,
        chooser: Chooser | None = None,
        user_name: str | None = None,
        read_user: Callable[[str], str] | None = None,
        write: Callable[[str], Any] | None = None,
        turn_settings: Mapping[str, Any] | None = None,
    ):
        self.scenario = scenario
        self.speak = speak
        self.cards = dict(cards)
        self.settings = settings
        self.log = log_
        self.retrieve = retrieve
        self.chooser = chooser
        self.user_name = user_name.upper() if user_name else None
        self.read_user = read_user
        self.write = write
        self.turn_settings = dict(turn_settings or {})
        self.order = [*scenario.characters, *([self.user_name] if self.user_name else [])]
        self.heard: dict[str, list[Line]] = {name: [] for name in self.order}
        self.turns: list[TurnRecord] = []
        self.prompts: list[tuple[str, list[dict[str, str]]]] = []  # (speaker, messages), for tests and debugging
        self.stop_reason = ""

    def present_at(self, turn: int) -> list[str]:
        return [*self.scenario.present_at(turn), *([self.user_name] if self.user_name else [])]

    def _hear(self, line: Line, present: Sequence[str]) -> None:
        for name in present:
            self.heard.setdefault(name, []).append(line)

    def _emit(self, text: str) -> None:
        if self.write is not None:
            self.write(text)

    def run(self) -> list[TurnRecord]:
        """Turns until the stop rule; returns the finished turns (also in the log)."""
        max_turns = self.scenario.turns or self.settings.max_turns
        policy = self.scenario.policy or self.settings.policy
        seen: set[str] = set()
        last: Line | None = None
        try:
            for turn in range(max_turns):
                present = self.present_at(turn)
                if not [p for p in present if p != self.user_name]:
                    self.stop_reason = "nobody on stage"
                    break
                if turn == 0 and self.scenario.opening is not None:
                    speaker, why = self.scenario.opening.speaker.upper(), "opening"
                else:
                    transcript = "\n".join(f"{t.speaker}: {t.text}" for t in self.turns[-6:])
                    speaker, why = next_speaker(
                        policy,
                        self.order,
                        present,
                        last.speaker if last else None,
                        last.text if last else "",
                        transcript,
                        self.chooser,
                    )
                record = self._turn(turn, speaker, why, present)
                if record is None:
                    break
                last = Line(turn, record.speaker, record.text)
                self._hear(last, present)
                key = normalize(record.text)
                self.turns.append(record)
                if self.log is not None:
                    self.log.append(record)
                if self.settings.stop_on_repeat and key and key in seen and not record.user:
                    self.stop_reason = f"turn {turn} repeats an earlier reply"
                    break
                seen.add(key)
            else:
                self.stop_reason = f"{max_turns} turns"
        except KeyboardInterrupt:
            self.stop_reason = "interrupted (the turn in progress is not logged)"
            self._emit("\n[interrupted]\n")
        if self.log is not None:
            self.log.close()
        return self.turns

    def _turn(self, turn: int, speaker: str, why: str, present: list[str]) -> TurnRecord | None:
        base = {"turn": turn, "speaker": speaker, "present": list(present), "why": why}
        if turn == 0 and self.scenario.opening is not None:
            return TurnRecord(**base, text=self.scenario.opening.text.strip(), settings=self.turn_settings)
        if speaker == self.user_name:
            if self.read_user is None:
                raise ValueError("the user takes part but no input was given")
            try:
                text = self.read_user(f"{speaker}> ").strip()
            except EOFError:
                text = EXIT
            if text == EXIT:
                self.stop_reason = "the user left"
                return None
            return TurnRecord(**base, text=text, user=True)
        heard = self.heard.get(speaker, [])
        sources: list[str] = []
        passages = ""
        if self.retrieve is not None:
            query = heard[-1].text if heard else self.scenario.scene_line()
            passages, sources = self.retrieve(speaker, query, heard)
        messages = character_messages(
            speaker,
            self.cards.get(speaker, f"You are {speaker}."),
            self.scenario.scene_line(),
            heard,
            self.settings.context_turns,
            passages,
        )
        self.prompts.append((speaker, messages))
        seed = self.settings.seed + turn
        self._emit(f"{speaker}: ")
        reply = self.speak(speaker, messages, seed, self.write)
        self._emit("\n")
        text = clean_reply(reply.text, [c for c in self.order if c != speaker])
        return TurnRecord(
            **base,
            text=text,
            adapter=reply.adapter,
            prompt_sha256=prompt_sha256(messages),
            seed=seed,
            latency_s=round(reply.latency_s, 3),
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            settings=self.turn_settings,
            sources=sources,
            boosted_used=reply.boosted_used,
        )
