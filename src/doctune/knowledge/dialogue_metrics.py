"""Metrics of brainstorming dialogues: share of verified claims, turns per dialogue, persona distinctness."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doctune.knowledge.dialogue import Dialogue, Turn

log = logging.getLogger(__name__)

#: most cross-validation folds of the persona classifier
MAX_FOLDS = 5


def claim_counts(dialogues: Sequence[Dialogue], removed_turns: Sequence[Turn] = ()) -> tuple[int, int]:
    """(verified claims, all claims) in the turns of ``dialogues`` and in ``removed_turns``."""
    claims = [c for d in dialogues for t in d.turns for c in t.claims] + [c for t in removed_turns for c in t.claims]
    return sum(1 for c in claims if c.verified), len(claims)


def verified_claim_share(dialogues: Sequence[Dialogue], removed_turns: Sequence[Turn] = ()) -> float:
    """Verified claims / all claims in the dialogues' turns, and in ``removed_turns`` when the caller passes them
    (the turns a one_call reply lost to an unverified claim: without them the share of kept turns is 1.0 by
    construction). 0.0 when there is no claim at all."""
    verified, total = claim_counts(dialogues, removed_turns)
    return round(verified / total, 4) if total else 0.0


def turns_per_dialogue(dialogues: Sequence[Dialogue]) -> dict[str, float]:
    """Mean, least and most turns of a dialogue (zeros without dialogues)."""
    counts = [len(d.turns) for d in dialogues]
    if not counts:
        return {"mean": 0.0, "min": 0, "max": 0}
    return {"mean": round(sum(counts) / len(counts), 2), "min": min(counts), "max": max(counts)}


def persona_distinctness(dialogues: Sequence[Dialogue], seed: int = 0) -> dict[str, Any]:
    """How well a persona can be told from its words: the cross-validated accuracy of a classifier (TF-IDF of word
    1-2-grams and character 2-4-grams, logistic regression, stratified folds) that predicts each turn's speaker from
    its text, beside chance (the share of the most frequent speaker). Personas with fewer than two turns are left
    out; with fewer than two personas left the accuracy is None, with the reason.

    For the span strategy the turns are built from a fixed bank of phrasings per persona (the novice asks, the
    sceptic doubts, the assistant quotes the document), so the accuracy is high by construction: it measures the
    templates, not the model. It says more for one_call dialogues, whose turns the model writes."""
    texts = [t.text for d in dialogues for t in d.turns]
    labels = [t.speaker for d in dialogues for t in d.turns]
    counts = Counter(labels)
    kept = {label for label, n in counts.items() if n >= 2}
    pairs = [(x, y) for x, y in zip(texts, labels, strict=True) if y in kept]
    n = len(pairs)
    folds = min([MAX_FOLDS, *(counts[label] for label in kept)]) if kept else 0
    if len(kept) < 2 or folds < 2:
        reason = f"{len(kept)} persona(s) with at least two turns ({n} turns): nothing to tell apart"
        return {"accuracy": None, "chance": None, "n": n, "folds": 0, "reason": reason}
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import FeatureUnion, make_pipeline

    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)),
        ]
    )
    model = make_pipeline(features, LogisticRegression(max_iter=1000))
    x, y = [p[0] for p in pairs], [p[1] for p in pairs]
    chance = max(Counter(y).values()) / n
    try:
        scores = cross_val_score(model, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    except ValueError as exc:  # e.g. turns with no word at all
        return {"accuracy": None, "chance": round(chance, 4), "n": n, "folds": folds, "reason": str(exc)}
    return {
        "accuracy": round(float(scores.mean()), 4),
        "chance": round(chance, 4),
        "n": n,
        "folds": folds,
        "personas": sorted(kept),
    }
