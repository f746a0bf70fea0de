"""The replies recipe: the post I replied to, with its thread -> my reply, from the ``posts`` artifact.

For each reply of mine (``kind == "reply"``, ``is_mine``): the parent (``in_reply_to``) and its ancestors in order,
oldest first, as far as they are resolved (``replies.max_thread_posts`` at most, cut oldest first to
``replies.max_context_chars``). A reply whose parent is missing or has no text is reported ("parent not resolved"),
not used. Split: by time (:mod:`doctune.recipes.time_split`).

Evaluation (``score_reply``): ``reply_similarity`` (embedding cosine to my real reply), ``token_f1``, and
``sounds_like_me``: P(mine) from a logistic regression on embeddings of my posts vs other people's posts, trained
on posts written before the eval split starts. :meth:`RepliesRecipe.prepare_eval` builds both from the workspace;
without it only ``token_f1`` is scored. Gate: ``sounds_like_me`` on eval, tuned vs base.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from doctune.evaluate.metrics import token_f1
from doctune.ingest.social.scrub import training_posts
from doctune.recipes.base import GateSpec, Recipe, RecipeOutput
from doctune.recipes.time_split import split_examples_by_time
from doctune.records import Example, Post

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.rank.baseline import Embed, EmbeddingClassifier
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)


class RepliesFields(BaseModel):
    """The typed fields of a reply example."""

    model_config = ConfigDict(extra="forbid")

    reply_id: str
    parent_id: str
    thread_len: int = Field(description="Posts of the thread shown (the parent and its resolved ancestors).")
    created_at: str = Field(description="When I replied (orders the time split).")
    language: str = ""


def thread_of(reply: Post, by_id: Mapping[str, Post], max_posts: int) -> list[Post] | None:
    """The parent of ``reply`` and its resolved ancestors, oldest first; None when the parent is not resolved."""
    parent = by_id.get(reply.in_reply_to)
    if parent is None or not parent.resolved or not parent.text.strip():
        return None
    chain, seen = [parent], {reply.post_id, parent.post_id}
    while len(chain) < max_posts:
        up = by_id.get(chain[-1].in_reply_to)
        if up is None or up.post_id in seen or not up.resolved or not up.text.strip():
            break
        seen.add(up.post_id)
        chain.append(up)
    return chain[::-1]


def format_thread(thread: Sequence[Post], max_chars: int) -> str:
    """``author: text`` lines, the oldest dropped first to fit ``max_chars`` (the parent is always kept, cut)."""
    lines = [f"{p.author or 'someone'}: {' '.join(p.text.split())}" for p in thread]
    while len(lines) > 1 and sum(len(x) + 1 for x in lines) > max_chars:
        lines.pop(0)
    return "\n".join(lines)[-max_chars:]


class RepliesRecipe(Recipe):
    """The post replied to, with its thread -> my reply (see the module docstring)."""

    name = "replies"
    description = "The post I replied to, with its thread -> my real reply."
    inputs = ("posts",)
    config_sections = ("replies",)
    fields_model = RepliesFields
    metrics = ("perplexity", "reply_similarity", "token_f1", "sounds_like_me", "judge_in_voice")
    gate = GateSpec(metric="sounds_like_me", split="eval", higher_is_better=True)

    def __init__(self) -> None:
        self._embed: Embed | None = None
        self._classifier: EmbeddingClassifier | None = None
        self._check: dict = {"passed": False, "reason": "not checked"}
        self._judge: Any = None
        self._judge_check: dict = {"passed": False, "reason": "not checked"}

    def build_examples(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> RecipeOutput:
        return self.examples_from(training_posts(config, workspace), config)

    def examples_from(self, posts: Sequence[Post], config: DoctuneConfig) -> RecipeOutput:
        cfg = config.replies
        by_id = {p.post_id: p for p in posts if p.kind not in ("like", "boost", "bookmark")}
        examples: list[Example] = []
        errors: list[dict[str, str]] = []
        for post in posts:
            if post.kind != "reply" or not post.is_mine:
                continue
            if len(post.text.strip()) < cfg.min_reply_chars:
                errors.append({"unit_id": post.post_id, "reason": "reply has no text"})
                continue
            thread = thread_of(post, by_id, cfg.max_thread_posts)
            if thread is None:
                errors.append({"unit_id": post.post_id, "reason": "parent not resolved"})
                continue
            user = f"{format_thread(thread, cfg.max_context_chars)}\n\nReply to the last post as me."
            messages = [
                {"role": "system", "content": cfg.system_prompt},
                {"role": "user", "content": user},
                {"role": "assistant", "content": post.text.strip()},
            ]
            fields = RepliesFields(
                reply_id=post.post_id,
                parent_id=post.in_reply_to,
                thread_len=len(thread),
                created_at=post.created_at,
                language=post.language,
            )
            examples.append(self.example(post.post_id, post.conversation or post.post_id, messages, fields))
        stats = {"replies": len(examples) + len(errors), "usable": len(examples), "not_usable": len(errors)}
        log.info("replies examples: %d usable of %d replies", len(examples), stats["replies"])
        return RecipeOutput(examples=examples, errors=errors, stats=stats)

    def split_examples(self, examples: Sequence[Example], config: DoctuneConfig) -> dict[str, list[Example]]:
        return split_examples_by_time(examples, config.replies.eval_share)

    # -- evaluation -----------------------------------------------------------------------
    def prepare_eval(self, config: DoctuneConfig, workspace: Workspace, examples: Sequence[Example]) -> None:
        """Embedder for ``reply_similarity`` and the sounds-like-me classifier, from posts before the eval split."""
        from doctune.rank.baseline import BaselineError, workspace_embed

        self._embed = workspace_embed(config, workspace)
        self._open_judge(config, workspace, examples)
        eval_dates = [str(e.field_values().get("created_at", "")) for e in examples if e.split == "eval"]
        cut = min((d for d in eval_dates if d), default="")
        posts = workspace.read_rows("posts", Post, config)
        try:
            classifier = self.sounds_like_me_classifier(posts, cut, config, self._embed)
        except BaselineError as exc:
            self._check = {"passed": False, "reason": str(exc)}
            log.warning("sounds_like_me not scored: %s", exc)
            return
        self._check = self.check_classifier(classifier, posts, cut, config.replies.classifier_min_auc)
        if self._check["passed"]:
            self._classifier = classifier
        log.log(logging.INFO if self._check["passed"] else logging.WARNING, "sounds_like_me: %s", self._check["reason"])

    @staticmethod
    def check_classifier(classifier: EmbeddingClassifier, posts: Sequence[Post], cut: str, floor: float) -> dict:
        """The classifier's own check: ROC AUC on real posts written from ``cut`` on (held out from its training),
        my posts and replies vs other people's; it must reach ``floor`` before its scores mean anything."""
        from doctune.evaluate.likes import roc_auc

        held = [p for p in posts if p.resolved and p.text.strip() and p.created_at and p.created_at >= cut]
        mine = [p.text for p in held if p.is_mine and p.kind in ("post", "reply")]
        others = list({p.text for p in held if not p.is_mine and p.kind == "feed"})
        if len(mine) < 5 or len(others) < 5:
            return {"passed": False, "reason": f"too few held-out posts to check it ({len(mine)} mine, {len(others)})"}
        scores = [float(s) for s in classifier.predict(mine + others)]
        auc = roc_auc(scores, [1] * len(mine) + [0] * len(others))
        passed = auc >= floor
        reason = (
            f"classifier ROC AUC {auc:.3f} on {len(mine)} of my held-out posts vs {len(others)} of others' "
            f"({'passes' if passed else 'fails'} its floor {floor:.2f}{'' if passed else ': not scored'})"
        )
        return {"passed": passed, "auc": round(auc, 4), "mine": len(mine), "others": len(others), "reason": reason}

    def _open_judge(self, config: DoctuneConfig, workspace: Workspace, examples: Sequence[Example]) -> None:
        """The ``judge`` role, used only after it passed its check on held-out examples: my real reply to a thread
        judged yes (in my voice, fitting the thread), an assistant-style reply no (``open_checked_judge``)."""
        from doctune.evaluate.in_character import open_checked_judge

        self._judge, self._judge_check = open_checked_judge(config, workspace, examples, "eval")
        self._judge_check = {k: v for k, v in self._judge_check.items() if k != "cases"}
        log.log(
            logging.INFO if self._judge is not None else logging.WARNING,
            "judge_in_voice: %s",
            self._judge_check["reason"] + ("" if self._judge is not None else ": not scored"),
        )

    def extra_report(self, config, workspace, examples, entries, benches) -> dict:
        """The checks of the sounds-like-me classifier and of the judge, beside the scores they gave."""
        return {"sounds_like_me_check": self._check, "judge_check": self._judge_check}

    def sounds_like_me_classifier(
        self, posts: Sequence[Post], before: str, config: DoctuneConfig, embed: Embed
    ) -> EmbeddingClassifier:
        """Logistic regression: my posts and replies (1) vs other people's posts (0), written before ``before``."""
        from doctune.rank.baseline import BaselineError, EmbeddingClassifier

        def usable(p: Post) -> bool:
            return (
                p.resolved and bool(p.text.strip()) and (not before or (bool(p.created_at) and p.created_at < before))
            )

        mine = [p.text for p in posts if p.is_mine and p.kind in ("post", "reply") and usable(p)]
        others = list({p.text for p in posts if not p.is_mine and p.kind in ("feed",) and usable(p)})
        least = config.replies.classifier_min_posts
        if len(mine) < least or len(others) < least:
            raise BaselineError(f"{len(mine)} posts of mine and {len(others)} of others before the eval split")
        return EmbeddingClassifier(embed).fit(mine + others, [1] * len(mine) + [0] * len(others))

    def score_reply(self, example: Example, reply: str) -> dict[str, float]:
        scores = {"token_f1": token_f1(reply, example.target)}
        if self._embed is not None:
            from doctune.evaluate.metrics import embedding_similarity

            vecs = self._embed([reply or " ", example.target])
            scores["reply_similarity"] = float(embedding_similarity(vecs[:1], vecs[1:])[0])
        if self._classifier is not None:
            scores["sounds_like_me"] = float(self._classifier.predict([reply or " "])[0])
        if self._judge is not None:
            from doctune.evaluate.in_character import judge_in_character

            try:
                scores["judge_in_voice"] = float(judge_in_character(self._judge, example, reply))
            except Exception as exc:  # a failed judge call leaves this reply unjudged, never a guess
                log.warning("judge_in_voice: %s not judged: %s", example.example_id, exc)
        return scores
