"""Ownership of output folders: doctune only deletes or overwrites what it created itself.

doctune writes the marker file ``.doctune-owned`` (a line of JSON: who wrote it and when, no paths) into
every output folder it creates: the export folder and its ``qa/``, ``chunks/``, ``raw/``, ``chat/`` and
``alpaca/``, and the ``adapter/`` and ``merged/`` folders of ``export-model`` (plus the folder above them
when doctune creates it). A folder is *owned* when it is a real folder (not a symbolic link) holding the
marker as a regular file. The rules:

1. **Replacing a folder** (:func:`replace_dir`): a missing path is fine; an empty folder or an owned folder
   is removed; anything else (a folder with content and no marker, a file, a symbolic link) is refused.
2. **Writing into a folder** (:func:`claim_dir`, for a folder that also holds files doctune rewrites, such as
   the export folder): a missing folder is created and marked, an empty one is marked, an owned one is used;
   anything else is refused.
3. **Files** (:func:`check_file`): a file that does not exist may be written into any folder; an existing file
   (a dataset card, a JSONL split, a GGUF file, a leftover ``.tmp``) is replaced only inside an owned folder,
   and a symbolic link is never written through.

A folder that already held something is never marked, so it never becomes replaceable by accident; deleting the
marker file takes a folder back. A refusal raises :class:`NotOwnedError` (a :class:`~doctune.config.ConfigError`:
the fix is another output folder), whose one-line message names the path, the reason and what to do.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

from doctune import __version__
from doctune.config import ConfigError

__all__ = ["MARKER", "NotOwnedError", "check_dir", "check_file", "claim_dir", "is_owned", "mark_owned", "replace_dir"]

log = logging.getLogger(__name__)

#: the file that marks a folder as created (and replaceable) by doctune
MARKER = ".doctune-owned"
_HINT = "remove it yourself or choose another --out / export.out_dir"


class NotOwnedError(ConfigError):
    """doctune refused to delete or overwrite a path it did not create."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"refusing to replace {path}: {reason}; {_HINT}")


def is_owned(path: Path) -> bool:
    """Whether ``path`` is a real folder (not a symbolic link) holding the marker as a regular file."""
    path, marker = Path(path), Path(path) / MARKER
    return not path.is_symlink() and path.is_dir() and not marker.is_symlink() and marker.is_file()


def mark_owned(path: Path, by: str) -> Path:
    """Write the marker into the folder ``path`` (kept when already there); ``by`` says what wrote it."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        info = {"owner": "doctune", "version": __version__, "written_by": by, "created": stamp}
        marker.write_text(json.dumps(info) + "\n", encoding="utf-8")
    return marker


def _refusal(path: Path) -> NotOwnedError | None:
    """Why the existing ``path`` may not be removed or reused as doctune's folder, or None when it may."""
    if path.is_symlink():
        return NotOwnedError(path, "it is a symbolic link (doctune never deletes through one)")
    if not path.is_dir():
        return NotOwnedError(path, "it is a file, not a folder doctune created")
    if not is_owned(path) and any(path.iterdir()):
        return NotOwnedError(path, f"the folder is not empty and has no {MARKER} marker, so doctune did not create it")
    return None


def check_dir(path: Path) -> Path:
    """``path`` when :func:`replace_dir` may remove it (missing, empty or owned); else :class:`NotOwnedError`."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and (refusal := _refusal(path)) is not None:
        raise refusal
    return path


def replace_dir(path: Path) -> None:
    """Remove the folder ``path`` before doctune rewrites it: only when missing, empty or owned (rule 1)."""
    path = check_dir(path)
    if path.exists():
        log.debug("removing %s (created by doctune)", path)
        shutil.rmtree(path)


def claim_dir(path: Path, by: str) -> Path:
    """The folder ``path``, created and marked when missing or empty, used when owned; else refused (rule 2)."""
    path = check_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    mark_owned(path, by)
    return path


def check_file(path: Path) -> Path:
    """``path`` when doctune may (over)write it: it does not exist, or its folder is owned (rule 3)."""
    path = Path(path)
    if path.is_symlink():
        raise NotOwnedError(path, "it is a symbolic link (doctune never writes through one)")
    if path.exists():
        if path.is_dir():
            raise NotOwnedError(path, "it is a folder where doctune writes a file")
        if not is_owned(path.parent):
            raise NotOwnedError(path, f"the file exists and its folder has no {MARKER} marker")
    return path
