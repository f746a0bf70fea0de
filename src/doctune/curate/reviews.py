"""Human review decisions: the ``reviews`` artifact, what curation does with it, and how reviewers agree.

A reviewer approves, rejects or edits one item: a QA item (artifacts ``dataset``, ``qa``, ``multihop``,
``rephrased``) or a recipe's ``Example`` (``examples_<recipe>`` / ``dataset_<recipe>``). :func:`record_review`
appends one :class:`~doctune.records.Review` row to the ``reviews`` artifact, with the automatic verifier's verdict
on the original (and on the edit), so that every decision that overrides the verifier is on record.

Curation honours the latest decision per item, whoever made it (:func:`effective_reviews`): a rejected item is
dropped (an error with reason ``rejected_by_reviewer``), an edited one is replaced by the edit, and an approved or
edited item is kept even when the verifier or a recipe check would drop it: the reviewer wins. ``dataset`` and every
``dataset_<recipe>`` read ``reviews`` when it exists, so a new decision makes them stale.

:func:`agreement_report` (in :mod:`doctune.curate.review_agreement`, exported here) compares reviewers with each other and with the verifier (accept = approve or edit, vs
reject): observed agreement and Cohen's kappa per pair.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq

from doctune.config import DoctuneConfig, dump_config
from doctune.curate.review_agreement import (
    DECISIONS,
    agreement_report,
    cohen_kappa,
    latest_reviews,
    write_agreement_report,
)
from doctune.grounding import AnswerSupport, DeterministicVerifier
from doctune.records import ChatMessage, DatasetItem, Example, QAItem, Review
from doctune.workspace import StageRun, Workspace

log = logging.getLogger(__name__)

REVIEWS_ARTIFACT = "reviews"
#: where QA items are looked up, in this order (``dataset`` first: the curated, possibly already edited, copy)
QA_ARTIFACTS = ("dataset", "qa", "multihop", "rephrased")
QA_FIELDS = ("question", "answer", "evaluation_criteria")
REJECTED = "rejected_by_reviewer"
#: the answer support the deterministic verifier requires; :func:`uncertainty` is the distance from it
SUPPORT_THRESHOLD = DeterministicVerifier().answer_support

_LOCK = threading.Lock()  # record_review is called from the workbench's worker threads


class ReviewError(Exception):
    """A decision that cannot be recorded (unknown item or decision, an edit that changes nothing, ...)."""


@dataclass
class ReviewTarget:
    """The reviewed item as found: its owner recipe, its kind (``qa`` or ``example``), the row and its artifact."""

    item_id: str
    recipe: str
    kind: str
    row: QAItem | Example
    artifact: str


# -- finding items --------------------------------------------------------------------------------------------------
def _find_row(workspace: Workspace, name: str, key: str, item_id: str) -> dict | None:
    """The first row of artifact ``name`` whose ``key`` is ``item_id``, read from the file (stale or not)."""
    path = workspace.artifact_path(name)
    if not path.exists() or key not in pq.read_schema(path).names:
        return None
    rows = pq.read_table(path, filters=[(key, "=", item_id)]).to_pylist()
    return rows[0] if rows else None


def _example_artifacts(workspace: Workspace) -> list[str]:
    names = sorted(workspace.manifest())
    datasets = [n for n in names if n.startswith("dataset_") and n != "dataset_qa"]  # dataset_qa mirrors dataset
    return datasets + [n for n in names if n.startswith("examples_")]


def find_item(workspace: Workspace, config: DoctuneConfig | None, item_id: str) -> ReviewTarget:
    """Find ``item_id`` among the QA artifacts, then every recipe's examples; raises :class:`ReviewError`."""
    for name in QA_ARTIFACTS:
        if (row := _find_row(workspace, name, "item_id", item_id)) is not None:
            model = DatasetItem if name == "dataset" else QAItem
            return ReviewTarget(item_id, "qa", "qa", model.model_validate(row), name)
    searched = list(QA_ARTIFACTS)
    for name in _example_artifacts(workspace):
        searched.append(name)
        if (row := _find_row(workspace, name, "example_id", item_id)) is not None:
            return ReviewTarget(item_id, name.split("_", 1)[1], "example", Example.model_validate(row), name)
    raise ReviewError(f"no item {item_id!r} in the workspace (looked in {', '.join(searched)})")


# -- editable fields and the verifier -------------------------------------------------------------------------------
def _turns(example: Example) -> tuple[int | None, int | None]:
    """(index of the last user message before the target, index of the target), None where missing."""
    roles = [m.role for m in example.messages]
    target = max((i for i, r in enumerate(roles) if r == "assistant"), default=None)
    end = len(roles) if target is None else target
    prompt = max((i for i, r in enumerate(roles[:end]) if r == "user"), default=None)
    return prompt, target


