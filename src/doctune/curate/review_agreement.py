"""How reviewers agree: Cohen's kappa and the agreement report of the ``reviews`` artifact (``doctune curate reviews``).

Labels are accept (approve or edit) vs reject, on each reviewer's latest decision per item; each pair of reviewers
is compared on the items both reviewed, and each reviewer with the automatic verifier (``Review.verifier_accepts``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from doctune.records import Review
from doctune.workspace import Workspace

DECISIONS = ("approve", "reject", "edit")


def latest_reviews(reviews: Sequence[Review], by_reviewer: bool = False) -> dict[tuple[str, ...], Review]:
    """Latest review per item (per reviewer and item with ``by_reviewer``), by created_at then position."""
    ordered = sorted(enumerate(reviews), key=lambda pair: (pair[1].created_at, pair[0]))
    return {((r.reviewer, r.item_id) if by_reviewer else (r.item_id,)): r for _, r in ordered}


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None with fewer than 2 items. When chance agreement
    is certain (both raters always give the same one label) it is 1.0 if they agree, else 0.0."""
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} labels vs {len(b)}")
    n = len(a)
    if n < 2:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if expected >= 1.0 - 1e-12:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


def _label(review: Review) -> str:
    return "reject" if review.decision == "reject" else "accept"


def _agreement(a: list[str], b: list[str]) -> dict[str, Any]:
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / len(a) if a else None
    kappa = cohen_kappa(a, b)
    return {
        "n": len(a),
        "observed": None if observed is None else round(observed, 4),
        "kappa": None if kappa is None else round(kappa, 4),
    }


def agreement_report(reviews: Sequence[Review]) -> dict[str, Any]:
    """Agreement (accept = approve or edit, vs reject) between each pair of reviewers and of each reviewer with the
    verifier, on each reviewer's latest decision per item; totals per decision and the overrides."""
    latest: dict[str, dict[str, Review]] = {}
    for (reviewer, item_id), review in latest_reviews(reviews, by_reviewer=True).items():
        latest.setdefault(reviewer, {})[item_id] = review
    pairs = []
    for ra, rb in combinations(sorted(latest), 2):
        common = sorted(set(latest[ra]) & set(latest[rb]))
        a, b = [_label(latest[ra][i]) for i in common], [_label(latest[rb][i]) for i in common]
        pairs.append({"reviewers": [ra, rb], **_agreement(a, b)})
    verifier = []
    for name in sorted(latest):
        mine = list(latest[name].values())
        a = [_label(r) for r in mine]
        b = ["accept" if r.verifier_accepts else "reject" for r in mine]
        verifier.append({"reviewer": name, **_agreement(a, b), "overrides": sum(r.override for r in mine)})
    effective = {key[0]: r for key, r in latest_reviews(reviews).items()}
    return {
        "reviews": len(reviews),
        "items": len(effective),
        "reviewers": sorted(latest),
        "decisions": {d: sum(r.decision == d for r in reviews) for d in DECISIONS},
        "effective_decisions": {d: sum(r.decision == d for r in effective.values()) for d in DECISIONS},
        "overrides": sum(r.override for r in effective.values()),
        "per_recipe": dict(Counter(r.recipe for r in effective.values())),
        "pairs": pairs,
        "verifier": verifier,
    }


def write_agreement_report(workspace: Workspace, report: Mapping[str, Any]) -> Path:
    """Write ``report`` to ``reports/reviews.json`` in the workspace and return the path."""
    path = workspace.root / "reports" / "reviews.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return path
