"""characters: the ``speeches`` (and ``persons``) artifacts -> a report on each play's characters.

Reads what ``doctune ingest`` wrote for plays and writes ``<workspace>/reports/characters/`` (``index.html``,
``characters.json`` and PNG plots, see :mod:`doctune.characters.report`). Writes no artifact.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from doctune.characters.report import write_report
from doctune.characters.stats import analyse
from doctune.config import DoctuneConfig
from doctune.records import Person, Speech
from doctune.stages import NothingUsable, StageResult
from doctune.workspace import StaleArtifactError, Workspace

log = logging.getLogger(__name__)

INGEST_HINT = "a play is ingested with `doctune ingest --as play PLAY.txt`"


def report_dir(workspace: Workspace) -> Path:
    """``<workspace>/reports/characters``."""
    return workspace.root / "reports" / "characters"


def _read_persons(config: DoctuneConfig, workspace: Workspace) -> list[Person]:
    """The ``persons`` rows when the artifact is there and fresh; ``[]`` otherwise (they only add descriptions)."""
    freshness = workspace.freshness("persons", config)
    if freshness == "missing":
        return []
    if freshness != "fresh":
        log.warning("characters: artifact 'persons' is %s: descriptions left out", freshness)
        return []
    return workspace.read_rows("persons", Person, config)


def run(config: DoctuneConfig, workspace: Workspace, progress: bool = True, top: int = 12) -> StageResult:
    """Per play: characters with speeches and words, words per act, who speaks after whom, distinctive words.

    ``top``: how many characters (most words first) the plots and per-act tables show; the character table and
    ``stats["plays"]`` list every speaker. ``progress`` is accepted for the stage interface (nothing is slow here).
    """
    if top < 1:
        raise ValueError("characters: --top must be at least 1")
    try:
        speeches = workspace.read_rows("speeches", Speech, config)
    except StaleArtifactError as exc:
        raise StaleArtifactError(f"characters: {exc}; {INGEST_HINT}") from None
    if not speeches:
        raise NothingUsable(f"characters: the speeches artifact holds no speech (no play was ingested); {INGEST_HINT}")
    persons = _read_persons(config, workspace)
    plays = analyse(speeches, persons)
    paths = write_report(plays, report_dir(workspace), top=top, title=f"{config.project}: characters")
    table = [
        {
            "play": p.play,
            "doc_id": p.doc_id,
            "speeches": p.speeches,
            "words": p.words,
            "characters": [asdict(c) for c in p.characters],
        }
        for p in plays
    ]
    return StageResult(
        stage="characters",
        outputs={"report": str(paths.html), "json": str(paths.json)},
        counts={
            "plays": len(plays),
            "speeches": len(speeches),
            "characters": sum(1 for p in plays for c in p.characters if c.speeches and not c.joint),
        },
        stats={"plays": table, "plots": sum(len(v) for v in paths.plots.values())},
    )
