"""Compare: the workspace's evaluation reports side by side, and base vs tuned answers item by item.

* ``GET /compare?a=REPORT&b=REPORT``: the reports (newest first); one or two of them summarized side by side (per
  model and split the metrics with their confidence intervals, the paired comparisons, the gate lines).
* ``GET /compare/items?report=&base=&tuned=&split=``: the items answered by both, paired, with verdicts and
  metrics; filters (regressions, improvements, category, difficulty, text) and server-side pages.
* ``POST /api/compare/map``: the dataset map of the filtered items, coloured by change (a file under
  ``reports/workbench/``, shown in an iframe through ``/files/``).
"""

from __future__ import annotations

import logging
import math
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from doctune.serve.app import context
from doctune.serve.compare_data import (
    CHANGES,
    ReportError,
    choices,
    filter_rows,
    item_rows,
    list_reports,
    load_report,
    report_path,
    summarize,
)
from doctune.serve.compare_map import MAP_FOLDER, MapError, map_key, write_compare_map

log = logging.getLogger(__name__)
router = APIRouter()

PER_PAGE = 20


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, a: str = "", b: str = "") -> HTMLResponse:
    ctx = context(request)
    reports = list_reports(ctx)
    names = [r["name"] for r in reports]
    chosen = [n for n in (a or (names[0] if names else ""), b) if n]
    shown, errors = [], []
    for name in dict.fromkeys(chosen):
        try:
            report = load_report(ctx, name)
        except ReportError as exc:
            errors.append(str(exc))
            continue
        summary = summarize(report)
        pairs = choices(report)
        links = []
        for tuned in pairs["tuned"]:
            for base in pairs["bases"][:1]:  # the report's baseline (eval) or each model's own base (recipe)
                if base == tuned:
                    continue
                for split in pairs["splits"] or [""]:
                    query = urlencode({"report": name, "base": base, "tuned": tuned, "split": split})
                    links.append({"label": f"{base} vs {tuned}" + (f" on {split}" if split else ""), "query": query})
        shown.append({"name": name, "summary": summary, "links": links})
    return ctx.render(
        request, "compare.html", page="compare", reports=reports, a=a or (names[0] if names else ""), b=b,
        shown=shown, errors=errors,
    )  # fmt: skip


def _params(request: Request) -> dict[str, str]:
    keys = ("report", "base", "tuned", "split", "change", "category", "difficulty", "q")
    return {k: request.query_params.get(k, "").strip() for k in keys}


def _resolve(ctx, params: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(report, paired rows, the choices) for the report, models and split asked (defaults filled in)."""
    report = load_report(ctx, params["report"])
    opts = choices(report)
    if not params["base"]:
        params["base"] = opts["bases"][0] if opts["bases"] else ""
    if not params["tuned"]:
        others = [m for m in opts["tuned"] if m != params["base"]]
        params["tuned"] = (others or opts["tuned"] or [""])[0]
    if not params["split"] and opts["splits"]:
        params["split"] = opts["splits"][0]
    rows = item_rows(ctx, report, params["base"], params["tuned"], params["split"])
    return report, rows, opts


@router.get("/compare/items", response_class=HTMLResponse)
def compare_items(request: Request, page: int = 1) -> HTMLResponse:
    ctx = context(request)
    params = _params(request)
    try:
        _report, rows, opts = _resolve(ctx, params)
    except ReportError as exc:
        raise HTTPException(404, str(exc)) from None
    if params["change"] not in ("", *CHANGES):
        params["change"] = ""
    shown = filter_rows(rows, params["change"], params["category"], params["difficulty"], params["q"])
    pages = max(1, math.ceil(len(shown) / PER_PAGE))
    page = min(max(1, page), pages)
    counts = {c: sum(r["change"] == c for r in rows) for c in CHANGES}

    def page_link(n: int) -> str:
        return "/compare/items?" + urlencode({**{k: v for k, v in params.items() if v}, "page": n})

    return ctx.render(
        request,
        "compare_items.html",
        page="compare",
        params=params,
        opts=opts,
        rows=shown[(page - 1) * PER_PAGE : page * PER_PAGE],
        total=len(rows),
        matched=len(shown),
        counts=counts,
        categories=sorted({r["category"] for r in rows if r["category"]}),
        difficulties=sorted({r["difficulty"] for r in rows if r["difficulty"] is not None}),
        page_no=page,
        n_pages=pages,
        prev_link=page_link(page - 1) if page > 1 else None,
        next_link=page_link(page + 1) if page < pages else None,
        changes=CHANGES,
    )


class MapRequest(BaseModel):
    report: str
    base: str = ""
    tuned: str = ""
    split: str = ""
    change: str = ""
    category: str = ""
    difficulty: str = ""
    q: str = ""


@router.post("/api/compare/map")
def compare_map(request: Request, body: MapRequest) -> dict[str, Any]:
    """Draw (or reuse) the map of the items the same filters show; answers the file's URL."""
    ctx = context(request)
    params = {k: str(v).strip() for k, v in body.model_dump().items()}
    try:
        _report, rows, _opts = _resolve(ctx, params)
    except ReportError as exc:
        raise HTTPException(404, str(exc)) from None
    shown = filter_rows(rows, params["change"], params["category"], params["difficulty"], params["q"])
    key = map_key(params, ctx, report_path(ctx, params["report"]).stat().st_mtime)
    title = f"{params['report']}: {params['base']} vs {params['tuned']}" + (
        f" on {params['split']}" if params["split"] else ""
    )
    try:
        path, points, missing = write_compare_map(ctx, shown, key, title, params["split"])
    except MapError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"url": f"/files/{MAP_FOLDER}/{path.name}", "points": points, "missing": missing}
