"""The dataset map of the items a compare filter shows, coloured by regression / improvement / same.

Positions come from the ``embeddings`` artifact (one :class:`~doctune.records.ItemEmbedding` per curated item),
projected with :func:`doctune.curate.mapviz.project_2d`; the page is written by
:func:`~doctune.curate.mapviz.write_map_html` (plotly inlined: works offline) to
``reports/workbench/compare-map-<hash>.html``, the hash covering the report, the pair, the filters and the
embeddings, so the same view is drawn once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from doctune.serve.app import ServeContext

log = logging.getLogger(__name__)

MAP_FOLDER = "reports/workbench"
PALETTE = {"regression": "#c62828", "improvement": "#2e7d32", "same": "#9e9e9e"}


class MapError(Exception):
    """No map can be drawn for these items (no embeddings); the message says why."""


def _vectors(ctx: ServeContext) -> dict[str, list[float]]:
    path = ctx.workspace.artifact_path("embeddings")
    if not path.exists():
        return {}

    def build() -> dict[str, list[float]]:
        table = pq.read_table(path, columns=["item_id", "vector"])
        return dict(zip(table.column("item_id").to_pylist(), table.column("vector").to_pylist(), strict=True))

    return ctx.cached("embeddings", ctx.artifact_sha("embeddings"), build)


def map_key(params: Mapping[str, Any], ctx: ServeContext, report_mtime: float) -> str:
    payload = json.dumps({**params, "mtime": report_mtime, "emb": ctx.artifact_sha("embeddings")}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def write_compare_map(
    ctx: ServeContext, rows: Sequence[Mapping[str, Any]], key: str, title: str, split: str
) -> tuple[Path, int, int]:
    """Write (or reuse) the map of ``rows``; returns (path, points drawn, rows without an embedding)."""
    from doctune.curate.mapviz import MapPoint, project_2d, write_map_html

    out = ctx.workspace.root / MAP_FOLDER / f"compare-map-{key}.html"
    vectors = _vectors(ctx)
    chosen = [r for r in rows if r["item_id"] in vectors]
    missing = len(rows) - len(chosen)
    if not chosen:
        why = "the workspace has no embeddings artifact" if not vectors else "none of them has an embedding"
        raise MapError(f"no map for these {len(rows)} items: {why} (the map uses the curate stage's embeddings)")
    if out.exists():
        return out, len(chosen), missing
    xy = project_2d(np.asarray([vectors[r["item_id"]] for r in chosen], dtype=np.float64))
    points = [
        MapPoint(
            x=float(x),
            y=float(y),
            dataset=title,
            question=str(r["question"] or r["item_id"]),
            cluster=r["change"],
            split=split,
            category=str(r.get("category") or ""),
        )
        for r, (x, y) in zip(chosen, xy, strict=True)
    ]
    with ctx.lock:
        write_map_html(points, out, color_by="cluster", title=title, palette=PALETTE)
    log.info("compare map of %d items written to %s", len(points), out)
    return out, len(chosen), missing
