"""Walk a code repository (a git repository or a plain folder) into :class:`~doctune.records.CodeUnit` rows.

Files come from ``git ls-files`` in a git repository (tracked and untracked-but-not-ignored), else from a walk that
skips ``.git``, ``node_modules``, ``__pycache__`` and ``.venv``. Each file is classified (source, test, vendored,
generated); binary files (a NUL byte in the first 8 KiB), files over ``code.max_file_bytes``, undecodable files and
files that do not parse are reported one by one with a reason; files of other languages are only counted. Every
unit carries the repository's licence (SPDX id read from its LICENSE/COPYING file) and paths relative to the
repository, never absolute ones.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from doctune.config_code import CodeConfig
from doctune.ingest.code import LANGUAGE_BY_SUFFIX, CodeSyntaxError, FileUnits
from doctune.ingest.code.python_units import python_units
from doctune.ingest.code.treesitter_units import treesitter_units
from doctune.records import CodeUnit

log = logging.getLogger(__name__)

WALK_SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv"}
VENDORED_DIRS = {"vendor", "third_party", "third-party", "node_modules", "site-packages", "_vendor"}
TEST_DIRS = {"tests", "test", "__tests__"}
TEST_NAMES = ("test_*.py", "*_test.py", "conftest.py", "*_test.go", "*.test.*", "*.spec.*")
GENERATED_NAMES = ("*_pb2.py", "*_pb2_grpc.py", "*.min.js", "*.pb.go")
#: a comment line saying the file is generated (Go's convention, and Facebook's at-sign "generated" tag); a string that merely
#: mentions the marker (in this very file, say) is not one
GENERATED_MARKERS = re.compile(r"^[ \t]*(#|//|/?\*)[^\n]*(Code generated .* DO NOT EDIT|@generated\b)", re.MULTILINE)
BINARY_PROBE_BYTES = 8192
MARKER_PROBE_BYTES = 4096


@dataclass
class RepoScan:
    """What reading one repository produced: units, per-file errors and counts."""

    repo: str
    licence: str
    units: list[CodeUnit] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    files_by_role: Counter[str] = field(default_factory=Counter)  # files whose units were read
    files_by_language: Counter[str] = field(default_factory=Counter)
    left_out: Counter[str] = field(default_factory=Counter)  # reason -> files counted, not reported one by one


def scan_repository(path: Path, config: CodeConfig) -> RepoScan:
    """Read the repository (or single file) at ``path`` into units; bad files are reported, the rest goes on."""
    root, files = (path.parent, [path.name]) if path.is_file() else (path, list_files(path))
    root = root.resolve()
    scan = RepoScan(repo=root.name, licence=detect_licence(root))
    for rel in sorted(files):
        if any(fnmatch.fnmatch(rel, pattern) for pattern in config.exclude):
            scan.left_out["excluded by code.exclude"] += 1
            continue
        _read_file(root, rel, config, scan)
    log.info(
        "%s: %d units from %d files (%s)", scan.repo, len(scan.units), sum(scan.files_by_role.values()), scan.licence
    )
    return scan


def list_files(root: Path) -> list[str]:
    """The files of ``root`` as relative POSIX paths: ``git ls-files`` in a git repository, else a walk."""
    tracked = _git_files(root)
    if tracked is not None:
        return [f for f in tracked if (root / f).is_file()]
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in WALK_SKIP_DIRS)
        base = Path(folder).relative_to(root)
        found += [(base / n).as_posix() for n in names]
    return found


def _git_files(root: Path) -> list[str] | None:
    """The tracked and untracked-but-not-ignored files under ``root``, or None when it is no git work tree."""
    try:
        inside = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True, timeout=30
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if listed.returncode != 0:
        return None
    names = listed.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted({n for n in names if n})


def classify_role(rel_path: str, head: str = "") -> str:
    """source | test | vendored | generated, from the path and (generated) the first bytes of the file."""
    p = PurePosixPath(rel_path)
    folders = {part.lower() for part in p.parts[:-1]}
    if folders & VENDORED_DIRS:
        return "vendored"
    if any(fnmatch.fnmatch(p.name, pattern) for pattern in GENERATED_NAMES) or GENERATED_MARKERS.search(head):
        return "generated"
    if folders & TEST_DIRS or any(fnmatch.fnmatch(p.name, pattern) for pattern in TEST_NAMES):
        return "test"
    return "source"


#: (SPDX id, pattern) in the order they are tried: the first that matches the licence text wins
LICENCE_PATTERNS: list[tuple[str, str]] = [
    ("Unlicense", r"free and unencumbered software released into the public domain"),
    ("LGPL-3.0", r"GNU LESSER GENERAL PUBLIC LICENSE\s+Version 3"),
    ("LGPL-2.1", r"GNU LESSER GENERAL PUBLIC LICENSE\s+Version 2\.1"),
    ("LGPL-2.0", r"GNU (LESSER|LIBRARY) GENERAL PUBLIC LICENSE"),
    ("GPL-3.0", r"GNU GENERAL PUBLIC LICENSE\s+Version 3"),
    ("GPL-2.0", r"GNU GENERAL PUBLIC LICENSE\s+Version 2"),
    ("Apache-2.0", r"Apache License,?\s+Version 2\.0"),
    ("MPL-2.0", r"Mozilla Public License,?\s+(Version|v\.)\s*2\.0"),
    ("PSF-2.0", r"PYTHON SOFTWARE FOUNDATION LICENSE"),
    ("ISC", r"Permission to use, copy, modify, and(/or)? distribute this software for any\s+purpose with or without"),
    ("BSD-3-Clause", r"Redistribution and use in source and binary forms[\s\S]*(Neither the name|names of its)"),
    ("BSD-2-Clause", r"Redistribution and use in source and binary forms"),
    ("MIT", r"Permission is hereby granted, free of charge|\bMIT License\b"),
]
LICENCE_FILE = re.compile(r"^(LICEN[CS]E|COPYING)([.-].*)?$", re.IGNORECASE)


def detect_licence(root: Path) -> str:
    """The SPDX id of the licence file at ``root`` (LICENSE, LICENSE.*, COPYING...), read by its text; or
    "unknown"."""
    try:
        candidates = sorted(p for p in root.iterdir() if p.is_file() and LICENCE_FILE.match(p.name))
    except OSError:
        return "unknown"
    for candidate in candidates:
        try:
            text = candidate.read_bytes()[:200_000].decode("utf-8", "replace")
        except OSError:
            continue
        spdx = licence_of_text(text)
        if spdx != "unknown":
            return spdx
    return declared_licence(root)


def declared_licence(root: Path) -> str:
    """The licence ``pyproject.toml`` declares (``project.license``, an SPDX expression or ``{text = ...}``), for a
    repository without a licence file; or "unknown"."""
    import tomllib

    try:
        declared = (
            tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("project", {}).get("license")
        )
    except (OSError, ValueError):
        return "unknown"
    if isinstance(declared, dict):
        declared = declared.get("text") or ""
    declared = str(declared or "").strip()
    return declared if declared and len(declared) <= 80 and "\n" not in declared else "unknown"


def licence_of_text(text: str) -> str:
    """The SPDX id a licence text is (see :data:`LICENCE_PATTERNS`), or "unknown"."""
    normal = " ".join(text.split())
    for spdx, pattern in LICENCE_PATTERNS:
        if re.search(pattern, normal, re.IGNORECASE):
            return spdx
    return "unknown"


def _read_file(root: Path, rel: str, config: CodeConfig, scan: RepoScan) -> None:
    language = LANGUAGE_BY_SUFFIX.get(PurePosixPath(rel).suffix.lower())
    if language is None:
        scan.left_out["unsupported language"] += 1
        return
    if language not in config.languages:
        scan.left_out[f"language {language} not in code.languages"] += 1
        return
    full = root / rel
    if full.is_symlink():
        scan.left_out["symbolic link"] += 1
        return
    try:
        size = full.stat().st_size
        if size > config.max_file_bytes:
            scan.errors.append(
                _error(scan, rel, f"too large: {size} bytes > code.max_file_bytes {config.max_file_bytes}")
            )
            return
        raw = full.read_bytes()
    except OSError as exc:
        scan.errors.append(_error(scan, rel, f"unreadable: {exc.strerror or exc}"))
        return
    if b"\0" in raw[:BINARY_PROBE_BYTES]:
        scan.errors.append(_error(scan, rel, "binary file (NUL byte in the first 8 KiB)"))
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        scan.errors.append(_error(scan, rel, f"not UTF-8 text (byte {exc.start})"))
        return
    role = classify_role(rel, text[:MARKER_PROBE_BYTES])
    if not _role_wanted(role, config):
        scan.left_out[f"role {role} (code.include_{'tests' if role == 'test' else role})"] += 1
        return
    try:
        found = python_units(text, rel) if language == "python" else treesitter_units(text, rel, language)
    except CodeSyntaxError as exc:
        scan.errors.append(_error(scan, rel, str(exc)))
        return
    scan.files_by_role[role] += 1
    scan.files_by_language[language] += 1
    scan.units += _rows(scan, rel, language, role, hashlib.sha256(raw).hexdigest(), found)


def _role_wanted(role: str, config: CodeConfig) -> bool:
    return {
        "test": config.include_tests,
        "vendored": config.include_vendored,
        "generated": config.include_generated,
    }.get(role, True)


def _rows(scan: RepoScan, rel: str, language: str, role: str, sha: str, found: FileUnits) -> list[CodeUnit]:
    rows = []
    seen: Counter[str] = Counter()
    for unit in found.units:
        key = f"{scan.repo}\n{rel}\n{unit.qualname}\n{unit.kind}"
        seen[key] += 1
        if seen[key] > 1:  # a second definition of the same name (a property setter, an if/else pair)
            key += f"\n{seen[key]}"
        rows.append(
            CodeUnit(
                unit_id=hashlib.sha256(key.encode()).hexdigest()[:16],
                repo=scan.repo,
                path=rel,
                language=language,
                kind=unit.kind,
                name=unit.name,
                qualname=unit.qualname,
                signature=unit.signature,
                docstring=unit.docstring,
                body=unit.body,
                imports=found.imports,
                line_start=unit.line_start,
                line_end=unit.line_end,
                licence=scan.licence,
                role=role,
                file_sha256=sha,
            )
        )
    return rows


def _error(scan: RepoScan, rel: str, reason: str) -> dict[str, str]:
    log.warning("%s/%s: %s", scan.repo, rel, reason)
    return {"source_path": f"{scan.repo}/{rel}", "reason": reason}
