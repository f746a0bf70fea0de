"""curate report and curate map: what the dataset covers and leaks, and a picture of it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from doctune.config import DoctuneConfig
from doctune.curate.mapviz import MapPoint, project_2d, write_map_html
from doctune.curate.report import build_report
from doctune.records import Chunk, DatasetItem, Document
from doctune.stages import StageResult
from doctune.stages import curate as curate_stage
from doctune.workspace import StaleArtifactError, Workspace

log = logging.getLogger(__name__)
COLOR_BY = ("cluster", "split", "category", "dataset")


def run_report(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """Leakage (nearest train item of each eval item), coverage per document and chunk, distributions."""
    items = workspace.read_rows("dataset", DatasetItem, config)
    chunks = workspace.read_rows("chunks", Chunk, config)
    documents = workspace.read_rows("documents", Document, config)
    vectors, _ = curate_stage.embed_items(config, workspace, items, progress)
    report = build_report(items, vectors, chunks, documents, config.curate.leakage_threshold)
    path = curate_stage.reports_dir(workspace) / "report.json"
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    leak = report["leakage"]
    return StageResult(
        stage="curate report",
        outputs={"report": str(path)},
        counts={
            "items": len(items),
            "near_copies": leak["near_copies"],
            "uncited_chunks": len(report["coverage"]["uncited_chunks"]),
        },
        stats={"report": report},
    )


def _dataset_of(root: Path) -> list[DatasetItem]:
    """Another workspace's dataset, for overlaying (read as it is: its config is not ours)."""
    other = Workspace(root)
    try:
        return other.read_rows("dataset", DatasetItem)
    except StaleArtifactError as exc:
        raise StaleArtifactError(f"overlay {root}: {exc}") from None


def run_map(
    config: DoctuneConfig,
    workspace: Workspace,
    color_by: str = "cluster",
    overlays: list[Path] | None = None,
    progress: bool = True,
) -> StageResult:
    """A standalone HTML scatter of all items (mirror copies left out), optionally with other
    workspaces' datasets overlaid in the same projection."""
    if color_by not in COLOR_BY:
        raise ValueError(f"--color-by must be one of {', '.join(COLOR_BY)}")
    named = [(workspace.root.resolve().name, workspace.read_rows("dataset", DatasetItem, config))]
    named += [(Path(p).resolve().name, _dataset_of(Path(p))) for p in overlays or []]
    rows = [(name, item) for name, items in named for item in items if item.split != "mirror"]
    vectors, _ = curate_stage.embed_items(config, workspace, [item for _, item in rows], progress)
    xy = project_2d(vectors, config.curate.projection, config.curate.seed)
    points = [
        MapPoint(
            x=float(x),
            y=float(y),
            dataset=name,
            question=item.question,
            cluster=item.cluster_label or str(item.cluster),
            split=item.split,
            category=item.category,
        )
        for (name, item), (x, y) in zip(rows, xy, strict=True)
    ]
    path = write_map_html(
        points, curate_stage.reports_dir(workspace) / "map.html", color_by=color_by, title=f"{config.project}: items"
    )
    return StageResult(
        stage="curate map", outputs={"map": str(path)}, counts={"points": len(points), "datasets": len(named)}
    )


def run_all(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> list[StageResult]:
    """dedup -> cluster -> split -> report -> map (tagging is the separate `curate tag`)."""
    steps = (curate_stage.run_dedup, curate_stage.run_cluster, curate_stage.run_split, run_report, run_map)
    return [step(config, workspace, progress=progress) for step in steps]
