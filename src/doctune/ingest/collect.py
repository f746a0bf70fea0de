"""Collecting documents from files and folders: one bad file is reported, never fatal; duplicates are read once."""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path

from doctune.config import IngestConfig
from doctune.ingest.readers import UnreadableFileError, read_document, reader_for, unsupported_format_reason
from doctune.jobs import map_items
from doctune.records import Document, IngestError

logger = logging.getLogger(__name__)


def collect_documents(
    paths: list[Path], cfg: IngestConfig, progress: bool = False
) -> tuple[list[Document], list[IngestError]]:
    """Read every file named in ``paths`` or found under its folders; return the documents and the errors.

    Folders are walked recursively in sorted order and yield the files whose extension is in ``cfg.extensions``
    (hidden files and folders are skipped). Files named explicitly are always tried. Files with identical bytes
    (same ``doc_id``) become one document, the first one found; the others are logged at INFO level.
    """
    found, errors = expand_sources(paths, cfg)
    documents: list[Document] = []
    first_path_of: dict[str, str] = {}
    reads = map_items(partial(read_source, cfg=cfg), found, 1, "ingest", progress, keys=[label for _, label in found])
    for (_, label), read in zip(found, reads, strict=True):
        document, reason = read.value if read.error is None else (None, f"{type(read.error).__name__}: {read.error}")
        if document is None:
            errors.append(_error(label, reason or "unreadable"))
            continue
        if document.doc_id in first_path_of:
            logger.info("%s duplicates %s (same bytes); ingested once", label, first_path_of[document.doc_id])
            continue
        first_path_of[document.doc_id] = label
        documents.append(document)
    logger.info("ingested %d documents, %d files could not be read", len(documents), len(errors))
    return documents, errors


def read_source(source: tuple[Path, str], cfg: IngestConfig) -> tuple[Document | None, str | None]:
    """One file as a document named by its label, or ``(None, reason)``: a job of the shared runner (it may run on
    a Ray worker, so it returns the reason rather than raising)."""
    path, label = source
    try:
        return read_document(path, cfg).model_copy(update={"source_path": label}), None
    except UnreadableFileError as exc:
        return None, exc.reason
    except Exception as exc:  # one broken file must not stop the run
        logger.debug("unexpected error reading %s", path, exc_info=True)
        return None, f"{type(exc).__name__}: {exc}"


def expand_paths(paths: list[Path], cfg: IngestConfig) -> tuple[list[Path], list[IngestError]]:
    """The files to read, in order and without repeats, and errors for paths that are missing or unsupported."""
    found, errors = expand_sources(paths, cfg)
    return [path for path, _ in found], errors


def source_label(path: Path, root: Path) -> str:
    """How a file is named in artifacts: relative to the ingest root it was found under, starting with the root
    folder's own name (``docs/guide/a.md`` for ``/home/me/docs/guide/a.md`` found under ``/home/me/docs``); a file
    given directly is its file name. Never an absolute path: documents and their exports leave this machine."""
    if path == root:
        return path.name or str(path)
    rel = path.relative_to(root).as_posix()
    name = root.resolve().name
    return f"{name}/{rel}" if name else rel


def expand_sources(paths: list[Path], cfg: IngestConfig) -> tuple[list[tuple[Path, str]], list[IngestError]]:
    """``(file, source label)`` pairs to read, in order and without repeats (see :func:`source_label`), and errors
    for paths that are missing or unsupported."""
    wanted = {ext.lower() if ext.startswith(".") else f".{ext.lower()}" for ext in cfg.extensions}
    files: list[tuple[Path, str]] = []
    errors: list[IngestError] = []
    seen: set[Path] = set()

    def add(path: Path, root: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append((path, source_label(path, root)))

    for given in map(Path, paths):
        if given.is_dir():
            for found in _walk_folder(given):
                if found.suffix.lower() in wanted:
                    add(found, given)
        elif given.is_file():
            if reader_for(given) is None:
                errors.append(_error(source_label(given, given), unsupported_format_reason(given)))
            else:
                add(given, given)
        elif given.exists():
            errors.append(_error(source_label(given, given), "not a regular file"))
        else:
            errors.append(_error(source_label(given, given), "no such file or directory"))
    return files, errors


def _walk_folder(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirnames, filenames in os.walk(folder):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        found.extend(Path(root, name) for name in filenames if not name.startswith("."))
    return sorted(found)


def _error(label: str, reason: str) -> IngestError:
    logger.warning("skipped %s: %s", label, reason)
    return IngestError(source_path=label, reason=reason)
