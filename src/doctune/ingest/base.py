"""Types and helpers shared by the format readers: the error they raise, their input and output, text decoding."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import charset_normalizer

from doctune.records import SourceSpan

# Highest "chaos" (mess ratio, 0..1) accepted from charset-normalizer; its own default threshold.
MAX_DETECTION_CHAOS = 0.2
# Largest share of control characters tolerated in text decoded with a detected 8-bit codec.
MAX_CONTROL_CHAR_RATIO = 0.01
# Codecs charset-normalizer proposes for random bytes but which real text files essentially never use.
_IMPLAUSIBLE_CODECS = {"ascii", "cp037", "cp273", "cp424", "cp500", "cp875", "cp1026", "cp1140"}
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
DECODE_FAILURE = "cannot decode text (tried utf-8, utf-16/utf-32 with BOM, charset detection)"
TITLE_MAX_CHARS = 80


class UnreadableFileError(Exception):
    """A file that cannot be turned into a document; ``reason`` is a short human-readable explanation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Extracted:
    """What a format reader returns: the clean text, a title, and optional spans mapping text back to the source."""

    text: str
    title: str
    spans: list[SourceSpan] = field(default_factory=list)


class SourceFile:
    """The raw bytes of one file; ``text`` decodes them on first use (raising ``UnreadableFileError``)."""

    def __init__(self, path: Path, raw: bytes) -> None:
        self.path = path
        self.raw = raw

    @cached_property
    def text(self) -> str:
        """The decoded text, BOM removed, line endings untouched."""
        return decode_text(self.raw)


def decode_text(raw: bytes) -> str:
    """Decode the bytes of a text file.

    Order: a byte-order mark (UTF-8/16/32) decides; otherwise NUL bytes mean a binary file; then strict UTF-8;
    then the best charset-normalizer guess (cp1252 on ties) that decodes strictly, has low chaos and almost no
    control characters.
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding).removeprefix("\ufeff")
            except UnicodeDecodeError as exc:
                raise UnreadableFileError(f"cannot decode text: invalid {encoding} after byte-order mark") from exc
    if b"\x00" in raw:
        raise UnreadableFileError("binary file (contains NUL bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for match in sorted(charset_normalizer.from_bytes(raw), key=_candidate_rank):
        if match.encoding in _IMPLAUSIBLE_CODECS or match.encoding.startswith(("utf_16", "utf_32")):
            continue
        if match.chaos > MAX_DETECTION_CHAOS:
            continue
        try:
            text = raw.decode(match.encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        if len(_CONTROL_CHARS.findall(text)) <= MAX_CONTROL_CHAR_RATIO * len(text):
            return text
    raise UnreadableFileError(DECODE_FAILURE)


def _candidate_rank(match: charset_normalizer.CharsetMatch) -> tuple[float, float, bool]:
    """Least chaos first, then most coherence; on a tie the commonest legacy codec, cp1252, wins."""
    return (round(match.chaos, 2), -round(match.coherence, 2), match.encoding != "cp1252")


def normalize_newlines(text: str) -> str:
    """``\\r\\n`` and lone ``\\r`` become ``\\n``; nothing else changes."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def shorten_title(line: str, limit: int = TITLE_MAX_CHARS) -> str:
    """Collapse whitespace and cut a title at a word boundary so it is at most ``limit`` characters."""
    title = " ".join(line.split())
    if len(title) <= limit:
        return title
    cut = title[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"


def first_nonempty_line(text: str) -> str | None:
    """The first line of ``text`` that is not blank, stripped; ``None`` if there is none."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None
