"""Models: the registry (status, current, labels, gate), one model's lineage, training curves, scores and gate, and
promotion / rollback by the same library calls as ``doctune models promote|rollback``.

* ``GET /models?LABEL=VALUE&gate=passed|failed|none``: the registry table, filtered like ``models list --label``.
* ``GET /models/{id}``: lineage (adapter -> dataset -> items -> chunks -> documents, each flagged unchanged or
  not), the training curves (an SVG drawn here from the logged losses), the metrics and the gate record.
* ``POST /api/models/{id}/promote`` ``{"force": bool}`` and ``POST /api/models/rollback``: :meth:`Registry.promote`
  (refuses a model without a passed gate unless forced, as the CLI does) and :meth:`Registry.rollback`; a
  :class:`RegistryError` answers 409 with its message.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from doctune.registry import Registry, RegistryError, lineage
from doctune.serve.app import context
from doctune.serve.models_data import (
    GATE_FILTERS,
    curve_svg,
    filter_entries,
    label_options,
    loss_series,
    model_row,
    training_history,
)

log = logging.getLogger(__name__)
router = APIRouter()


def _registry(request: Request) -> Registry:
    return Registry(context(request).workspace)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, gate: str = "") -> HTMLResponse:
    ctx = context(request)
    registry = _registry(request)
    error = None
    try:
        entries = registry.list_entries()
        current = registry.current()
    except RegistryError as exc:
        entries, current, error = [], None, str(exc)
    options = label_options(entries)
    wanted = {k: v for k in options if (v := request.query_params.get(k, "").strip())}
    gate = gate if gate in GATE_FILTERS else ""
    shown = filter_entries(entries, wanted, gate)
    current_id = current.id if current else None
    return ctx.render(
        request,
        "models.html",
        page="models",
        rows=[model_row(e, current_id) for e in reversed(shown)],
        total=len(entries),
        current=current_id,
        options=options,
        wanted=wanted,
        gate=gate,
        gate_filters=GATE_FILTERS,
        error=error,
    )


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_page(request: Request, model_id: str) -> HTMLResponse:
    ctx = context(request)
    registry = _registry(request)
    try:
        entry = registry.get(model_id)
        chain = lineage(entry.id, ctx.workspace)
        current = registry.current()
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None
    history, history_file = training_history(ctx.workspace, entry)
    gate_report = None
    if entry.gate and entry.gate.report:
        name = entry.gate.report.rsplit("/", 1)[-1]
        if (ctx.workspace.root / "reports" / name).is_file():
            gate_report = name
    return ctx.render(
        request,
        "models_detail.html",
        page="models",
        entry=entry,
        row=model_row(entry, current.id if current else None),
        lineage=chain,
        curve=curve_svg(loss_series(history)),
        history_file=history_file,
        metrics={k: v for k, v in entry.metrics.items() if not isinstance(v, dict | list)},
        nested={k: v for k, v in entry.metrics.items() if isinstance(v, dict | list)},
        gate_report=gate_report,
    )


class PromoteRequest(BaseModel):
    force: bool = False


def _refused(exc: RegistryError) -> HTTPException:
    return HTTPException(409, str(exc))


@router.post("/api/models/{model_id}/promote")
def promote(request: Request, model_id: str, body: PromoteRequest) -> dict[str, Any]:
    """Make a model current, as ``doctune models promote [--force]``."""
    ctx = context(request)
    with ctx.lock:
        try:
            entry = _registry(request).promote(model_id, force=body.force)
        except RegistryError as exc:
            raise _refused(exc) from None
    log.info("workbench: %s promoted %s%s", ctx.reviewer, entry.id, " (forced)" if body.force else "")
    return {"current": entry.id}


@router.post("/api/models/rollback")
def rollback(request: Request) -> dict[str, Any]:
    """Make the previous current model current again, as ``doctune models rollback``."""
    ctx = context(request)
    with ctx.lock:
        try:
            entry = _registry(request).rollback()
        except RegistryError as exc:
            raise _refused(exc) from None
    log.info("workbench: %s rolled back to %s", ctx.reviewer, entry.id)
    return {"current": entry.id}
