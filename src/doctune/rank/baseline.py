"""The embedding + logistic-regression classifiers of the personal recipes.

:class:`EmbeddingClassifier` embeds texts with the configured embedder (``models.embedder``, vectors cached in
``cache/embeddings.sqlite``) and fits a scikit-learn logistic regression on them. It serves as the likes baseline
(:func:`train_like_baseline`: liked vs seen-but-not-liked, trained on the likes train split only) and as the
replies recipe's "sounds like me" classifier (my posts vs other people's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from doctune.records import Example

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)

Embed = Callable[[list[str]], np.ndarray]


class BaselineError(ValueError):
    """A classifier cannot be trained (e.g. one class only); the message says which and why."""


def workspace_embed(config: DoctuneConfig, workspace: Workspace) -> Embed:
    """A function embedding texts with ``models.embedder``, through the workspace's embedding cache."""
    from doctune.curate.embeddings import EmbeddingCache, create_embedder, embed_texts

    embedder = create_embedder(config.models.embedder)
    cache = EmbeddingCache(workspace.cache_dir / "embeddings.sqlite")

    def embed(texts: list[str]) -> np.ndarray:
        return embed_texts(embedder, list(texts), cache, batch_size=config.curate.batch_size)

    return embed


class EmbeddingClassifier:
    """Logistic regression on text embeddings; ``predict`` gives P(label 1) per text."""

    def __init__(self, embed: Embed, c: float = 1.0, seed: int = 0):
        self.embed = embed
        self.c = c
        self.seed = seed
        self.model = None

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], weights: Sequence[float] | None = None
    ) -> EmbeddingClassifier:
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(labels, dtype=int)
        if len(set(y.tolist())) < 2:
            raise BaselineError(f"cannot train a classifier on one class only ({len(y)} examples)")
        x = self.embed(list(texts))
        self.model = LogisticRegression(C=self.c, max_iter=1000, class_weight="balanced", random_state=self.seed)
        self.model.fit(x, y, sample_weight=None if weights is None else np.asarray(weights, dtype=float))
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        if self.model is None:
            raise BaselineError("the classifier is not trained")
        if not texts:
            return np.zeros(0)
        return self.model.predict_proba(self.embed(list(texts)))[:, 1]


def like_label(example: Example) -> int:
    return 1 if example.field_values().get("label") == "yes" else 0


def example_post_text(example: Example) -> str:
    """What the likes baseline sees of an example: its user turn (author and post, as the model sees it)."""
    return next((m.content for m in reversed(example.messages) if m.role == "user"), "")


def fit_like_baseline(train: Sequence[Example], embed: Embed, seed: int = 0) -> EmbeddingClassifier:
    """The likes baseline fitted on ``train`` (likes examples; ``fields.weight`` used when present)."""
    weights = [float(e.field_values().get("weight", 1.0)) for e in train]
    return EmbeddingClassifier(embed, seed=seed).fit(
        [example_post_text(e) for e in train], [like_label(e) for e in train], weights
    )


def likes_examples(config: DoctuneConfig, workspace: Workspace) -> list[Example]:
    """The likes examples with their split: ``dataset_likes`` when curated, else built from ``posts`` and split in
    time here (the same recipe code, so the baseline never needs a curation run)."""
    from doctune.recipes.likes import LikesRecipe

    if workspace.freshness("dataset_likes", config) == "fresh":
        return workspace.read_rows("dataset_likes", Example, config)
    recipe = LikesRecipe()
    built = recipe.build_examples(config, workspace, {}, progress=False)
    out = []
    for split, examples in recipe.split_examples(built.examples, config).items():
        out += [e.model_copy(update={"split": split}) for e in examples]
    return out


def train_like_baseline(
    config: DoctuneConfig, workspace: Workspace, embed: Embed | None = None
) -> tuple[EmbeddingClassifier, list[Example]]:
    """The likes baseline trained on the likes train split, and every likes example (to evaluate it on eval)."""
    examples = likes_examples(config, workspace)
    train = [e for e in examples if e.split == "train"]
    log.info("likes baseline: training on %d examples", len(train))
    model = fit_like_baseline(train, embed or workspace_embed(config, workspace), config.likes.seed)
    return model, examples
