"""ingest (code): local repositories or folders -> the ``code_units`` artifact (``doctune ingest --as code PATH``).

Every path is one repository (a single file counts as a repository of one file, named after its folder). Skipped
files (binary, too large, not UTF-8, not parsing) are reported one by one as errors with a reason; files of other
languages and the roles the ``code`` section leaves out (tests, vendored, generated) are counted in the stats.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from doctune.config import ConfigError, DoctuneConfig
from doctune.ingest.code.repo import scan_repository
from doctune.records import CodeUnit
from doctune.stages import NothingUsable, StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


def run(
    config: DoctuneConfig,
    workspace: Workspace,
    paths: list[str] | None = None,
    progress: bool = True,
) -> StageResult:
    """Read the repositories ``paths`` (default: ``ingest.paths``) into ``code_units``."""
    chosen = [str(p) for p in (paths or config.ingest.paths)]
    if not chosen:
        raise ConfigError("nothing to ingest: give the repository folder on the command line (ingest --as code DIR)")
    units: list[CodeUnit] = []
    errors: list[dict[str, str]] = []
    files_by_role: Counter[str] = Counter()
    files_by_language: Counter[str] = Counter()
    left_out: Counter[str] = Counter()
    repos: dict[str, str] = {}
    for p in chosen:
        path = Path(p)
        if not path.exists():
            errors.append({"source_path": p, "reason": "no such file or folder"})
            continue
        scan = scan_repository(path, config.code)
        units += scan.units
        errors += scan.errors
        files_by_role += scan.files_by_role
        files_by_language += scan.files_by_language
        left_out += scan.left_out
        repos[scan.repo] = scan.licence
    if not units:
        shown = "; ".join(f"{e['source_path']}: {e['reason']}" for e in errors[:3])
        raise NothingUsable(
            f"ingest: no code unit could be read from {', '.join(chosen)}" + (f" ({shown})" if shown else "")
        )
    units_by_kind = Counter(u.kind for u in units)
    stats = {
        "repositories": repos,  # repository name -> licence (SPDX id or "unknown")
        "files_by_role": dict(files_by_role),
        "files_by_language": dict(files_by_language),
        "units_by_kind": dict(units_by_kind),
        "left_out": dict(left_out),
        "errors": len(errors),
    }
    run_ = workspace.start_run("ingest", config)
    rec = run_.write_artifact("code_units", units, CodeUnit, errors=errors, stats=stats)
    counts = {"code units": len(units), "files": sum(files_by_role.values()), "errors": len(errors)}
    counts |= {f"kind {k}": v for k, v in sorted(units_by_kind.items())}
    counts |= {f"left out ({reason})": n for reason, n in sorted(left_out.items())}
    return StageResult(
        stage="ingest",
        outputs={"code_units": str(workspace.root / rec.path)},
        counts=counts,
        errors=errors,
        stats=stats,
    )
