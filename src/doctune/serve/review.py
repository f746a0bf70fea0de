"""Review: a queue of items ordered by the verifier's uncertainty, one item at a time, decided with the keyboard.

``/review`` shows the current item of the queue (filters as on /browse; unreviewed items only unless
``review=`` says otherwise), its citations highlighted, the verifier's verdict and what can be edited.
``POST /api/reviews`` records a decision (:func:`doctune.curate.reviews.record_review`); ``/review/agreement``
shows how reviewers agree with each other and with the verifier (Cohen's kappa).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from doctune.curate import reviews as rv
from doctune.serve.app import ServeContext, context
from doctune.serve.browse import item_detail, parse_filters
from doctune.serve.items import filter_items, item_index

log = logging.getLogger(__name__)
router = APIRouter()

QUEUE_FILTERS = ("recipe", "split", "outcome", "grounded", "difficulty", "category", "cluster", "review", "q")


class ReviewRequest(BaseModel):
    item_id: str
    decision: str
    reason: str = ""
    edits: dict[str, Any] | None = None
    reviewer: str = Field("", description="Who decides (default: the server's --reviewer).")


def queue_params(request: Request) -> dict[str, str]:
    """The queue's filters from the query (``review`` defaults to ``unreviewed``; ``review=`` means any)."""
    params = request.query_params
    out = {k: params[k] for k in QUEUE_FILTERS if k in params}
    out.setdefault("review", "unreviewed")
    out.update({k: v for k, v in params.items() if k.startswith("f.")})
    return out


def stale_notices(ctx: ServeContext) -> list[dict[str, str]]:
    """The curated datasets made stale by reviews, each with the command that brings it up to date."""
    out = []
    names = [n for n in ctx.workspace.manifest() if n == "dataset" or (n.startswith("dataset_") and n != "dataset_qa")]
    for name in sorted(names):
        state = ctx.workspace.freshness(name, ctx.config)
        if state.startswith("stale") and "'reviews'" in state:
            command = "doctune curate split" if name == "dataset" else f"doctune curate examples {name[8:]}"
            out.append({"artifact": name, "state": state, "command": command})
    return out


def _editable(target: rv.ReviewTarget) -> list[dict[str, Any]]:
    """The editable fields as textarea values (``fields`` of an example as indented JSON)."""
    out = []
    for name, value in rv.editable_fields(target).items():
        is_json = not isinstance(value, str)
        text = json.dumps(value, indent=2, ensure_ascii=False) if is_json else value
        out.append({"name": name, "text": text, "json": is_json})
    return out


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request) -> HTMLResponse:
    ctx = context(request)
    index = item_index(ctx)
    params = queue_params(request)
    filters = parse_filters(request.query_params.__class__(params))
    queue = filter_items(index, order="uncertainty", **filters)
    ids = queue["item_id"].tolist()
    wanted = request.query_params.get("item")
    pos = ids.index(wanted) if wanted in ids else 0
    current = wanted if wanted and wanted in index.where else (ids[0] if ids else None)
    if wanted and wanted not in ids and current == wanted:
        pos = -1  # shown although the filters leave it out (e.g. just reviewed)

    def url(item_id: str | None) -> str | None:
        return None if item_id is None else "/review?" + urlencode({**params, "item": item_id})

    following = ids[pos + 1] if pos + 1 < len(ids) else None
    if pos == -1 and ids:
        following = ids[0]
    values: dict[str, Any] = {
        "total": len(ids),
        "position": pos + 1,
        "params": params,
        "choices": index.choices,
        "field_choices": index.field_choices,
        "next_url": url(following),
        "prev_url": url(ids[pos - 1]) if pos > 0 else None,
        "reset_url": "/review?" + urlencode(params),
        "notices": stale_notices(ctx),
        "d": None,
    }
    if current is not None:
        values["d"] = item_detail(ctx, index, current)
        try:
            target = rv.find_item(ctx.workspace, ctx.config, current)
            values["editable"] = _editable(target)
            accepts, label, verdict = rv.verify_target(target, rv.editable_fields(target), ctx.config)
            values["verdict"] = {"accepts": accepts, "label": label, **json.loads(verdict)}
        except rv.ReviewError as exc:
            values["problem"] = str(exc)
    return ctx.render(request, "review.html", page="review", **values)


@router.post("/api/reviews")
def post_review(request: Request, body: ReviewRequest) -> dict[str, Any]:
    """Record a decision (approve | reject | edit) and return the review, its re-check parsed."""
    ctx = context(request)
    reviewer = body.reviewer.strip() or ctx.reviewer
    try:
        review = rv.record_review(
            ctx.workspace, ctx.config, body.item_id, body.decision, reviewer, reason=body.reason, edits=body.edits
        )
    except rv.ReviewError as exc:
        raise HTTPException(400, str(exc)) from None
    log.info("review: %s %s by %s", body.decision, body.item_id, reviewer)
    out = review.model_dump()
    out["recheck_verdict"] = json.loads(review.recheck) if review.recheck else None
    out["stale"] = stale_notices(ctx)
    return out


@router.get("/review/agreement", response_class=HTMLResponse)
def agreement_page(request: Request) -> HTMLResponse:
    ctx = context(request)
    report = rv.agreement_report(rv.read_reviews(ctx.workspace))
    return ctx.render(request, "review_agreement.html", page="review", report=report)


@router.get("/api/reviews/agreement")
def agreement_json(request: Request) -> dict[str, Any]:
    return rv.agreement_report(rv.read_reviews(context(request).workspace))
