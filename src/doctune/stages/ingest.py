"""ingest: files and folders -> the ``documents`` artifact (clean text with source offsets).

A file that cannot be read is reported with its reason in the manifest and ``doctune status``;
the other files go on. Identical files become one document.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from doctune.config import ConfigError, DoctuneConfig
from doctune.ingest.collect import collect_documents, expand_paths
from doctune.ingest.plays import parse_plays
from doctune.records import Document, Person, Speech
from doctune.stages import NothingUsable, StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


def run(
    config: DoctuneConfig,
    workspace: Workspace,
    paths: list[str] | None = None,
    progress: bool = True,
    as_kind: str | None = None,
) -> StageResult:
    """Ingest ``paths`` (or ``ingest.paths`` from the config) into ``documents``, and plays into ``speeches`` and
    ``persons`` (always written, possibly empty). ``as_kind``: ``play`` parses every md/txt document as a play,
    ``prose`` none; ``None`` detects plays when ``plays.detect`` is on."""
    if as_kind not in (None, "play", "prose"):
        raise ConfigError(f"ingest --as: expected play or prose, got {as_kind!r}")
    chosen = list(paths) if paths else documents_paths(config)
    if not chosen:
        raise ConfigError("nothing to ingest: give paths on the command line or set ingest.paths in the config")
    run = workspace.start_run("ingest", config)
    fingerprint = source_fingerprint(chosen, config)
    docs, errors = collect_documents([Path(p) for p in chosen], config.ingest, progress=progress)
    if not docs:
        skipped = "; ".join(f"{e.source_path}: {e.reason}" for e in errors[:3]) + ("; ..." if len(errors) > 3 else "")
        raise NothingUsable(
            f"ingest: no document could be read from {', '.join(chosen)}"
            + (f" ({len(errors)} skipped: {skipped})" if errors else " (no file with a supported extension)")
        )
    stats = {
        "paths": [Path(p).resolve().name or p for p in chosen],  # names only: the manifest holds no local path
        "chars": sum(d.n_chars for d in docs),
        "formats": _count_formats(docs),
        "fingerprint": fingerprint,
    }
    plays = parse_plays(docs, config.plays, as_kind)
    stats["plays"] = plays.report
    rec = run.write_artifact("documents", docs, Document, errors=errors, stats=stats)
    play_stats = {"plays": plays.report}
    speeches = run.write_artifact(
        "speeches", plays.speeches, Speech, inputs=["documents"], errors=plays.warnings, stats=play_stats
    )
    persons = run.write_artifact("persons", plays.persons, Person, inputs=["documents"], stats=play_stats)
    return StageResult(
        stage="ingest",
        outputs={
            name: str(workspace.root / r.path)
            for name, r in (("documents", rec), ("speeches", speeches), ("persons", persons))
        },
        counts={
            "documents": len(docs),
            "errors": len(errors),
            "speeches": len(plays.speeches),
            "persons": len(plays.persons),
        },
        errors=[e.model_dump() for e in errors + plays.warnings],
        stats={"plays": plays.report} if plays.report else {},
    )


def source_fingerprint(paths: list[str], config: DoctuneConfig) -> str:
    """A hash of the files ``paths`` expand to (name, size, modification time): a changed, added or removed
    source file changes it, so `doctune run` knows to ingest again."""
    files, _ = expand_paths([Path(p) for p in paths], config.ingest)
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _count_formats(docs: list[Document]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in docs:
        counts[d.format] = counts.get(d.format, 0) + 1
    return counts


def documents_paths(config: DoctuneConfig) -> list[str]:
    """``ingest.paths`` without the social archives (those go to ``posts``: :mod:`doctune.stages.social_ingest`)."""
    from doctune.ingest.social.detect import split_archives

    return split_archives([Path(p) for p in config.ingest.paths], None)[1]
