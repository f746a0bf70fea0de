"""Config sections of the personal recipes (``replies``, ``likes``, ``voice``) and feed ranking (``rank``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class RepliesConfig(_Section):
    """The ``replies`` recipe: the post replied to, with its thread -> my reply."""

    system_prompt: str = Field(
        "You are me, replying on social media. Reply to the last post of the thread in my voice, as I would.",
        description="System message of every reply example.",
    )
    max_thread_posts: int = Field(6, ge=1, description="Posts of the thread shown (the parent and its ancestors).")
    max_context_chars: int = Field(1500, ge=100, description="The thread is cut (oldest posts first) to this length.")
    min_reply_chars: int = Field(2, ge=1, description="Shorter replies of mine are reported, not used.")
    eval_share: float = Field(0.2, gt=0, lt=1, description="Newest share of replies held out for eval (time split).")
    classifier_min_posts: int = Field(
        10, ge=2, description="Posts per side (mine / others') the sounds-like-me classifier needs to be trained."
    )
    classifier_min_auc: float = Field(
        0.8,
        ge=0.5,
        le=1.0,
        description="The sounds-like-me classifier's check: its ROC AUC on real posts written from the eval split on "
        "(mine vs others', never trained on) must reach this, else sounds_like_me is not scored.",
    )


class LikesConfig(_Section):
    """The ``likes`` recipe: a post -> liked or not."""

    system_prompt: str = Field(
        "You decide whether I would like a social media post. Answer with one word: yes or no.",
        description="System message of every likes example.",
    )
    max_post_chars: int = Field(1000, ge=50, description="A post's text is cut to this many characters.")
    balance: Literal["balanced", "weighted"] = Field(
        "balanced",
        description="balanced: negatives sampled down to as many as positives in each split; weighted: every "
        "negative kept, the classes weighted (fields.weight; the baseline honours it).",
    )
    eval_share: float = Field(0.2, gt=0, lt=1, description="Newest share of posts held out for eval (time split).")
    k: list[int] = Field(default_factory=lambda: [5, 10], description="The k of precision@k in the likes evaluation.")
    seed: int = Field(0, description="Seed of the negative sampling.")


class VoiceConfig(_Section):
    """The ``voice`` recipe: my posts by topic."""

    system_prompt: str = Field(
        "You are me, writing a social media post in my own voice.", description="System message of every example."
    )
    topic_terms: int = Field(3, ge=1, le=10, description="Keywords in a post's topic label (hashtags first, TF-IDF).")
    min_post_chars: int = Field(20, ge=1, description="Shorter posts of mine are reported, not used.")
    eval_share: float = Field(0.2, gt=0, lt=1, description="Newest share of posts held out for eval (time split).")


class RankConfig(_Section):
    """``doctune rank FEED``: unseen posts of a feed by predicted like."""

    top: int = Field(20, ge=1, description="Posts shown (and remembered as shown); `--top` overrides.")
    model: str = Field(
        "auto",
        description="auto: the tuned likes model (current, else newest registered) when there is one, plus the "
        "baseline; baseline: the embedding baseline only; or a registry id.",
    )
    include_shown: bool = Field(False, description="Rank posts shown by an earlier run too (marked as shown).")
    max_post_chars: int = Field(280, ge=20, description="Post text shown per row in the terminal.")
