"""Small, single-point mutations of Python source, and the check that a test catches one.

A mutant changes one operator, constant or return value of the original (found with the stdlib ``ast``) by
splicing the original text, so everything else (layout, comments, style) stays as the repository wrote it. Each
mutant still parses and differs from the original's syntax tree. Used for "fix this bug" examples (the mutant is
the bug) and to check that a generated test tests something (it must fail on a mutant).
"""

from __future__ import annotations

import ast
import bisect
import logging
from dataclasses import dataclass

from doctune.sandbox.runner import SandboxLimits, run_python_tests

logger = logging.getLogger(__name__)

MUTANT_KINDS = ("comparison", "arithmetic", "boolean", "constant", "return")
"""The kinds of mutation, in the order a capped selection takes them round-robin."""

_COMPARE_SWAPS: dict[type[ast.cmpop], tuple[str, str]] = {
    ast.Lt: ("<", "<="),
    ast.LtE: ("<=", "<"),
    ast.Gt: (">", ">="),
    ast.GtE: (">=", ">"),
    ast.Eq: ("==", "!="),
    ast.NotEq: ("!=", "=="),
}
_ARITHMETIC_SWAPS: dict[type[ast.operator], tuple[str, str]] = {
    ast.Add: ("+", "-"),
    ast.Sub: ("-", "+"),
    ast.Mult: ("*", "/"),
    ast.Div: ("/", "*"),
}
_BOOLEAN_SWAPS: dict[type[ast.boolop], tuple[str, str]] = {ast.And: ("and", "or"), ast.Or: ("or", "and")}


@dataclass(frozen=True)
class Mutant:
    """One mutated copy of a source text."""

    kind: str
    """One of MUTANT_KINDS."""
    line: int
    """1-based line of the change in the original."""
    description: str
    """What changed, e.g. "line 3: `<` -> `<=`"."""
    source: str
    """The whole mutated source."""


@dataclass(frozen=True)
class _Site:
    """A place to mutate: replace bytes [start, end) of the original with ``replacement``."""

    start: int
    end: int
    replacement: bytes
    kind: str
    line: int
    description: str


class _Positions:
    """Converts ast (line, UTF-8 byte column) positions to offsets in the source's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.line_starts = [0]
        index = 0
        while index < len(data):
            byte = data[index : index + 1]
            if byte == b"\n" or (byte == b"\r" and data[index + 1 : index + 2] != b"\n"):
                self.line_starts.append(index + 1)
            index += 1

    def offset(self, line: int, col: int) -> int:
        """Byte offset of ``col`` on 1-based ``line``."""
        return self.line_starts[line - 1] + col

    def line_of(self, offset: int) -> int:
        """1-based line holding byte ``offset``."""
        return bisect.bisect_right(self.line_starts, offset)

    def start(self, node: ast.AST) -> int:
        """Byte offset where ``node`` starts."""
        return self.offset(node.lineno, node.col_offset)

    def end(self, node: ast.AST) -> int:
        """Byte offset where ``node`` ends."""
        return self.offset(node.end_lineno, node.end_col_offset)


def _token_in_gap(gap: bytes, token: str) -> tuple[int, int] | None:
    """Where ``token`` sits in the text between two operands, when it is the only thing there besides
    whitespace, parentheses, line continuations and comments; None otherwise."""
    kept: list[int] = []
    in_comment = False
    for index, byte in enumerate(gap):
        char = chr(byte)
        if in_comment:
            in_comment = char not in "\r\n"
            continue
        if char == "#":
            in_comment = True
        elif not char.isspace() and char not in "()\\":
            kept.append(index)
    if not kept:
        return None
    start, end = kept[0], kept[-1] + 1
    if gap[start:end].decode("utf-8", errors="replace") != token or len(kept) != len(token):
        return None
    return start, end


def _operator_site(positions: _Positions, left: ast.AST, right: ast.AST, old: str, new: str, kind: str) -> _Site | None:
    """A site replacing the operator ``old`` found between ``left`` and ``right`` with ``new``."""
    gap_start = positions.end(left)
    found = _token_in_gap(positions.data[gap_start : positions.start(right)], old)
    if found is None:
        return None
    start, end = gap_start + found[0], gap_start + found[1]
    line = positions.line_of(start)
    return _Site(start, end, new.encode(), kind, line, f"line {line}: `{old}` -> `{new}`")


def _nodes_outside_fstrings(tree: ast.AST) -> list[ast.AST]:
    """All nodes of ``tree`` except those inside f-strings (whose positions are unreliable before 3.12)."""
    nodes: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(child for child in ast.iter_child_nodes(node) if not isinstance(child, ast.JoinedStr))
    return nodes


def _sites_of(node: ast.AST, positions: _Positions) -> list[_Site]:
    """The mutation sites one node offers."""
    sites: list[_Site | None] = []
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            if type(op) in _COMPARE_SWAPS:
                old, new = _COMPARE_SWAPS[type(op)]
                sites.append(_operator_site(positions, operands[index], operands[index + 1], old, new, "comparison"))
    elif isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC_SWAPS:
        old, new = _ARITHMETIC_SWAPS[type(node.op)]
        sites.append(_operator_site(positions, node.left, node.right, old, new, "arithmetic"))
    elif isinstance(node, ast.AugAssign) and type(node.op) in _ARITHMETIC_SWAPS:
        old, new = _ARITHMETIC_SWAPS[type(node.op)]
        sites.append(_operator_site(positions, node.target, node.value, old + "=", new + "=", "arithmetic"))
    elif isinstance(node, ast.BoolOp):
        old, new = _BOOLEAN_SWAPS[type(node.op)]
        for left, right in zip(node.values, node.values[1:], strict=False):
            sites.append(_operator_site(positions, left, right, old, new, "boolean"))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        sites.append(_not_removed(node, positions))
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        sites.append(_constant_plus_one(node, positions))
    elif (
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        sites.append(_return_none(node, positions))
    return [site for site in sites if site is not None]


def _not_removed(node: ast.UnaryOp, positions: _Positions) -> _Site | None:
    """``not x`` -> ``x``."""
    start, operand_start = positions.start(node), positions.start(node.operand)
    prefix = positions.data[start:operand_start]
    if not prefix.startswith(b"not"):
        return None
    removed = len(prefix) - len(prefix[3:].lstrip(b" \t"))
    return _Site(start, start + removed, b"", "boolean", node.lineno, f"line {node.lineno}: `not` removed")


def _constant_plus_one(node: ast.Constant, positions: _Positions) -> _Site | None:
    """An int literal ``n`` -> ``n + 1`` (written as the number)."""
    start, end = positions.start(node), positions.end(node)
    text = positions.data[start:end].decode("utf-8", errors="replace")
    try:
        if ast.literal_eval(text) != node.value:
            return None
    except (ValueError, SyntaxError):
        return None
    new = str(node.value + 1)
    return _Site(start, end, new.encode(), "constant", node.lineno, f"line {node.lineno}: `{text}` -> `{new}`")


def _return_none(node: ast.Return, positions: _Positions) -> _Site:
    """``return x`` -> ``return None``."""
    start, end = positions.start(node.value), positions.end(node.value)
    shown = " ".join(positions.data[start:end].decode("utf-8", errors="replace").split())
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return _Site(start, end, b"None", "return", node.lineno, f"line {node.lineno}: `return {shown}` -> `return None`")


def _round_robin(sites: list[_Site]) -> list[_Site]:
    """``sites`` reordered round-robin over the kinds (each kind in position order), so that the first N of the
    result give every kind present a share."""
    queues = {kind: [site for site in sites if site.kind == kind] for kind in MUTANT_KINDS}
    ordered: list[_Site] = []
    while any(queues.values()):
        for kind in MUTANT_KINDS:
            if queues[kind]:
                ordered.append(queues[kind].pop(0))
    return ordered


def _position_key(site: _Site) -> tuple[int, int]:
    """Sort key: where the site is, then its kind's rank."""
    return site.start, MUTANT_KINDS.index(site.kind)


