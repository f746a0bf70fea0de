"""Browse: documents -> chunks -> items, and the items table with filters, search and pages.

Routes: ``/browse`` (the items table), ``/browse/documents``, ``/browse/documents/{doc_id}`` (``?item=ID``
highlights that item's citations), ``/browse/chunks/{chunk_id}``, ``/browse/items/{item_id}`` and the JSON
``/api/items``. Highlights are lists of ``(text, highlighted)`` segments that the templates escape piece by piece.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import QueryParams

from doctune.serve.app import ServeContext, context
from doctune.serve.items import ItemIndex, filter_items, item_index

log = logging.getLogger(__name__)
router = APIRouter()

FILTERS = ("recipe", "split", "outcome", "grounded", "difficulty", "category", "cluster", "review")
FIELD_PREFIX = "f."


# -- pages of items ---------------------------------------------------------------------------
TABLE_COLUMNS = (
    "item_id", "recipe", "kind", "prompt", "answer", "doc_ids", "chunk_ids", "difficulty", "category", "cluster",
    "cluster_label", "split", "grounded", "grounding", "outcome", "review", "uncertainty",
)  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (the table columns and every ``field.*`` column; NaN -> None)."""
    cols = [*TABLE_COLUMNS, *(c for c in frame.columns if c.startswith("field."))]
    return [{k: _plain(v) for k, v in zip(cols, row, strict=True)} for row in frame[cols].itertuples(index=False)]


