"""Fingerprints of model weights on disk, for cache keys: a changed file is never served old results.

A file is identified by its name, size, modification time and a sha256 of its first and last MiB (a safetensors or
GGUF header, and the end of the tensor data); a folder by the fingerprints of the files directly in it. Hashing a
whole multi-GB file on every run would cost seconds; these reads cost milliseconds, and copying or rewriting
weights changes the modification time anyway. Callers that ask often (a backend, for every call's cache key) keep
the result for their own lifetime.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_EDGE = 1 << 20  # bytes hashed at each end of a file


def weights_fingerprint(path: str | Path) -> str:
    """16 hex chars identifying the content of a weights file or model folder (``"missing"`` if absent)."""
    path = Path(path).expanduser()
    if path.is_file():
        return _file_fingerprint(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        h = hashlib.sha256()
        for f in files:
            h.update(f"{f.name}\0{_file_fingerprint(f)}\n".encode())
        return h.hexdigest()[:16]
    return "missing"


def _file_fingerprint(path: Path) -> str:
    st = path.stat()
    size = st.st_size
    h = hashlib.sha256(f"{size}\0{st.st_mtime_ns}\0".encode())
    with path.open("rb") as fh:
        h.update(fh.read(_EDGE))
        if size > 2 * _EDGE:
            fh.seek(size - _EDGE)
            h.update(fh.read(_EDGE))
        elif size > _EDGE:
            h.update(fh.read())
    return h.hexdigest()[:16]
