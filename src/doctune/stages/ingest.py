"""ingest: files and folders -> the ``documents`` artifact (clean text with source offsets).

A file that cannot be read is reported with its reason in the manifest and ``doctune status``;
the other files go on. Identical files become one document.
"""

from __future__ import annotations

import logging
from pathlib import Path

from doctune.config import ConfigError, DoctuneConfig
from doctune.ingest.collect import collect_documents
from doctune.records import Document
from doctune.stages import StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


def run(
    config: DoctuneConfig, workspace: Workspace, paths: list[str] | None = None, progress: bool = True
) -> StageResult:
    """Ingest ``paths`` (or ``ingest.paths`` from the config) into ``documents``."""
    chosen = list(paths) if paths else list(config.ingest.paths)
    if not chosen:
        raise ConfigError("nothing to ingest: give paths on the command line or set ingest.paths in the config")
    run = workspace.start_run("ingest", config)
    docs, errors = collect_documents([Path(p) for p in chosen], config.ingest, progress=progress)
    rec = run.write_artifact(
        "documents",
        docs,
        Document,
        errors=errors,
        stats={"paths": chosen, "chars": sum(d.n_chars for d in docs), "formats": _count_formats(docs)},
    )
    return StageResult(
        stage="ingest",
        outputs={"documents": str(workspace.root / rec.path)},
        counts={"documents": len(docs), "errors": len(errors)},
        errors=[e.model_dump() for e in errors],
    )


def _count_formats(docs: list[Document]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in docs:
        counts[d.format] = counts.get(d.format, 0) + 1
    return counts
