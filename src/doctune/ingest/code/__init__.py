"""Code repositories -> ``code_units`` (``doctune ingest --as code``).

Python is parsed by the standard library's ``ast`` (:mod:`.python_units`), JavaScript, TypeScript and Go by
tree-sitter grammars (:mod:`.treesitter_units`); :mod:`.repo` walks a folder or git repository, classifies each
file (source, test, vendored, generated), skips binary and huge files with a reason and reads the licence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: file suffix -> language
LANGUAGE_BY_SUFFIX: dict[str, str] = {
    ".py": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".go": "go",
}


@dataclass
class ExtractedUnit:
    """One unit found in a file, before the repository's facts (path, role, licence) are added."""

    kind: str  # module | class | function | method
    name: str
    qualname: str
    signature: str
    docstring: str
    body: str  # the exact source lines line_start..line_end
    line_start: int  # 1-based, inclusive
    line_end: int


@dataclass
class FileUnits:
    """The units of one file and the file's imports."""

    units: list[ExtractedUnit] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)


class CodeSyntaxError(Exception):
    """A file that does not parse; the message says where (line) and why."""


def source_lines(text: str, start: int, end: int) -> str:
    """Lines ``start..end`` (1-based, inclusive) of ``text``, exactly as written (line endings kept, but the last)."""
    lines = split_lines(text)[start - 1 : end]
    return "".join(lines).rstrip("\r\n")


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` with their line endings, split where parsers count lines (``\\n``, ``\\r\\n``, ``\\r``;
    not at str.splitlines' form feed and friends)."""
    return _LINE_BREAK.split(text)


_LINE_BREAK = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")
