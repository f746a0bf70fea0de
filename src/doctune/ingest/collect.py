"""Collecting documents from files and folders: one bad file is reported, never fatal; duplicates are read once."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tqdm import tqdm

from doctune.config import IngestConfig
from doctune.ingest.readers import UnreadableFileError, read_document, reader_for, unsupported_format_reason
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
    files, errors = expand_paths(paths, cfg)
    documents: list[Document] = []
    first_path_of: dict[str, str] = {}
    for path in tqdm(files, desc="ingest", unit="file", disable=not progress):
        try:
            document = read_document(path, cfg)
        except UnreadableFileError as exc:
            errors.append(_error(path, exc.reason))
            continue
        except Exception as exc:  # one broken file must not stop the run
            logger.debug("unexpected error reading %s", path, exc_info=True)
            errors.append(_error(path, f"{type(exc).__name__}: {exc}"))
            continue
        if document.doc_id in first_path_of:
            logger.info("%s duplicates %s (same bytes); ingested once", path, first_path_of[document.doc_id])
            continue
        first_path_of[document.doc_id] = str(path)
        documents.append(document)
    logger.info("ingested %d documents, %d files could not be read", len(documents), len(errors))
    return documents, errors


def expand_paths(paths: list[Path], cfg: IngestConfig) -> tuple[list[Path], list[IngestError]]:
    """The files to read, in order and without repeats, and errors for paths that are missing or unsupported."""
    wanted = {ext.lower() if ext.startswith(".") else f".{ext.lower()}" for ext in cfg.extensions}
    files: list[Path] = []
    errors: list[IngestError] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for given in map(Path, paths):
        if given.is_dir():
            for found in _walk_folder(given):
                if found.suffix.lower() in wanted:
                    add(found)
        elif given.is_file():
            if reader_for(given) is None:
                errors.append(_error(given, unsupported_format_reason(given)))
            else:
                add(given)
        elif given.exists():
            errors.append(_error(given, "not a regular file"))
        else:
            errors.append(_error(given, "no such file or directory"))
    return files, errors


def _walk_folder(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirnames, filenames in os.walk(folder):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        found.extend(Path(root, name) for name in filenames if not name.startswith("."))
    return sorted(found)


def _error(path: Path, reason: str) -> IngestError:
    logger.warning("skipped %s: %s", path, reason)
    return IngestError(source_path=str(path), reason=reason)
