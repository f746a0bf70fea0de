"""Units of a Python file through the standard library's ``ast``: the module, its classes, functions and methods.

A unit's line range starts at its first decorator; its signature is the decorators and the header exactly as
written (up to the colon); its body is the exact source lines. Functions and classes defined inside a function
belong to that function (they are in its body, not units of their own); definitions under a module- or
class-level ``if``/``try``/``with`` are units.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import PurePosixPath

from doctune.ingest.code import CodeSyntaxError, ExtractedUnit, FileUnits, source_lines, split_lines

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def python_units(text: str, path: str) -> FileUnits:
    """The module, class, function and method units of the Python source ``text`` (file ``path``, for names).

    Raises :class:`CodeSyntaxError` when the text does not parse."""
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise CodeSyntaxError(f"syntax error at line {exc.lineno}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise CodeSyntaxError(f"does not parse: {exc}") from None
    n_lines = max(1, len(text.splitlines()))
    module_name = module_name_of(path)
    units = [
        ExtractedUnit(
            kind="module",
            name=module_name,
            qualname=module_name,
            signature="",
            docstring=ast.get_docstring(tree) or "",
            body=text,
            line_start=1,
            line_end=n_lines,
        )
    ]
    _collect(tree.body, text, prefix="", in_class=False, units=units)
    return FileUnits(units=units, imports=file_imports(tree))


def module_name_of(path: str) -> str:
    """The module's name: the file's stem, or its folder's name for a package's ``__init__.py``."""
    p = PurePosixPath(path)
    if p.stem == "__init__" and p.parent.name:
        return p.parent.name
    return p.stem


def file_imports(tree: ast.Module) -> list[str]:
    """Every import statement of the file (top level or not), normalised (``from a import b as c``), in order."""
    nodes = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    nodes.sort(key=lambda node: (node.lineno, node.col_offset))  # ast.walk goes breadth first
    return list(dict.fromkeys(ast.unparse(node) for node in nodes))


def _collect(body: list[ast.stmt], text: str, prefix: str, in_class: bool, units: list[ExtractedUnit]) -> None:
    """Add the units defined directly in ``body`` (and under its if/try/with blocks), not inside functions."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            units.append(_unit(node, text, prefix, in_class))
            if isinstance(node, ast.ClassDef):
                _collect(node.body, text, prefix=f"{prefix}{node.name}.", in_class=True, units=units)
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.AsyncWith | ast.TryStar):
            for block in ("body", "orelse", "finalbody"):
                _collect(getattr(node, block, []), text, prefix, in_class, units)
            for handler in getattr(node, "handlers", []):
                _collect(handler.body, text, prefix, in_class, units)


def _unit(node: Definition, text: str, prefix: str, in_class: bool) -> ExtractedUnit:
    kind = "class" if isinstance(node, ast.ClassDef) else "method" if in_class else "function"
    line_start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    line_end = node.end_lineno or node.lineno
    decorators = [f"@{ast.get_source_segment(text, d) or ast.unparse(d)}" for d in node.decorator_list]
    return ExtractedUnit(
        kind=kind,
        name=node.name,
        qualname=prefix + node.name,
        signature="\n".join([*decorators, header_text(node, text)]),
        docstring=ast.get_docstring(node) or "",
        body=source_lines(text, line_start, line_end),
        line_start=line_start,
        line_end=line_end,
    )


def header_text(node: Definition, text: str) -> str:
    """``def name(params) -> ret:`` / ``class Name(bases):`` exactly as written (comments left out, lines joined as
    in the source)."""
    first = node.body[0]
    segment = _segment(split_lines(text), node.lineno, node.col_offset, first.lineno, first.col_offset)
    end = _header_end(segment)
    if end is None:  # should not happen for a parsed definition; fall back to the normalised form
        return ast.unparse(node).split("\n", 1)[0]
    return segment[:end].rstrip()


def _segment(lines: list[str], l1: int, c1: int, l2: int, c2: int) -> str:
    """The text from (line l1, column c1) to (line l2, column c2); columns are UTF-8 byte offsets as in ``ast``."""
    chosen = lines[l1 - 1 : l2]
    if not chosen:
        return ""
    encoded = [line.encode("utf-8") for line in chosen]
    if len(encoded) == 1:
        return encoded[0][c1:c2].decode("utf-8", "replace")
    encoded[0] = encoded[0][c1:]
    encoded[-1] = encoded[-1][:c2]
    return b"".join(encoded).decode("utf-8", "replace")


def _header_end(segment: str) -> int | None:
    """The offset just after the colon that ends a ``def``/``class`` header: the last ``:`` outside brackets."""
    line_starts = [0]
    for line in io.StringIO(segment).readlines():  # the lines as tokenize reads them
        line_starts.append(line_starts[-1] + len(line))
    depth = 0
    end = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(segment).readline):
            if tok.type != tokenize.OP:
                continue
            if tok.string in "([{":
                depth += 1
            elif tok.string in ")]}":
                depth -= 1
            elif tok.string == ":" and depth == 0:
                row, col = tok.end
                end = line_starts[row - 1] + col
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # the segment stops where the body begins: an unfinished block is expected
    return end
