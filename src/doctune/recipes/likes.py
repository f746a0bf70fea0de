"""The likes recipe: a post -> "yes" or "no" (would I like it), from the ``posts`` artifact.

Positives: my likes whose post text is resolved (a like row carries the liked post's text and author). Negatives:
posts I saw but did not like: ``kind == "feed"`` posts whose id is not the target of one of my likes. A like whose
text is unknown is reported ("liked post not resolved"), not used. Split: by time (:mod:`doctune.recipes.time_split`,
by when the post was written). ``likes.balance``: ``balanced`` samples negatives down to the positives' count in
each split (seeded); ``weighted`` keeps them all and gives each positive ``fields.weight`` = negatives / positives.

Gate: ``perplexity`` of the label on eval, i.e. the mean of -log P(true label), tuned vs base, lower better (a
proper scoring rule of the yes-probability). ``doctune eval --recipe likes`` also reports ROC AUC and precision@k
with bootstrap CIs of base, baseline and tuned (:meth:`LikesRecipe.extra_report`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from doctune.ingest.social.scrub import training_posts
from doctune.recipes.base import GateSpec, Recipe, RecipeOutput
from doctune.recipes.time_split import split_examples_by_time
from doctune.records import Example, Post

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)

LABELS = ("yes", "no")


class LikesFields(BaseModel):
    """The typed fields of a likes example."""

    model_config = ConfigDict(extra="forbid")

    post_id: str = Field(description="The post judged (for a like: the liked post).")
    label: str = Field(description="yes (liked) | no (seen, not liked)")
    created_at: str = Field(description="When the post was written (orders the time split).")
    author: str
    weight: float = Field(1.0, description="Training weight (likes.balance weighted: positives weigh more).")


def likes_prompt(author: str, text: str, max_chars: int) -> str:
    """The user turn of a likes example (and of a feed post scored by `doctune rank`)."""
    body = " ".join(text.split())[:max_chars]
    who = author or "someone"
    return f"Post by {who}:\n{body}\n\nWould I like this post? Answer yes or no."


def likes_messages(system_prompt: str, author: str, text: str, max_chars: int) -> list[dict[str, str]]:
    """System + user turns of a likes question (without the answer)."""
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": likes_prompt(author, text, max_chars)},
    ]


class LikesRecipe(Recipe):
    """A post -> yes / no: would I like it (see the module docstring)."""

    name = "likes"
    description = "A post -> yes/no, liked or not: my likes vs posts seen in added feeds and not liked."
    inputs = ("posts",)
    config_sections = ("likes",)
    fields_model = LikesFields
    metrics = ("perplexity", "like_correct", "roc_auc", "precision_at_k")
    gate = GateSpec(metric="perplexity", split="eval", higher_is_better=False)

    def build_examples(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> RecipeOutput:
        return self.examples_from(training_posts(config, workspace), config)

    def examples_from(self, posts: Sequence[Post], config: DoctuneConfig) -> RecipeOutput:
        """The examples of ``posts`` (unbalanced: balancing happens per split in :meth:`split_examples`)."""
        cfg = config.likes
        errors: list[dict[str, str]] = []
        liked: set[str] = set()
        examples: list[Example] = []
        for post in posts:
            if post.kind != "like" or not post.is_mine:
                continue
            target = post.target or post.post_id
            if target in liked:
                continue
            liked.add(target)
            if not post.resolved or not post.text.strip():
                errors.append({"unit_id": post.post_id, "reason": "liked post not resolved"})
                continue
            examples.append(self._example(post, target, "yes", config))
        negatives = 0
        seen: set[str] = set()
        for post in posts:
            if post.kind != "feed" or post.post_id in liked or post.post_id in seen:
                continue
            seen.add(post.post_id)
            if not post.resolved or not post.text.strip():
                errors.append({"unit_id": post.post_id, "reason": "feed post has no text"})
                continue
            examples.append(self._example(post, post.post_id, "no", config))
            negatives += 1
        positives = len(examples) - negatives
        if positives and cfg.balance == "weighted":
            weight = max(1.0, negatives / positives)
            examples = [self._reweigh(e, weight) if _label(e) == "yes" else e for e in examples]
        stats = {"liked": positives, "seen_not_liked": negatives, "unresolved_likes": len(errors)}
        log.info("likes examples: %d liked, %d seen but not liked", positives, negatives)
        return RecipeOutput(examples=examples, errors=errors, stats=stats)

    def _example(self, post: Post, post_id: str, label: str, config: DoctuneConfig, weight: float = 1.0) -> Example:
        cfg = config.likes
        messages = [
            *likes_messages(cfg.system_prompt, post.author, post.text, cfg.max_post_chars),
            {"role": "assistant", "content": label},
        ]
        fields = LikesFields(
            post_id=post_id, label=label, created_at=post.created_at, author=post.author, weight=weight
        )
        return self.example(post_id, post_id, messages, fields)

    def _reweigh(self, example: Example, weight: float) -> Example:
        values = example.field_values()
        values["weight"] = round(weight, 4)
        return self.example(example.unit_id, example.group, [m.model_dump() for m in example.messages], values)

    def check(self, example: Example) -> list[str]:
        failed = super().check(example)
        if not failed and example.target.strip() not in LABELS:
            failed.append("label_not_yes_no")
        return failed

    def split_examples(self, examples: Sequence[Example], config: DoctuneConfig) -> dict[str, list[Example]]:
        """Time split; with ``likes.balance: balanced`` negatives sampled down per split to the positives' count."""
        out = split_examples_by_time(examples, config.likes.eval_share)
        if config.likes.balance != "balanced":
            return out
        rng = random.Random(config.likes.seed)
        for split, chosen in out.items():
            pos = [e for e in chosen if _label(e) == "yes"]
            neg = [e for e in chosen if _label(e) != "yes"]
            if len(neg) > len(pos):
                keep = set(id(e) for e in rng.sample(neg, len(pos)))
                out[split] = [e for e in chosen if _label(e) == "yes" or id(e) in keep]
        return out

    # -- evaluation -----------------------------------------------------------------------
    def score_reply(self, example: Example, reply: str) -> dict[str, float]:
        """``like_correct``: 1 when the reply's first word is the true label."""
        words = reply.strip().lower().split()
        first = words[0].strip(".,!:;\"'") if words else ""
        return {"like_correct": float(first == _label(example))}

    def extra_report(
        self, config: DoctuneConfig, workspace: Workspace, examples: Sequence[Example], entries: Sequence[Any], benches
    ) -> dict[str, Any]:
        """ROC AUC and precision@k with CIs of zero-shot base, baseline and each tuned model on the gate split."""
        from doctune.evaluate.likes import likes_evaluation

        return likes_evaluation(config, workspace, examples, entries, benches)


def _label(example: Example) -> str:
    return str(example.field_values().get("label", ""))
