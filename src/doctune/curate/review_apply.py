"""Applying review decisions at curation: rejected items dropped, edits replacing the text, approved or edited items
kept whatever the verifier or the recipe's checks say (the reviewer wins). Used by ``curate split`` and
``curate examples``; decisions are recorded by :mod:`doctune.curate.reviews`."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from doctune.curate.reviews import QA_FIELDS, REJECTED, edited_example
from doctune.records import DatasetItem, Example, QAItem, Review

log = logging.getLogger(__name__)


# -- applying decisions ---------------------------------------------------------------------------------------------
def _rejected(review: Review) -> dict[str, str]:
    detail = f"{review.reviewer}: {review.reason}" if review.reason else review.reviewer
    return {"item_id": review.item_id, "unit_id": review.item_id, "reason": REJECTED, "detail": detail}


def _edited_item(item: DatasetItem, review: Review) -> DatasetItem:
    after = json.loads(review.after)
    update = {k: after[k] for k in QA_FIELDS if k in after}
    if update.get("question", item.question) != item.question:
        update["alt_question"] = None  # the other wording of the old question may ask something else now
    return item.model_copy(update=update)


def apply_reviews_to_items(
    items: list[DatasetItem], reviews: Mapping[str, Review], pool: Mapping[str, QAItem]
) -> tuple[list[DatasetItem], list[dict[str, str]]]:
    """(kept items, errors): rejected items dropped, edits applied, and approved or edited items of ``pool`` that
    ``items`` lacks (a dropped duplicate, ...) added back with cluster -1: the reviewer wins over the verifier."""
    kept: list[DatasetItem] = []
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in items:
        seen.add(item.item_id)
        review = reviews.get(item.item_id)
        if review is not None and review.decision == "reject":
            errors.append(_rejected(review))
        else:
            kept.append(_edited_item(item, review) if review is not None and review.decision == "edit" else item)
    for item_id, review in sorted(reviews.items()):
        if item_id in seen or review.decision == "reject" or item_id not in pool:
            continue
        found = pool[item_id]
        if isinstance(found, DatasetItem):
            base = found.model_copy(update={"split": "unassigned", "cluster": -1, "cluster_label": ""})
        else:
            source = found.kind if found.kind in ("qa", "multihop") else "qa"
            base = DatasetItem(**found.model_dump(), source=source, split="unassigned", cluster=-1)
        kept.append(_edited_item(base, review) if review.decision == "edit" else base)
        log.info("review: %s (%s by %s) added back to the dataset", item_id, review.decision, review.reviewer)
    return kept, errors


def apply_reviews_to_examples(
    examples: Sequence[Example], reviews: Mapping[str, Review]
) -> tuple[list[Example], list[dict[str, str]], set[str]]:
    """(kept examples, errors, vouched ids): rejected examples dropped, edits applied (prompt, target, fields);
    approved and edited examples are vouched for: the recipe's checks must not drop them."""
    kept: list[Example] = []
    errors: list[dict[str, str]] = []
    vouched: set[str] = set()
    for ex in examples:
        review = reviews.get(ex.example_id)
        if review is None:
            kept.append(ex)
            continue
        if review.decision == "reject":
            errors.append(_rejected(review))
            continue
        kept.append(edited_example(ex, json.loads(review.after)) if review.decision == "edit" else ex)
        vouched.add(ex.example_id)
    return kept, errors, vouched


def review_counts(reviews: Mapping[str, Review], before: set[str], kept: Sequence[Any], errors: list) -> dict[str, int]:
    """The counts a curation stage reports: rejected, edited and added back (in ``kept``, not in ``before``, the ids
    before the reviews were applied) by reviewers."""
    ids = [getattr(k, "item_id", None) or getattr(k, "example_id", "") for k in kept]
    return {
        "rejected by reviewer": sum(1 for e in errors if e.get("reason") == REJECTED),
        "edited by reviewer": sum(1 for i in set(ids) if i in reviews and reviews[i].decision == "edit"),
        "added back by reviewer": len(set(ids) - before),
    }
