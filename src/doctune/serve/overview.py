"""Overview: every artifact with rows, freshness and errors (what ``doctune status`` shows), outcomes per reason,
and the stages running in other processes, live (their progress files, :mod:`doctune.progress`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow.parquet as pq
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from doctune.progress import read_progress
from doctune.serve.app import ServeContext, context

router = APIRouter()


def outcome_counts(ctx: ServeContext) -> list[dict[str, Any]]:
    """Per artifact, how its units or inputs ended: the ``status`` column of ``*_outcomes`` artifacts and the reasons
    of each artifact's recorded errors (files that could not be read, examples dropped, ...)."""
    manifest = ctx.workspace.manifest()

    def build() -> list[dict[str, Any]]:
        rows = []
        for name, rec in sorted(manifest.items()):
            counts: Counter[str] = Counter()
            if name.endswith("_outcomes"):
                path = ctx.workspace.artifact_path(name)
                if path.exists():
                    counts.update(pq.read_table(path, columns=["status"]).column("status").to_pylist())
            for err in rec.errors:
                counts[str(err.get("reason") or err.get("status") or "error").split(":")[0]] += 1
            for reason, n in (rec.stats.get("dropped") or {}).items() if isinstance(rec.stats, dict) else ():
                if isinstance(n, int):
                    counts[f"dropped: {reason}"] += n
            if counts:
                rows.append({"artifact": name, "counts": counts.most_common()})
        return rows

    return ctx.cached("outcomes", tuple((n, r.sha256) for n, r in sorted(manifest.items())), build)


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request) -> HTMLResponse:
    ctx = context(request)
    entries = ctx.workspace.status(ctx.config)
    return ctx.render(
        request,
        "overview.html",
        page="overview",
        entries=entries,
        outcomes=outcome_counts(ctx),
        progress=read_progress(ctx.workspace.root),
    )


@router.get("/api/status")
def status_json(request: Request) -> list[dict[str, Any]]:
    ctx = context(request)
    return [{k: e[k] for k in ("name", "rows", "freshness", "stage", "created_at")} | {"errors": len(e["errors"])}
            for e in ctx.workspace.status(ctx.config)]  # fmt: skip


@router.get("/api/progress")
def progress_json(request: Request) -> list[dict[str, Any]]:
    """The progress of stages running (or recently finished) in any process on this workspace."""
    return read_progress(context(request).workspace.root)
