"""PDF: the text of each page (pypdf), pages joined by a blank line, one ``SourceSpan`` per page with text."""

from __future__ import annotations

import io
import logging
import re

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

from doctune.config import IngestConfig
from doctune.ingest.base import (
    Extracted,
    SourceFile,
    UnreadableFileError,
    first_nonempty_line,
    normalize_newlines,
    shorten_title,
)
from doctune.records import SourceSpan

logger = logging.getLogger(__name__)

PAGE_SEPARATOR = "\n\n"
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_EXTRA_BLANK_LINES = re.compile(r"\n{3,}")


def read_pdf(source: SourceFile, cfg: IngestConfig) -> Extracted:
    """Extract the text of every page; pages without text are skipped (they get no span)."""
    reader = _open_pdf(source.raw)
    parts: list[str] = []
    spans: list[SourceSpan] = []
    offset = 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            page_text = clean_page_text(page.extract_text() or "")
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("%s: page %d: text extraction failed (%s); page skipped", source.path, number, exc)
            continue
        if not page_text:
            continue
        if parts:
            offset += len(PAGE_SEPARATOR)
        spans.append(SourceSpan(start=offset, end=offset + len(page_text), locator=f"page {number}", page=number))
        parts.append(page_text)
        offset += len(page_text)
    if not parts:
        raise UnreadableFileError("no extractable text (scanned PDF?)")
    text = PAGE_SEPARATOR.join(parts)
    return Extracted(text=text, title=_pdf_title(reader, parts[0]) or source.path.stem, spans=spans)


def clean_page_text(text: str) -> str:
    """Normalise one page: line endings, ligatures, control characters, trailing spaces, runs of blank lines."""
    text = normalize_newlines(text).translate(_LIGATURES)
    text = _CONTROL_CHARS.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _EXTRA_BLANK_LINES.sub("\n\n", text).strip()


def _open_pdf(raw: bytes) -> PdfReader:
    if b"%PDF-" not in raw[:1024]:
        raise UnreadableFileError("corrupt PDF: no %PDF header")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise UnreadableFileError("encrypted PDF (password required)")
        _ = len(reader.pages)  # forces the page tree to load, so damage shows up here
    except UnreadableFileError:
        raise
    except (DependencyError, FileNotDecryptedError) as exc:
        raise UnreadableFileError(f"encrypted PDF: {exc}") from exc
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise UnreadableFileError(f"corrupt PDF: {exc or type(exc).__name__}") from exc
    return reader


def _pdf_title(reader: PdfReader, first_page_text: str) -> str | None:
    try:
        meta_title = reader.metadata.title if reader.metadata else None
    except (PyPdfError, ValueError, KeyError, TypeError):
        meta_title = None
    if isinstance(meta_title, str) and meta_title.strip():
        return shorten_title(meta_title)
    line = first_nonempty_line(first_page_text)
    return shorten_title(line) if line else None
