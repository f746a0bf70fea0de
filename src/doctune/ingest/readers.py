"""Reading one file into a ``Document``: checks shared by every format, then the reader registered for its extension.

The registry maps a lowercase file extension to a ``Reader`` (format name + function). A reader gets the file's
bytes as a ``SourceFile`` (whose ``text`` property decodes them) and returns ``Extracted`` text, title and spans;
it raises ``UnreadableFileError`` with a short reason when the file cannot be used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from doctune.config import IngestConfig
from doctune.ingest.base import Extracted, SourceFile, UnreadableFileError, decode_text
from doctune.ingest.csv_format import read_csv
from doctune.ingest.html_format import read_html
from doctune.ingest.pdf_format import read_pdf
from doctune.ingest.text_format import read_markdown, read_plain_text
from doctune.records import Document

__all__ = [
    "READERS",
    "Extracted",
    "Reader",
    "SourceFile",
    "UnreadableFileError",
    "decode_text",
    "doc_id_of",
    "read_document",
    "reader_for",
    "unsupported_format_reason",
]

ReadFunction = Callable[[SourceFile, IngestConfig], Extracted]
BYTES_PER_MB = 1024 * 1024


@dataclass(frozen=True)
class Reader:
    """How to read one format: ``format`` is the name stored in ``Document.format``."""

    format: str
    read: ReadFunction


READERS: dict[str, Reader] = {
    ".txt": Reader("txt", read_plain_text),
    ".md": Reader("md", read_markdown),
    ".markdown": Reader("md", read_markdown),
    ".html": Reader("html", read_html),
    ".htm": Reader("html", read_html),
    ".pdf": Reader("pdf", read_pdf),
    ".csv": Reader("csv", read_csv),
}


def reader_for(path: Path) -> Reader | None:
    """The reader registered for the file's extension (case-insensitive), or ``None``."""
    return READERS.get(path.suffix.lower())


def unsupported_format_reason(path: Path) -> str:
    """The error reason for a file no reader handles."""
    suffix = path.suffix.lower()
    return f"unsupported format {suffix}" if suffix else "unsupported format (no file extension)"


def doc_id_of(raw: bytes) -> str:
    """A document's id: the first 16 hex characters of the sha256 of its raw bytes."""
    return hashlib.sha256(raw).hexdigest()[:16]


def read_document(path: Path, cfg: IngestConfig) -> Document:
    """Read one file into a ``Document``; raises ``UnreadableFileError`` with a short reason if it cannot."""
    path = Path(path)
    reader = reader_for(path)
    if reader is None:
        raise UnreadableFileError(unsupported_format_reason(path))
    raw = _read_bytes(path, cfg)
    if not raw:
        raise UnreadableFileError("empty file")
    extracted = reader.read(SourceFile(path, raw), cfg)
    clean_chars = len(extracted.text.strip())
    if clean_chars == 0 and cfg.min_chars > 0:
        raise UnreadableFileError("no text content (only whitespace)")
    if clean_chars < cfg.min_chars:
        raise UnreadableFileError(f"too little text ({clean_chars} chars, min_chars is {cfg.min_chars})")
    return Document(
        doc_id=doc_id_of(raw),
        source_path=str(path),
        format=reader.format,
        title=extracted.title,
        text=extracted.text,
        n_chars=len(extracted.text),
        spans=extracted.spans,
    )


def _read_bytes(path: Path, cfg: IngestConfig) -> bytes:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UnreadableFileError("not a regular file")
        if size > cfg.max_file_mb * BYTES_PER_MB:
            raise UnreadableFileError(
                f"file too large ({size / BYTES_PER_MB:.1f} MB > max_file_mb {cfg.max_file_mb:g})"
            )
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise UnreadableFileError("no such file or directory") from exc
    except OSError as exc:
        raise UnreadableFileError(f"cannot read file: {exc.strerror or exc}") from exc
