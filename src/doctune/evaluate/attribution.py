"""Who said it: a speaker classifier trained on a play's real speeches, to attribute generated replies.

TF-IDF of word 1-2-grams and character 2-4-grams (within word boundaries) feeding a logistic regression with
balanced class weights, so a dominant speaker (Hamlet says a third of his play) does not win every doubtful reply.
It is trained on the real speeches of the training scenes only; its accuracy on the real speeches of the held-out
scenes is reported beside the chance levels (the majority class's share and 1/n) so an attribution rate can be
read against what the classifier can do at all.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from doctune.records import Speech

log = logging.getLogger(__name__)


def is_joint(speaker: str) -> bool:
    """A joint speech ("A/B", "ALL") has no single speaker to attribute."""
    return "/" in speaker or speaker.strip().upper() in {"ALL", "BOTH"}


def top_speakers(speeches: Iterable[Speech], n: int, include: Iterable[str] = ()) -> list[str]:
    """The ``n`` single speakers with most words, plus ``include`` (those that speak at all), most words first."""
    counts: Counter[str] = Counter()
    for s in speeches:
        if not is_joint(s.speaker):
            counts[s.speaker] += len(s.text.split())
    chosen = [name for name, _ in counts.most_common(n)]
    chosen += [name for name in include if name in counts and name not in chosen]
    return sorted(chosen, key=lambda name: (-counts[name], name))


class SpeakerClassifier:
    """Word and character n-gram TF-IDF + logistic regression over a fixed set of speakers."""

    def __init__(self, seed: int = 0):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        features = FeatureUnion(
            [
                ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
                ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2)),
            ]
        )
        clf = LogisticRegression(max_iter=2000, class_weight="balanced", C=3.0, random_state=seed)
        self.pipeline: Any = Pipeline([("features", features), ("clf", clf)])
        self.classes: list[str] = []

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> SpeakerClassifier:
        if len(set(labels)) < 2:
            raise ValueError(f"a speaker classifier needs at least 2 speakers, got {sorted(set(labels))}")
        self.pipeline.fit(list(texts), list(labels))
        self.classes = [str(c) for c in self.pipeline.classes_]
        return self

    def predict(self, texts: Sequence[str]) -> list[str]:
        if not texts:
            return []
        return [str(p) for p in self.pipeline.predict([t if t.strip() else "." for t in texts])]


def train_speaker_classifier(speeches: Sequence[Speech], speakers: Sequence[str], seed: int = 0) -> SpeakerClassifier:
    """A classifier of ``speakers`` trained on their ``speeches``."""
    wanted = set(speakers)
    rows = [s for s in speeches if s.speaker in wanted and s.text.strip()]
    return SpeakerClassifier(seed).fit([s.text for s in rows], [s.speaker for s in rows])


def chance_levels(labels: Sequence[str], n_classes: int) -> dict[str, float | None]:
    """``majority_share`` (always guessing the commonest true label) and ``uniform`` (1/n)."""
    if not labels:
        return {"majority_share": None, "uniform": 1 / n_classes if n_classes else None}
    return {"majority_share": Counter(labels).most_common(1)[0][1] / len(labels), "uniform": 1 / n_classes}


def balanced_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Mean over true classes of the share predicted right (chance: 1/n whatever the class sizes)."""
    by_class: dict[str, list[bool]] = {}
    for t, p in zip(truth, predicted, strict=True):
        by_class.setdefault(t, []).append(t == p)
    return sum(sum(v) / len(v) for v in by_class.values()) / len(by_class) if by_class else float("nan")
