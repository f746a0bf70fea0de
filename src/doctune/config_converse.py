"""Config section of talking to characters (``doctune chat --character``, ``converse``, ``eval conversations``);
part of the one tree in ``config.py``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: words a character of an early-modern play would not say; suppressed when ``converse.bias`` is on
MODERN_WORDS = (
    "okay",
    "hey",
    "guys",
    "cool",
    "awesome",
    "internet",
    "phone",
    "computer",
    "email",
    "movie",
    "website",
    "online",
    "assistant",
)


class ConverseConfig(BaseModel):
    """Character chat and conversations: which switches are on, how replies are sampled, how turns are taken."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    rag: bool = Field(True, description="Retrieve the character's own relevant speeches and the scene's context.")
    rag_own: int = Field(2, ge=0, description="Own speeches retrieved per turn.")
    rag_scene: int = Field(1, ge=0, description="Speeches of the current scene retrieved per turn (ones it heard).")
    rag_max_chars: int = Field(160, ge=20, description="Each retrieved speech is cut to this many characters.")
    upto: int | None = Field(
        None, description="The point of the play (speech index) the characters know up to; none: the whole play."
    )
    bias: bool = Field(True, description="Steer replies by logit bias (boost distinctive words, suppress others).")
    boost_words: int = Field(12, ge=0, description="The character's most distinctive content words boosted.")
    boost_bias: float = Field(2.0, ge=0, description="Logit added to a boosted word's tokens.")
    suppress: list[str] = Field(
        default_factory=lambda: list(MODERN_WORDS), description="Words never to say (modern words...)."
    )
    suppress_other_plays: bool = Field(
        True, description="Also suppress the names of characters of other plays (no bleeding between plays)."
    )
    suppress_bias: float = Field(-100.0, le=0, description="Logit added to a suppressed word's last token.")
    max_tokens: int = Field(40, ge=1, description="Longest reply in tokens.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(0.9, gt=0, le=1, description="Nucleus sampling mass.")
    repetition_penalty: float = Field(1.15, ge=1, description="transformers' repetition penalty (1: none).")
    seed: int = Field(0, description="Seed of a conversation's sampling (each turn: seed + turn index).")
    context_turns: int = Field(2, ge=1, description="Preceding turns (that the speaker heard) shown in its prompt.")
    policy: Literal["round_robin", "addressed", "natural"] = Field(
        "round_robin",
        description="Who speaks next: in order; the character named in the last turn; or a model's pick.",
    )
    max_turns: int = Field(8, ge=1, description="A conversation stops after this many turns.")
    stop_on_repeat: bool = Field(True, description="Stop when a reply repeats an earlier reply of the conversation.")
    user_name: str = Field("STRANGER", description="The user's name when the user takes part (chat, --join).")
    scenarios_dir: str | None = Field(
        None, description="Folder of the benchmark's scenario YAML files; none: the packaged ones."
    )
    compare_student: str | None = Field(
        None, description="Base model of a second student for the benchmark's small-vs-large scenarios (gemma3-270m)."
    )
    bench_scenarios: list[str] = Field(
        default_factory=list,
        description="Scenarios the benchmark runs, by file name without .yaml; empty: every scenario of the folder.",
    )
    bench_max_tokens: int | None = Field(
        32,
        ge=1,
        description="Longest reply in the benchmark (none: max_tokens); 32 keeps 14 scenarios x 5 settings under 25 "
        "minutes on 2 CPU cores.",
    )
