"""Config sections of the recipe seam and of the play / character recipe (part of the one tree in ``config.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, coerce_numbers_to_str=True)


class PlaysConfig(_Section):
    """How ``doctune ingest`` reads plays into the ``speeches`` artifact."""

    detect: bool = Field(
        True, description="Recognise plays among ingested files and parse their speeches (`ingest --as play` forces)."
    )
    layout: Literal["auto", "markdown", "speaker_line", "inline", "screenplay"] = Field(
        "auto", description="Speech layout; auto detects it per file (and the ingest report says which)."
    )
    persons: dict[str, str] = Field(
        default_factory=dict,
        description="Character name -> who they are, for the character card (overrides the play's list of persons).",
    )


class CharacterConfig(_Section):
    """The character recipe: per speech, the preceding speeches as the user turn, the real speech as the reply."""

    characters: list[str] = Field(
        default_factory=list, description="Canonical names to make examples for (`--character` overrides); empty: all."
    )
    context_speeches: int = Field(2, ge=0, description="Preceding speeches (k) shown in the user turn.")
    max_context_chars: int = Field(600, ge=50, description="The user turn's speeches are cut to this many characters.")
    max_reply_chars: int = Field(600, ge=20, description="Longer speeches are cut at a sentence end before this.")
    min_reply_words: int = Field(3, ge=1, description="Shorter speeches are not targets (they stay as context).")
    min_heldout: int = Field(20, ge=1, description="Held-out speeches each character keeps (whole scenes held out).")
    max_train_per_character: int | None = Field(
        None, ge=1, description="Cap on training examples per character (evenly spaced), for demos."
    )
    seed: int = Field(0, description="Seed of the held-out scene choice.")


class FidelityConfig(_Section):
    """The character fidelity benchmark of ``doctune eval`` on a character dataset."""

    max_speeches: int = Field(40, ge=1, description="Held-out speeches per character scored for perplexity.")
    reply_contexts: int = Field(20, ge=1, description="Held-out contexts each model replies to (attribution, style).")
    max_tokens: int = Field(48, ge=1, description="Longest generated reply in tokens.")
    classifier_characters: int = Field(
        4, ge=2, description="The speaker classifier's classes: the play's characters with most words (at least 4)."
    )
    distinctive_words: int = Field(
        30, ge=1, description="A character's distinctive words (log-odds vs the rest of its play) for the style rate."
    )
    judge_check_items: int = Field(
        6,
        ge=0,
        description="Held-out speeches the judge must call in character (and modern replies out of it) before its "
        "in-character verdicts count; 0: no judge, in-character is not scored.",
    )
    compare_students: list[str] = Field(
        default_factory=list,
        description="Registry ids of a second student's adapters (e.g. a larger base) reported beside the first.",
    )
