"""Explanations of a unit, and the check that an explanation names only identifiers the unit has.

Two sources. ``docstring`` (the default for the embedded small model): the explanation is assembled from facts of
the unit itself (what it is, its parameters with annotations and defaults, what its docstring says, what it calls,
what it returns or raises), so it is right by construction. ``model``: a model writes it (for endpoints and larger
models); :func:`unknown_identifiers` then rejects any explanation that names an identifier the unit does not have
(in backticks, ``snake_case``, ``camelCase``, dotted or followed by ``(``), and a judge that passed its own check
can be asked too (:mod:`doctune.code_examples.judge`).

The question shows the unit without its docstring and comments (:func:`code_without_docs`), so it never
reproduces the unit verbatim.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import re
import textwrap
import tokenize

from doctune.code_examples.tree import module_name, parse_definition
from doctune.records import CodeUnit

_BACKTICKED = re.compile(r"`([^`\n]{1,80})`")
_CODE_LIKE = re.compile(
    r"\b([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+|[A-Za-z]*_[A-Za-z0-9_]*|[a-z]+[A-Z][A-Za-z0-9]*)\b"
)
_CALLED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\(")
_ALWAYS_KNOWN = set(dir(builtins)) | set(keyword.kwlist) | {"self", "cls", "e.g", "i.e", "etc"}


def unit_identifiers(unit: CodeUnit) -> set[str]:
    """Every name the unit's code uses: its own name and module, parameters, locals, attributes, called names and
    imported names of its file."""
    names = {unit.name, *unit.qualname.split("."), *module_name(unit.path).split(".")}
    names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", unit.path))  # the file's path, e.g. `pkg/__init__.py`
    names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", unit.docstring))  # what its own docstring names
    node = parse_definition(unit.body)
    if node is not None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                names.add(sub.id)
            elif isinstance(sub, ast.Attribute):
                names.add(sub.attr)
            elif isinstance(sub, ast.arg):
                names.add(sub.arg)
            elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(sub.name)
            elif isinstance(sub, ast.keyword) and sub.arg:
                names.add(sub.arg)
    for line in unit.imports:
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", line))
    return names - {"import", "from", "as"}


def named_identifiers(text: str) -> set[str]:
    """The code identifiers an explanation names (each part of a dotted name counts)."""
    found: set[str] = set()
    for match in _BACKTICKED.finditer(text):
        found.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", match.group(1)))
    prose = _BACKTICKED.sub(" ", text)
    for match in _CODE_LIKE.finditer(prose):
        found.update(part for part in match.group(1).split(".") if part)
    found.update(_CALLED.findall(prose))
    return found


def unknown_identifiers(text: str, unit: CodeUnit) -> list[str]:
    """Identifiers ``text`` names that the unit does not have (empty: the explanation passes the check). Python
    builtins and keywords are allowed; so are quoted string values of the code."""
    allowed = unit_identifiers(unit) | _ALWAYS_KNOWN
    literals = set(re.findall(r"""['"]([^'"\n]{1,40})['"]""", unit.body))
    words_in_literals = {w for lit in literals for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", lit)}
    return sorted(name for name in named_identifiers(text) if name not in allowed | words_in_literals)


def code_without_docs(unit: CodeUnit) -> str:
    """The unit's code (dedented) without its docstrings and comments, blank lines squeezed."""
    text = textwrap.dedent(unit.body)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return text
    drop: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                drop.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines = text.splitlines()
    comment_cols: dict[int, int] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                comment_cols[tok.start[0]] = tok.start[1]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    kept = []
    for number, line in enumerate(lines, start=1):
        if number in drop:
            continue
        if number in comment_cols:
            line = line[: comment_cols[number]].rstrip()
            if not line.strip():
                continue
        kept.append(line)
    squeezed = re.sub(r"\n{3,}", "\n\n", "\n".join(kept))
    return squeezed.strip("\n")


def _describe_args(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults, strict=True)) + list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    out = []
    for arg, default in pairs:
        if arg.arg in ("self", "cls"):
            continue
        text = f"`{arg.arg}`"
        details = []
        if arg.annotation is not None:
            details.append(ast.unparse(arg.annotation))
        if default is not None:
            details.append(f"default `{ast.unparse(default)}`")
        out.append(text + (f" ({', '.join(details)})" if details else ""))
    if args.vararg:
        out.append(f"`*{args.vararg.arg}`")
    if args.kwarg:
        out.append(f"`**{args.kwarg.arg}`")
    return out


def _calls_of(node: ast.AST, limit: int = 8) -> list[str]:
    names: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            try:
                name = ast.unparse(sub.func)
            except (ValueError, AttributeError):
                continue
            if len(name) <= 40 and re.fullmatch(r"[A-Za-z_][\w.]*", name) and name not in names:
                names.append(name)
    return names[:limit]


def built_explanation(unit: CodeUnit) -> str:
    """An explanation assembled from the unit's own facts (right by construction)."""
    node = parse_definition(unit.body)
    module = module_name(unit.path)
    kind = {"method": "method", "function": "function", "class": "class"}.get(unit.kind, unit.kind)
    if isinstance(node, ast.AsyncFunctionDef):
        kind = f"coroutine {kind}"
    owner = f" of class `{unit.qualname.rsplit('.', 1)[0]}`" if "." in unit.qualname else ""
    lines = [f"`{unit.qualname}` is a {kind}{owner} in module `{module}` (`{unit.path}`)."]
    doc = unit.docstring.strip().split("\n\n")[0]
    if doc:
        lines.append("What it does, in its docstring's words: " + " ".join(doc.split()))
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        params = _describe_args(node)
        lines.append("Parameters: " + ", ".join(params) + "." if params else "It takes no parameters.")
        calls = _calls_of(node)
        if calls:
            lines.append("It calls " + ", ".join(f"`{c}`" for c in calls) + ".")
        raises = sorted(
            {
                ast.unparse(s.exc.func if isinstance(s.exc, ast.Call) else s.exc)
                for s in ast.walk(node)
                if isinstance(s, ast.Raise) and s.exc is not None
            }
        )
        if raises:
            lines.append("It can raise " + ", ".join(f"`{r}`" for r in raises) + ".")
        if node.returns is not None:
            lines.append(f"It returns `{ast.unparse(node.returns)}`.")
        elif any(isinstance(s, ast.Return) and s.value is not None for s in ast.walk(node)):
            lines.append("It returns a value (no annotation says its type).")
    elif isinstance(node, ast.ClassDef):
        methods = [s.name for s in node.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
        if node.bases:
            lines.append("It derives from " + ", ".join(f"`{ast.unparse(b)}`" for b in node.bases) + ".")
        if methods:
            lines.append("Its methods: " + ", ".join(f"`{m}`" for m in methods[:12]) + ".")
    return "\n".join(lines)