def editable_fields(target: ReviewTarget) -> dict[str, Any]:
    """What a reviewer may edit. QA: question, answer, evaluation_criteria; example: prompt (the last user message
    before the target), target (the assistant reply) and fields (the recipe's fields as a dict)."""
    row = target.row
    if isinstance(row, QAItem):
        return {name: getattr(row, name) for name in QA_FIELDS}
    prompt, answer = _turns(row)
    try:
        fields = row.field_values()
    except ValueError:
        fields = {}
    return {
        "prompt": "" if prompt is None else row.messages[prompt].content,
        "target": "" if answer is None else row.messages[answer].content,
        "fields": fields if isinstance(fields, dict) else {},
    }


def edited_example(example: Example, fields: Mapping[str, Any]) -> Example:
    """``example`` with the prompt, target and fields of ``fields`` (the shape of :func:`editable_fields`)."""
    messages = [m.model_copy() for m in example.messages]
    prompt, target = _turns(example)
    if target is None:
        messages.append(ChatMessage(role="assistant", content=""))
        target = len(messages) - 1
    if prompt is None and fields.get("prompt"):
        messages.insert(target, ChatMessage(role="user", content=""))
        prompt, target = target, target + 1
    if prompt is not None and "prompt" in fields:
        messages[prompt] = messages[prompt].model_copy(update={"content": fields["prompt"]})
    if "target" in fields:
        messages[target] = messages[target].model_copy(update={"content": fields["target"]})
    update: dict[str, Any] = {"messages": messages}
    if "fields" in fields:
        update["fields"] = json.dumps(fields["fields"], sort_keys=True, ensure_ascii=False)
    return example.model_copy(update=update)


def verify_target(
    target: ReviewTarget, fields: Mapping[str, Any], config: DoctuneConfig | None
) -> tuple[bool, str, str]:
    """(accepts, label, verdict as JSON) of the automatic verifier on ``target`` with ``fields``.

    QA: the deterministic grounding verifier on the item's citations (an item without citations is not accepted);
    examples: the owner recipe's checks."""
    row = target.row
    if isinstance(row, QAItem):
        quotes = [c.quote for c in row.citations]
        if not quotes:
            verdict = {"grounded": False, "reasons": ["no citations"], "detail": "the item cites nothing", "scores": {}}
            return False, "ungrounded: no citations", json.dumps(verdict)
        v = DeterministicVerifier().verify(fields["question"], fields["answer"], quotes, fields["evaluation_criteria"])
        label = "grounded" if v.grounded else "ungrounded: " + ", ".join(v.reasons)
        verdict = {"grounded": v.grounded, "reasons": v.reasons, "detail": v.detail, "scores": v.scores}
        return v.grounded, label, json.dumps(verdict)
    from doctune.recipes import UnknownRecipe, get_recipe

    try:
        recipe = get_recipe(target.recipe, config)
    except UnknownRecipe as exc:
        raise ReviewError(f"cannot check {target.item_id}: {exc} (is it in `recipes:` of the config?)") from None
    try:
        failed = recipe.check(edited_example(row, fields))
    except (KeyError, TypeError, ValueError) as exc:  # a recipe's own check tripping over edited fields
        failed = [f"check_error ({type(exc).__name__}: {exc})"]
    label = "passes" if not failed else "fails: " + ", ".join(failed)
    return not failed, label, json.dumps({"passes": not failed, "failed": failed})


def support_scores(items: Sequence[QAItem]) -> list[float]:
    """The verifier's answer support of each item (0 for items without citations), without the other checks:
    fast enough to order a review queue of 100k items."""
    support = AnswerSupport()
    return [
        round(support(i.question, i.answer, " ".join(c.quote for c in i.citations)), 3) if i.citations else 0.0
        for i in items
    ]


def uncertainties(items: Sequence[QAItem]) -> list[float]:
    """Distance of each item's answer support from the verifier's threshold: smaller is more uncertain."""
    return [round(abs(s - SUPPORT_THRESHOLD), 3) for s in support_scores(items)]


def uncertainty(target: ReviewTarget) -> float | None:
    """How close the verifier's decision on a QA item was (see :func:`uncertainties`); None for examples."""
    return uncertainties([target.row])[0] if isinstance(target.row, QAItem) else None


# -- recording ------------------------------------------------------------------------------------------------------
def _checked_edits(target: ReviewTarget, before: dict[str, Any], edits: Mapping[str, Any]) -> dict[str, Any]:
    """The editable fields after ``edits``; raises :class:`ReviewError` for unknown keys, bad values, no change."""
    unknown = sorted(set(edits) - set(before))
    if unknown:
        raise ReviewError(f"cannot edit {', '.join(unknown)} of a {target.kind} item (editable: {', '.join(before)})")
    after = dict(before)
    for key, value in edits.items():
        if value is None:
            continue
        if key == "fields":
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    raise ReviewError("fields must be a JSON object") from None
            if not isinstance(value, dict):
                raise ReviewError("fields must be a JSON object")
        elif not isinstance(value, str) or not value.strip():
            raise ReviewError(f"{key} must be a non-empty text")
        else:
            value = value.strip()
        after[key] = value
    if after == before:
        raise ReviewError(f"the edit of {target.item_id} changes nothing")
    return after


