"""chunk: documents -> the ``chunks`` artifact (sentence-boundary chunks between min and max size)."""

from __future__ import annotations

import logging
from functools import partial

from doctune.chunking import chunk_document
from doctune.config import DoctuneConfig
from doctune.jobs import map_items
from doctune.records import Chunk, Document
from doctune.stages import StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


def chunk_documents(docs: list[Document], config: DoctuneConfig, progress: bool = False) -> list[Chunk]:
    """Every document's chunks, in document order (each document one job of the shared runner)."""
    done = map_items(partial(chunk_document, cfg=config.chunk), docs, 1, "chunk", progress, [d.doc_id for d in docs])
    chunks: list[Chunk] = []
    for doc, result in zip(docs, done, strict=True):
        if result.error is not None:  # a bug in chunking, not bad input: the run stops and says where
            raise RuntimeError(f"chunk: {doc.source_path}: {type(result.error).__name__}: {result.error}")
        chunks.extend(result.value)
    return chunks


def preview(config: DoctuneConfig, workspace: Workspace, n: int) -> list[Chunk]:
    """The first ``n`` chunks the current config would produce; nothing is written."""
    docs = workspace.read_rows("documents", Document, config)
    out: list[Chunk] = []
    for doc in docs:
        out.extend(chunk_document(doc, config.chunk))
        if len(out) >= n:
            break
    return out[:n]


def run(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    docs = workspace.read_rows("documents", Document, config)
    run = workspace.start_run("chunk", config)
    chunks = chunk_documents(docs, config, progress)
    sizes = [c.n_chars for c in chunks]
    stats = {
        "min_chars": min(sizes, default=0),
        "max_chars": max(sizes, default=0),
        "mean_chars": round(sum(sizes) / len(sizes), 1) if sizes else 0,
        "below_min": sum(s < config.chunk.min_chars for s in sizes),
    }
    rec = run.write_artifact("chunks", chunks, Chunk, inputs=["documents"], stats=stats)
    return StageResult(
        stage="chunk",
        outputs={"chunks": str(workspace.root / rec.path)},
        counts={"documents": len(docs), "chunks": len(chunks)},
        stats=stats,
    )
