"""A repository rebuilt from its ``code_units``: every module unit holds its whole file, so the Python files can be
written into a sandbox without the original folder (whose absolute path doctune never stores).

Files are keyed by their import path: a leading ``src/`` (the "src layout") is dropped so that ``src/pkg/mod.py``
imports as ``pkg.mod`` from the sandbox's directory.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from doctune.ingest.code import split_lines
from doctune.records import CodeUnit

SOURCE_ROOTS = ("src/", "lib/")


def import_path(repo_path: str) -> str:
    """``src/pkg/mod.py`` -> ``pkg/mod.py``; other paths unchanged."""
    for root in SOURCE_ROOTS:
        if repo_path.startswith(root) and "/" in repo_path[len(root) :]:
            return repo_path[len(root) :]
    return repo_path


def module_name(repo_path: str) -> str:
    """The dotted module name a file imports as (``pkg/__init__.py`` -> ``pkg``)."""
    parts = list(PurePosixPath(import_path(repo_path)).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def dedent_unit(unit: CodeUnit) -> str:
    """The unit's text moved to column 0 (a method's text parses on its own then)."""
    return textwrap.dedent(unit.body.expandtabs(8) if "\t" in unit.body[:1] else unit.body)


def indent_of(unit: CodeUnit) -> str:
    """The indentation of the unit's first line."""
    first = unit.body.splitlines()[0] if unit.body else ""
    return first[: len(first) - len(first.lstrip())]


def parse_definition(text: str) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | None:
    """The first definition in ``text`` (dedented), or None when it does not parse or defines nothing."""
    try:
        tree = ast.parse(textwrap.dedent(text))
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return node
    return None


@dataclass
class RepoTree:
    """The Python files of one repository (import path -> text) and where each unit sits."""

    repo: str
    files: dict[str, str] = field(default_factory=dict)
    tests: list[str] = field(default_factory=list)
    """Import paths of the repository's own test files."""

    @classmethod
    def from_units(cls, units: Iterable[CodeUnit], repo: str) -> RepoTree:
        tree = cls(repo)
        for unit in units:
            if unit.repo != repo or unit.kind != "module" or unit.language != "python":
                continue
            path = import_path(unit.path)
            tree.files[path] = unit.body if unit.body.endswith("\n") else unit.body + "\n"
            if unit.role == "test":
                tree.tests.append(path)
        tree.tests.sort()
        return tree

    def has_file(self, unit: CodeUnit) -> bool:
        return import_path(unit.path) in self.files

    def replaced(self, unit: CodeUnit, new_text: str) -> dict[str, str]:
        """All files, with the unit's lines in its file replaced by ``new_text`` (dedented text is re-indented to
        the unit's indentation)."""
        path = import_path(unit.path)
        lines = split_lines(self.files[path])
        indent = indent_of(unit)
        body = textwrap.indent(textwrap.dedent(new_text).rstrip("\n") + "\n", indent, lambda line: bool(line.strip()))
        files = dict(self.files)
        files[path] = "".join(lines[: unit.line_start - 1]) + body + "".join(lines[unit.line_end :])
        return files

    def tests_mentioning(self, name: str) -> list[str]:
        """The repository's test files whose text names ``name`` (as a word)."""
        import re

        pattern = re.compile(rf"\b{re.escape(name)}\b")
        return [path for path in self.tests if pattern.search(self.files[path])]