def _review_run(workspace: Workspace, config: DoctuneConfig) -> StageRun:
    """The day's review run: one run folder per UTC day, its config saved once."""
    run_id = f"{datetime.now(UTC):%Y%m%d}-review"
    run_dir = workspace.runs_dir / run_id
    if not (run_dir / "config.yaml").exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(dump_config(config), encoding="utf-8")
    return StageRun(workspace=workspace, stage="review", run_id=run_id, run_dir=run_dir, config=config)


def record_review(
    workspace: Workspace,
    config: DoctuneConfig,
    item_id: str,
    decision: str,
    reviewer: str,
    reason: str = "",
    edits: Mapping[str, Any] | None = None,
) -> Review:
    """Record one decision on one item in the ``reviews`` artifact and return it (thread-safe).

    ``edits`` (only with decision ``edit``) maps editable fields (:func:`editable_fields`) to new values."""
    decision = decision.strip().lower()
    if decision not in DECISIONS:
        raise ReviewError(f"unknown decision {decision!r}: use {', '.join(DECISIONS)}")
    reviewer = reviewer.strip()
    if not reviewer:
        raise ReviewError("a review needs a reviewer name")
    edits = {k: v for k, v in (edits or {}).items() if v is not None}
    if edits and decision != "edit":
        raise ReviewError(f"changed fields need the decision 'edit', not {decision!r}")
    target = find_item(workspace, config, item_id)
    before = editable_fields(target)
    if decision == "edit" and not edits:
        raise ReviewError(f"an edit needs at least one changed field ({', '.join(before)})")
    after_fields = _checked_edits(target, before, edits) if decision == "edit" else None
    if decision == "reject" and not reason.strip():
        log.info("review of %s: rejected without a reason (a reason helps whoever reads the dataset)", item_id)
    accepts, label, _ = verify_target(target, before, config)
    recheck, recheck_accepts = "", None
    if after_fields is not None:
        recheck_accepts, _, recheck = verify_target(target, after_fields, config)
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    after = json.dumps(after_fields, sort_keys=True, ensure_ascii=False) if after_fields is not None else ""
    digest = hashlib.sha256(json.dumps([item_id, reviewer, created_at, decision, after]).encode()).hexdigest()[:16]
    review = Review(
        review_id=digest,
        item_id=item_id,
        recipe=target.recipe,
        reviewer=reviewer,
        decision=decision,
        reason=reason.strip(),
        before=json.dumps(before, sort_keys=True, ensure_ascii=False),
        after=after,
        created_at=created_at,
        verifier=label,
        verifier_accepts=accepts,
        override=(decision == "reject") == accepts,
        recheck=recheck,
        recheck_accepts=recheck_accepts,
    )
    with _LOCK:
        rows = [*read_reviews(workspace), review]
        _review_run(workspace, config).write_artifact(REVIEWS_ARTIFACT, rows, Review)
    log.info("review %s: %s %s by %s (verifier: %s)", review.review_id, decision, item_id, reviewer, label)
    return review


def read_reviews(workspace: Workspace) -> list[Review]:
    """Every recorded review, oldest first (empty when there is none; never refuses for staleness)."""
    path = workspace.artifact_path(REVIEWS_ARTIFACT)
    if not path.exists():
        return []
    return [Review.model_validate(r) for r in pq.read_table(path).to_pylist()]


def effective_reviews(reviews: Sequence[Review]) -> dict[str, Review]:
    """item_id -> the latest decision on it, any reviewer (by created_at, then position)."""
    return {key[0]: r for key, r in latest_reviews(reviews).items()}


def curation_reviews(workspace: Workspace, config: DoctuneConfig, recipe: str) -> dict[str, Review] | None:
    """The effective reviews of ``recipe``'s items for a curation stage; None when there is no reviews artifact."""
    if REVIEWS_ARTIFACT not in workspace.manifest():
        return None
    rows = workspace.read_rows(REVIEWS_ARTIFACT, Review, config)
    return effective_reviews([r for r in rows if r.recipe == recipe])


__all__ = [
    "DECISIONS",
    "REJECTED",
    "REVIEWS_ARTIFACT",
    "ReviewError",
    "ReviewTarget",
    "agreement_report",
    "cohen_kappa",
    "curation_reviews",
    "editable_fields",
    "edited_example",
    "effective_reviews",
    "find_item",
    "read_reviews",
    "record_review",
    "support_scores",
    "uncertainties",
    "uncertainty",
    "verify_target",
    "write_agreement_report",
]
