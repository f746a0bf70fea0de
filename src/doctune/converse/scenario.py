"""Scenarios of conversations between characters: who is there, where, what about, who enters and leaves when.

A scenario file (YAML)::

    title: Hamlet meets Lady Macbeth
    setting: A hall in Elsinore, at night.     # the scene line every prompt starts with
    topic: whether a crown is worth a murder   # optional: what they talk about
    characters: [HAMLET, LADY MACBETH]         # in speaking order (round_robin)
    opening: {speaker: HAMLET, text: "Who's there?"}   # optional first turn, spoken as written
    events:                                    # optional: before turn N (0-based), who enters / exits
      - {turn: 2, enter: [OPHELIA]}
      - {turn: 5, exit: [HAMLET]}
    turns: 8                                   # optional: overrides converse.max_turns
    policy: addressed                          # optional: overrides converse.policy

Characters not entered by an event are present from the start unless ``enter_later`` lists them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the reason."""


class Opening(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: str
    text: str


class Event(BaseModel):
    """Before turn ``turn`` (0-based), ``enter`` come in and ``exit`` leave."""

    model_config = ConfigDict(extra="forbid")

    turn: int = Field(ge=0)
    enter: list[str] = Field(default_factory=list)
    exit: list[str] = Field(default_factory=list)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = "A conversation"
    setting: str = Field("", description="The scene line at the top of every prompt.")
    topic: str = ""
    characters: list[str] = Field(min_length=1)
    enter_later: list[str] = Field(default_factory=list, description="Characters who are not there at the start.")
    opening: Opening | None = None
    events: list[Event] = Field(default_factory=list)
    turns: int | None = Field(None, ge=1)
    policy: Literal["round_robin", "addressed", "natural"] | None = None

    @model_validator(mode="after")
    def _known_names(self) -> Scenario:
        self.characters = [c.strip().upper() for c in self.characters]
        self.enter_later = [c.strip().upper() for c in self.enter_later]
        for event in self.events:
            event.enter = [c.strip().upper() for c in event.enter]
            event.exit = [c.strip().upper() for c in event.exit]
        names = set(self.characters)
        unknown = {c for e in self.events for c in (*e.enter, *e.exit)} | set(self.enter_later)
        unknown -= names
        if unknown:
            raise ValueError(f"events name characters not in `characters`: {', '.join(sorted(unknown))}")
        if len(names) != len(self.characters):
            raise ValueError("a character is listed twice")
        return self

    def present_at(self, turn: int) -> list[str]:
        """Who is on stage for turn ``turn`` (after the events before it), in ``characters`` order."""
        present = set(self.characters) - set(self.enter_later)
        for event in sorted(self.events, key=lambda e: e.turn):
            if event.turn > turn:
                break
            present |= set(event.enter)
            present -= set(event.exit)
        return [c for c in self.characters if c in present]

    def scene_line(self) -> str:
        parts = [self.setting.strip() or self.title]
        if self.topic.strip():
            parts.append(f"They speak of {self.topic.strip().rstrip('.')}.")
        return " ".join(parts)


def load_scenario(path: str | Path) -> Scenario:
    """The scenario in a YAML file; :class:`ScenarioError` naming the file and the reason when it is unusable."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping (title, characters, ...)")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "scenario"
        raise ScenarioError(f"{path}: {where}: {first['msg']}") from None


def scenario_from_topic(characters: list[str], topic: str = "", setting: str = "") -> Scenario:
    """A scenario for ``converse --characters A,B --topic TEXT``: everyone present, no events."""
    names = [c.strip().upper() for c in characters if c.strip()]
    title = " and ".join(n.title() for n in names)
    return Scenario(
        title=f"{title} meet",
        setting=setting or f"{title} meet.",
        topic=topic,
        characters=names,
    )