def page(frame: pd.DataFrame, page: int = 1, per_page: int = 50) -> dict[str, Any]:
    """One page of ``frame``: {total, page, per_page, pages, items}."""
    per_page = max(1, min(int(per_page), 500))
    total = len(frame)
    pages = max(1, -(-total // per_page))
    page = max(1, min(int(page), pages))
    rows = frame.iloc[(page - 1) * per_page : page * per_page]
    return {"total": total, "page": page, "per_page": per_page, "pages": pages, "items": records(rows)}


# -- documents, chunks, speeches --------------------------------------------------------------
def _rows(ctx: ServeContext, name: str, key: str) -> dict[str, dict[str, Any]]:
    """An artifact's rows by ``key`` (cached per content); {} when it is missing."""

    def build() -> dict[str, dict[str, Any]]:
        path = ctx.workspace.artifact_path(name)
        if not path.exists():
            return {}
        return {r[key]: r for r in pq.read_table(path).to_pylist()}

    return ctx.cached(f"rows:{name}", ctx.artifact_sha(name), build)


def documents(ctx: ServeContext) -> dict[str, dict[str, Any]]:
    return _rows(ctx, "documents", "doc_id")


def chunks(ctx: ServeContext) -> dict[str, dict[str, Any]]:
    return _rows(ctx, "chunks", "chunk_id")


def speeches(ctx: ServeContext) -> dict[str, dict[str, Any]]:
    return _rows(ctx, "speeches", "speech_id")


def segments(text: str, spans: list[tuple[int, int]], offset: int = 0) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, highlighted) at ``spans`` (offsets in the document; ``offset`` is where ``text``
    starts in it). Overlapping spans merge; spans outside ``text`` are ignored."""
    cuts = sorted((max(0, s - offset), min(len(text), e - offset)) for s, e in spans)
    merged: list[list[int]] = []
    for s, e in cuts:
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, pos = [], 0
    for s, e in merged:
        if s > pos:
            out.append((text[pos:s], False))
        out.append((text[s:e], True))
        pos = e
    if pos < len(text) or not out:
        out.append((text[pos:], False))
    return out


# -- one item ---------------------------------------------------------------------------------
def review_history(ctx: ServeContext, item_id: str) -> list[Any]:
    try:
        from doctune.curate.reviews import read_reviews
    except ImportError:
        return []
    return [r for r in read_reviews(ctx.workspace) if r.item_id == item_id]


def declared_fields(ctx: ServeContext, recipe: str, values: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(name, description, value) for each field the recipe's schema declares (the stored ones if it cannot load)."""
    try:
        from doctune.recipes import get_recipe

        model_fields = get_recipe(recipe, ctx.config).fields_model.model_fields
    except Exception:
        return [(k, "", v) for k, v in values.items()]
    return [(name, info.description or "", values.get(name)) for name, info in model_fields.items()]


def item_detail(ctx: ServeContext, index: ItemIndex, item_id: str) -> dict[str, Any]:
    """Everything a page shows of one item: its index row, the full record, fields, messages, highlighted sources."""
    found = index.row(item_id)
    if found is None:
        raise HTTPException(404, f"no item {item_id!r} in this workspace")
    artifact, record = found
    row = records(index.frame[index.frame["item_id"] == item_id])[0]
    detail: dict[str, Any] = {"row": row, "record": record, "artifact": artifact, "sources": [], "messages": []}
    docs, chunk_rows = documents(ctx), chunks(ctx)
    if "citations" in record:  # a QA item: its citations in each cited chunk
        detail["citations"] = record.get("citations") or []
        spans_by_chunk: dict[str, list[tuple[int, int]]] = {}
        for c in detail["citations"]:
            spans_by_chunk.setdefault(c["chunk_id"], []).append((c["char_start"], c["char_end"]))
        for cid in record.get("chunk_ids") or []:
            chunk = chunk_rows.get(cid)
            if chunk is None:
                continue
            detail["sources"].append(
                {
                    "kind": "chunk",
                    "id": cid,
                    "doc_id": chunk["doc_id"],
                    "title": docs.get(chunk["doc_id"], {}).get("title", chunk["doc_id"]),
                    "segments": segments(chunk["text"], spans_by_chunk.get(cid, []), chunk["char_start"]),
                }
            )
        detail["fields"] = [
            (k, "", record.get(k))
            for k in ("evaluation_criteria", "difficulty", "category", "reasoning", "source_item_id", "model")
            if record.get(k) not in (None, "")
        ]
    else:  # an Example: its messages, its declared fields, and its source span when it is a speech
        detail["messages"] = record.get("messages") or []
        values = json.loads(record.get("fields") or "{}")
        detail["fields"] = declared_fields(ctx, row["recipe"], values)
        detail["citations"] = []
        speech = speeches(ctx).get(record.get("unit_id", ""))
        doc = docs.get(speech["doc_id"]) if speech else None
        if speech and doc:
            lo, hi = max(0, speech["char_start"] - 400), min(len(doc["text"]), speech["char_end"] + 200)
            span = (speech["char_start"], speech["char_end"])
            detail["sources"].append(
                {
                    "kind": "speech",
                    "span": span,
                    "id": speech["speech_id"],
                    "doc_id": doc["doc_id"],
                    "title": doc["title"],
                    "segments": segments(doc["text"][lo:hi], [span], lo),
                }
            )
    detail["history"] = review_history(ctx, item_id)
    return detail


# -- query parameters -------------------------------------------------------------------------
def parse_filters(params: QueryParams) -> dict[str, Any]:
    """The filter keyword arguments of :func:`filter_items` from query parameters (``f.<field>=`` for fields)."""
    out: dict[str, Any] = {k: params.get(k) or None for k in FILTERS}
    for key in ("difficulty", "cluster"):
        if out[key] is not None and not out[key].lstrip("-").isdigit():
            out[key] = None
    out["q"] = params.get("q") or None
    out["fields"] = {k[len(FIELD_PREFIX) :]: v for k, v in params.items() if k.startswith(FIELD_PREFIX) and v}
    return out


def _int(params: QueryParams, key: str, default: int) -> int:
    value = params.get(key, "")
    return int(value) if value.isdigit() else default


@router.get("/api/items")
def items_json(request: Request) -> dict[str, Any]:
    """The items matching the filters (same query parameters as /browse), one page: {total, page, per_page, items}."""
    ctx, params = context(request), request.query_params
    index = item_index(ctx)
    order = "uncertainty" if params.get("order") == "uncertainty" else "id"
    frame = filter_items(index, order=order, **parse_filters(params))
    return page(frame, _int(params, "page", 1), _int(params, "per_page", 50))


@router.get("/browse", response_class=HTMLResponse)
def browse_page(request: Request) -> HTMLResponse:
    ctx, params = context(request), request.query_params
    index = item_index(ctx)
    filters = parse_filters(params)
    order = "uncertainty" if params.get("order") == "uncertainty" else "id"
    result = page(filter_items(index, order=order, **filters), _int(params, "page", 1), _int(params, "per_page", 50))
    base = [(k, v) for k, v in params.multi_items() if k != "page"]
    return ctx.render(
        request,
        "browse.html",
        page="browse",
        result=result,
        filters=filters,
        params=params,
        order=order,
        choices=index.choices,
        field_choices=index.field_choices,
        base_query=base,
        n_items=len(index.frame),
    )


@router.get("/browse/documents", response_class=HTMLResponse)
def documents_page(request: Request) -> HTMLResponse:
    ctx = context(request)
    index = item_index(ctx)
    n_chunks = Counter(c["doc_id"] for c in chunks(ctx).values())
    n_items = Counter(d for ids in index.frame["doc_ids"] for d in set(ids.split()))
    docs = [
        {"doc_id": d["doc_id"], "title": d["title"], "source_path": d["source_path"], "n_chars": d["n_chars"],
         "chunks": n_chunks[d["doc_id"]], "items": n_items[d["doc_id"]]}
        for d in documents(ctx).values()
    ]  # fmt: skip
    return ctx.render(request, "browse_documents.html", page="browse", docs=docs)


@router.get("/browse/documents/{doc_id}", response_class=HTMLResponse)
def document_page(request: Request, doc_id: str, item: str | None = None) -> HTMLResponse:
    ctx = context(request)
    doc = documents(ctx).get(doc_id)
    if doc is None:
        raise HTTPException(404, f"no document {doc_id!r}")
    spans: list[tuple[int, int]] = []
    if item:
        detail = item_detail(ctx, item_index(ctx), item)
        spans = [(c["char_start"], c["char_end"]) for c in detail["citations"] if c["doc_id"] == doc_id]
        spans += [s["span"] for s in detail["sources"] if s.get("span") and s["doc_id"] == doc_id]
    doc_chunks = sorted((c for c in chunks(ctx).values() if c["doc_id"] == doc_id), key=lambda c: c["index"])
    return ctx.render(
        request,
        "browse_document.html",
        page="browse",
        doc=doc,
        item=item,
        segments=segments(doc["text"], spans),
        chunks=doc_chunks,
    )


@router.get("/browse/chunks/{chunk_id}", response_class=HTMLResponse)
def chunk_page(request: Request, chunk_id: str) -> HTMLResponse:
    ctx = context(request)
    chunk = chunks(ctx).get(chunk_id)
    if chunk is None:
        raise HTTPException(404, f"no chunk {chunk_id!r}")
    index = item_index(ctx)
    made = records(filter_items(index, chunk_id=chunk_id))
    doc = documents(ctx).get(chunk["doc_id"], {})
    return ctx.render(request, "browse_chunk.html", page="browse", chunk=chunk, doc=doc, items=made)


@router.get("/browse/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: str) -> HTMLResponse:
    ctx = context(request)
    detail = item_detail(ctx, item_index(ctx), item_id)
    return ctx.render(request, "browse_item.html", page="browse", d=detail)
