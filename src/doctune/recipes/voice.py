"""The voice recipe: "Write a post about <topic>" -> one of my posts, from the ``posts`` artifact.

The topic is taken from the post itself, so it is right by construction: its hashtags first, then its words with
the highest TF-IDF over all my posts (``voice.topic_terms`` keywords; stop words and links left out). My posts are
``kind == "post"`` and ``is_mine`` with resolved text of at least ``voice.min_post_chars``. Split: by time.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from doctune.ingest.social.scrub import training_posts
from doctune.recipes.base import GateSpec, Recipe, RecipeOutput
from doctune.recipes.time_split import split_examples_by_time
from doctune.records import Example, Post

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)

_HASHTAG = re.compile(r"#(\w+)")
_WORD = re.compile(r"[^\W\d_][\w'-]{2,}")
_LINK = re.compile(r"https?://\S+|@\w+(@[\w.]+)?")
STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "that",
        "this",
        "with",
        "you",
        "are",
        "was",
        "were",
        "have",
        "has",
        "had",
        "not",
        "but",
        "all",
        "any",
        "can",
        "will",
        "just",
        "its",
        "it's",
        "from",
        "they",
        "them",
        "their",
        "there",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "how",
        "about",
        "into",
        "out",
        "more",
        "most",
        "some",
        "such",
        "than",
        "then",
        "too",
        "very",
        "our",
        "your",
        "his",
        "her",
        "she",
        "him",
        "one",
        "two",
        "get",
        "got",
        "also",
        "would",
        "could",
        "should",
        "been",
        "being",
        "over",
        "only",
        "own",
        "same",
        "here",
        "each",
        "few",
        "both",
        "did",
        "does",
        "doing",
        "don't",
        "i'm",
        "i've",
        "let's",
    ]
)


class VoiceFields(BaseModel):
    """The typed fields of a voice example."""

    model_config = ConfigDict(extra="forbid")

    post_id: str
    topic: str
    created_at: str


def _words(text: str) -> list[str]:
    text = _LINK.sub(" ", text)
    return [w.lower() for w in _WORD.findall(_HASHTAG.sub(" ", text)) if w.lower() not in STOP]


def topics(texts: Sequence[str], n_terms: int) -> list[str]:
    """A topic label per text: its hashtags, then its top TF-IDF words over ``texts`` ('' when none)."""
    docs = [_words(t) for t in texts]
    df = Counter(w for d in docs for w in set(d))
    out = []
    for text, words in zip(texts, docs, strict=True):
        tags = list(dict.fromkeys(t.lower() for t in _HASHTAG.findall(text)))[:n_terms]
        tf = Counter(words)
        ranked = sorted(tf, key=lambda w: (-tf[w] * math.log((1 + len(docs)) / (1 + df[w])), w))
        terms = tags + [w for w in ranked if w not in tags][: n_terms - len(tags)]
        out.append(", ".join(terms))
    return out


class VoiceRecipe(Recipe):
    """ "Write a post about <topic>" -> my post (see the module docstring)."""

    name = "voice"
    description = "Write a post about <topic, from the post itself> -> my post."
    inputs = ("posts",)
    config_sections = ("voice",)
    fields_model = VoiceFields
    metrics = ("perplexity",)
    gate = GateSpec(metric="perplexity", split="eval", higher_is_better=False)

    def build_examples(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> RecipeOutput:
        return self.examples_from(training_posts(config, workspace), config)

    def examples_from(self, posts: Sequence[Post], config: DoctuneConfig) -> RecipeOutput:
        cfg = config.voice
        mine, errors = [], []
        for post in posts:
            if post.kind != "post" or not post.is_mine:
                continue
            if not post.resolved or len(post.text.strip()) < cfg.min_post_chars:
                errors.append({"unit_id": post.post_id, "reason": f"post shorter than {cfg.min_post_chars} characters"})
                continue
            mine.append(post)
        examples = []
        for post, topic in zip(mine, topics([p.text for p in mine], cfg.topic_terms), strict=True):
            if not topic:
                errors.append({"unit_id": post.post_id, "reason": "no topic word in the post"})
                continue
            messages = [
                {"role": "system", "content": cfg.system_prompt},
                {"role": "user", "content": f"Write a post about {topic}."},
                {"role": "assistant", "content": post.text.strip()},
            ]
            fields = VoiceFields(post_id=post.post_id, topic=topic, created_at=post.created_at)
            examples.append(self.example(post.post_id, post.post_id, messages, fields))
        log.info("voice examples: %d of %d posts", len(examples), len(mine))
        return RecipeOutput(examples=examples, errors=errors, stats={"posts": len(mine), "usable": len(examples)})

    def split_examples(self, examples: Sequence[Example], config: DoctuneConfig) -> dict[str, list[Example]]:
        return split_examples_by_time(examples, config.voice.eval_share)