def mutants(source: str, max_mutants: int = 20) -> list[Mutant]:
    """Single-point mutants of ``source`` in a deterministic order (by position); empty when it does not parse.

    Kinds: comparison flips (< <=, > >=, == !=), arithmetic swaps (+ -, * /, also in ``+=``), boolean (and/or
    swapped, ``not`` removed), int constants plus one, ``return x`` -> ``return None``. Each mutant parses and its
    syntax tree differs from the original's. When there are more sites than ``max_mutants``, the kinds share the
    cap round-robin (each kind's earliest sites first).
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        logger.debug("no mutants: source does not parse (%s)", exc)
        return []
    data = source.encode("utf-8")
    positions = _Positions(data)
    sites = sorted(
        (site for node in _nodes_outside_fstrings(tree) for site in _sites_of(node, positions)), key=_position_key
    )
    original_dump = ast.dump(tree)
    chosen: list[tuple[_Site, str]] = []
    for site in _round_robin(sites):
        if len(chosen) >= max_mutants:
            break
        mutated = (data[: site.start] + site.replacement + data[site.end :]).decode("utf-8")
        try:
            if ast.dump(ast.parse(mutated)) == original_dump:
                continue
        except (SyntaxError, ValueError):
            continue
        chosen.append((site, mutated))
    chosen.sort(key=lambda pair: _position_key(pair[0]))
    return [Mutant(site.kind, site.line, site.description, mutated) for site, mutated in chosen]


def _module_files(module_name: str, source: str) -> dict[str, str]:
    """Files that make ``module_name`` (possibly dotted) importable with ``source`` as its text."""
    parts = module_name.split(".")
    files = {"/".join(parts[: depth + 1]) + "/__init__.py": "" for depth in range(len(parts) - 1)}
    files["/".join(parts) + ".py"] = source
    return files


def mutation_caught(
    module_name: str,
    original_source: str,
    mutant_source: str,
    test_source: str,
    limits: SandboxLimits | None = None,
    *,
    python: str | None = None,
    env_path: str | None = None,
) -> tuple[bool, str]:
    """Whether ``test_source`` catches the mutant: it must pass on the original and fail (or time out) on the
    mutant, both runs sandboxed. Returns (caught, detail). Raises ``SandboxUnavailable`` without isolation."""
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        return False, f"bad module name {module_name!r}"
    test_file = "test_doctune_mutation.py"
    original = run_python_tests(
        {**_module_files(module_name, original_source), test_file: test_source}, test_file, limits, python, env_path
    )
    if original.status != "passed":
        return False, f"the test does not pass on the original: {original.summary()}"
    mutated = run_python_tests(
        {**_module_files(module_name, mutant_source), test_file: test_source}, test_file, limits, python, env_path
    )
    if mutated.status in ("failed", "timeout"):
        return True, f"caught: the test {mutated.summary()}"
    if mutated.status == "passed":
        return False, "not caught: the test passes on the mutant too"
    return False, f"no verdict on the mutant: {mutated.summary()}"
