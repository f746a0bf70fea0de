"""Reading archive files from a zip or a folder, and JSON that may be cut short.

A truncated ``outbox.json`` or ``tweets.js`` still yields every item before the cut: the items of the top-level
array are decoded one at a time, and the cut is reported once for the file.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

_WS = re.compile(r"[\s,]*")
_YTD_PREFIX = re.compile(r"^\s*window\.YTD\.[\w.]+\s*=\s*")


class ArchiveError(Exception):
    """A whole file or archive cannot be read; the message says which and why."""


class Archive:
    """The files of a zip or a folder, addressed by their path relative to the archive's root (the folder holding
    ``outbox.json`` or ``data/``: an archive unpacked into one extra folder is found too)."""

    def __init__(self, path: Path, markers: tuple[str, ...] = ()):
        self.path = path
        self.name = path.name
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            files = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        elif zipfile.is_zipfile(path):
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ArchiveError(f"{path.name}: not a readable zip ({exc})") from None
            files = [n for n in self._zip.namelist() if not n.endswith("/")]
        else:
            raise ArchiveError(f"{path.name}: neither a folder nor a zip archive")
        self.root = _find_root(files, markers)
        self._files = {f[len(self.root) :]: f for f in files if f.startswith(self.root)}

    def names(self) -> list[str]:
        return sorted(self._files)

    def exists(self, name: str) -> bool:
        return name in self._files

    def read_text(self, name: str) -> str:
        real = self._files[name]
        try:
            data = self._zip.read(real) if self._zip is not None else (self.path / real).read_bytes()
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            raise ArchiveError(f"{self.name}/{name}: cannot be read ({exc})") from None
        return data.decode("utf-8-sig", errors="replace")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _find_root(files: list[str], markers: tuple[str, ...]) -> str:
    """The shortest folder prefix under which one of ``markers`` exists ('' when at the top)."""
    best: str | None = None
    for f in files:
        for marker in markers:
            if f == marker or f.endswith("/" + marker):
                prefix = f[: len(f) - len(marker)]
                if best is None or len(prefix) < len(best):
                    best = prefix
    if best is not None and PurePosixPath(best).name.startswith("__MACOSX"):
        return ""
    return best or ""


@dataclass
class ArrayRead:
    """Items of a JSON array read one at a time; ``problem`` says where and why the reading stopped early."""

    items: list[tuple[int, Any]]
    problem: str = ""


def read_array(text: str, start: int) -> ArrayRead:
    """Decode the JSON array whose ``[`` is at ``text[start]`` item by item, keeping all items before a cut or a
    malformed item."""
    decoder = json.JSONDecoder()
    out: list[tuple[int, Any]] = []
    pos = start + 1
    index = 0
    while True:
        pos = _WS.match(text, pos).end()
        if pos >= len(text):
            return ArrayRead(out, f"file ends inside the array after {index} items (truncated)")
        if text[pos] == "]":
            return ArrayRead(out)
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            cut = exc.pos >= len(text) - 1 or "Unterminated" in exc.msg or "Expecting value" in exc.msg
            what = "truncated" if cut else "malformed JSON"
            return ArrayRead(out, f"item {index}: {what} ({exc.msg} at char {exc.pos}); the {index} items before kept")
        out.append((index, item))
        index += 1


def read_json_document(text: str, array_key: str | None = None) -> tuple[Any, ArrayRead | None]:
    """The whole JSON value of ``text``, or, when it does not parse and ``array_key`` is given, the items of the
    array under that key read up to the cut: ``(None, ArrayRead)``. Raises ``ArchiveError`` when nothing is usable."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        if array_key is None:
            raise ArchiveError(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
        found = re.search(r'"' + re.escape(array_key) + r'"\s*:\s*\[', text)
        if found is None:
            raise ArchiveError(f"not valid JSON ({exc.msg} at char {exc.pos}) and no {array_key} array") from None
        return None, read_array(text, found.end() - 1)


def read_ytd(text: str) -> ArrayRead:
    """The items of a Twitter archive ``.js`` file (``window.YTD.tweets.part0 = [ ... ]``), up to any cut."""
    match = _YTD_PREFIX.match(text)
    start = match.end() if match else 0
    while start < len(text) and text[start].isspace():
        start += 1
    if start >= len(text) or text[start] != "[":
        raise ArchiveError("no window.YTD.<name>.partN = [ ... ] array")
    return read_array(text, start)


def iter_objects(items: list[tuple[int, Any]], key: str) -> Iterator[tuple[int, Any]]:
    """``(index, item[key])`` for Twitter's ``[{"tweet": {...}}, ...]`` wrapping (an unwrapped item is kept)."""
    for index, item in items:
        yield index, item.get(key, item) if isinstance(item, dict) else item
