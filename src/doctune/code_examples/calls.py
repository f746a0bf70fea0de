"""Example calls of a function and their recorded results: the facts a characterization test asserts.

Candidate calls come from three places, each marked with its origin:

* ``doctest``: the ``>>> name(...)`` lines of the function's docstring;
* ``signature``: values built from the parameters' annotations, defaults and names (``word: str`` -> ``"word"``...);
* ``model``: calls the generator model proposes from the signature and docstring (the small model's whole job
  here: it only guesses inputs; what the function returns is never asked of it).

Every candidate must be a call of the function with literal arguments only (checked with ``ast``). The original
function then runs on each candidate inside the sandbox, twice; a call is kept when it returns the same value both
times and that value's ``repr`` reads back with ``ast.literal_eval`` to an equal value (so it can be asserted).
Calls that raise are dropped (with the exception's name counted).
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from doctune.code_examples.tree import RepoTree, module_name, parse_definition
from doctune.llm.base import CallParams, Message
from doctune.prompts import render_prompt
from doctune.records import CodeUnit
from doctune.sandbox import SandboxLimits
from doctune.sandbox.runner import run_python_script

if TYPE_CHECKING:
    from doctune.llm.client import LLMClient

log = logging.getLogger(__name__)

MAX_REPR_CHARS = 300
"""Results whose repr is longer are not asserted (a test should stay readable)."""
RERUN_GAP_S = 1.1
"""The second recording starts at least this long after the first (a clock read in seconds differs then)."""
PROPOSAL_PARAMS = CallParams(temperature=0.0, max_tokens=48)
_MARK = "DOCTUNE-CALLS:"
_SHOTS = (
    (
        'def slugify(text: str, separator: str = "-") -> str:',
        "Make a URL slug of a title.",
        'slugify("Hello World, again")',
    ),
    ("def clamp(value: int, low: int, high: int) -> int:", "Limit a number to a range.", "clamp(15, 0, 10)"),
)

_STR_BY_NAME = {
    "word": ["word", "octopus"],
    "string": ["hello_world", "Hello World"],
    "text": ["Hello world. Second line.", ""],
    "name": ["device_type", "Name"],
    "path": ["a/b.txt", "file.py"],
}
_VALUES_BY_TYPE: dict[str, list[object]] = {
    "str": ["example_text", "Hello World", ""],
    "int": [3, 0, 12],
    "float": [2.5, 0.0],
    "bool": [True, False],
    "list": [[1, 2, 3], []],
    "list[str]": [["alpha", "beta"], []],
    "list[int]": [[3, 1, 2], []],
    "dict": [{"a": 1}, {}],
    "tuple": [(1, 2)],
    "bytes": [b"abc"],
}


@dataclass(frozen=True)
class Call:
    """One call of the function (source text, ``name(args)``), where it came from, and its recorded result."""

    source: str
    origin: str  # doctest | signature | model
    result: str | None = None
    """``repr`` of the value it returned, or None when it raised or the value cannot be asserted."""
    error: str | None = None


def testable(unit: CodeUnit, tree: RepoTree) -> str | None:
    """Why calls of ``unit`` cannot be recorded, or None when they can (a plain module-level Python function)."""
    if unit.language != "python":
        return "not Python"
    if unit.kind != "function" or "." in unit.qualname:
        return "not a module-level function"
    node = parse_definition(unit.body)
    if node is None or not isinstance(node, ast.FunctionDef):
        return "async or not parsing"
    if any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(node)):
        return "a generator"
    if not tree.has_file(unit):
        return "its file is not among the code units"
    if node.name.startswith("test"):
        return "a test"
    if node.returns is not None and ast.unparse(node.returns) == "None":
        return "returns None (nothing to assert)"
    return None


def literal_call(text: str, name: str) -> str | None:
    """``text`` normalised (``ast.unparse``) when it is a call of ``name`` (or ``x.name``) with literal arguments."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if called != name:
        return None
    try:
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            if isinstance(arg, ast.Starred):
                return None
            ast.literal_eval(arg)
    except (ValueError, SyntaxError, TypeError, RecursionError):
        return None
    if any(k.arg is None for k in node.keywords):
        return None
    node.func = ast.Name(id=name, ctx=ast.Load())
    return ast.unparse(node)


def doctest_calls(unit: CodeUnit) -> list[str]:
    """The ``>>> name(...)`` calls of the docstring, normalised."""
    found = []
    for line in unit.docstring.splitlines():
        stripped = line.strip()
        if stripped.startswith(">>> "):
            call = literal_call(stripped[4:], unit.name)
            if call:
                found.append(call)
    return found


def _values_for(arg: ast.arg, default: ast.expr | None) -> list[object]:
    annotation = ast.unparse(arg.annotation).replace("typing.", "").replace(" ", "") if arg.annotation else ""
    annotation = re.sub(r"^Optional\[(.*)\]$", r"\1", annotation).split("|")[0]
    values: list[object] = []
    if default is not None:
        with contextlib.suppress(ValueError, SyntaxError, TypeError):
            values.append(ast.literal_eval(default))
    lowered = arg.arg.lower()
    if annotation in ("str", "") and any(key in lowered for key in _STR_BY_NAME):
        key = next(key for key in _STR_BY_NAME if key in lowered)
        values += _STR_BY_NAME[key]
    elif annotation in _VALUES_BY_TYPE:
        values += _VALUES_BY_TYPE[annotation]
    elif annotation.split("[")[0] in _VALUES_BY_TYPE:
        values += _VALUES_BY_TYPE[annotation.split("[")[0]]
    elif not annotation:
        if lowered in ("n", "count", "number", "size", "index", "limit", "k") or lowered.startswith("n_"):
            values += _VALUES_BY_TYPE["int"]
        else:
            values += _VALUES_BY_TYPE["str"][:2]
    return list(dict.fromkeys(map(repr, values)).keys())


def signature_calls(unit: CodeUnit, limit: int = 4) -> list[str]:
    """Calls built from the parameters' annotations, defaults and names (required positional parameters only;
    parameters with defaults keep them). Empty when a required parameter has no plausible literal value."""
    node = parse_definition(unit.body)
    if node is None or isinstance(node, ast.ClassDef):
        return []
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    required = [(arg, d) for arg, d in zip(positional, defaults, strict=True) if d is None]
    if any(d is None for d in args.kw_defaults):  # a required keyword-only parameter
        return []
    choices = [_values_for(arg, None) for arg, _ in required]
    if any(not c for c in choices):
        return []
    if not choices:
        return [f"{unit.name}()"]
    calls = []
    for k in range(limit):  # parameter i takes its (k + i)-th value: the parameters differ from each other
        combo = [values[(k + i) % len(values)] for i, values in enumerate(choices)]
        calls.append(f"{unit.name}({', '.join(combo)})")
    return list(dict.fromkeys(calls))


def model_calls(client: LLMClient, unit: CodeUnit, n: int = 2) -> list[str]:
    """Calls the generator model proposes (asked ``n`` times with different seeds); only valid literal calls."""
    signature = unit.signature.splitlines()[-1] if unit.signature else unit.name
    docstring = unit.docstring.split("\n\n")[0][:400]
    messages = [Message(role="system", content=render_prompt("code_call_system"))]
    for shot_signature, shot_doc, shot_call in _SHOTS:  # chat few-shot: the small model copies the pattern
        messages.append(
            Message(role="user", content=render_prompt("code_call_user", signature=shot_signature, docstring=shot_doc))
        )
        messages.append(Message(role="assistant", content=shot_call))
    messages.append(
        Message(role="user", content=render_prompt("code_call_user", signature=signature, docstring=docstring))
    )
    found = []
    for seed in range(n):
        params = PROPOSAL_PARAMS.model_copy(update={"seed": seed, "temperature": 0.0 if seed == 0 else 0.7})
        call = first_call_in(client.chat(messages, params).text, unit.name)
        if call:
            found.append(call)
    return found


def first_call_in(text: str, name: str) -> str | None:
    """The first call of ``name`` with literal arguments anywhere in ``text`` (not its ``def``)."""
    for match in re.finditer(rf"(?<![\w.]){re.escape(name)}\(", text):
        if text[max(0, match.start() - 4) : match.start()] == "def ":
            continue
        depth, end = 0, None
        for index in range(match.end() - 1, min(len(text), match.end() + 400)):
            depth += {"(": 1, ")": -1}.get(text[index], 0)
            if depth == 0:
                end = index + 1
                break
        if end is not None and (call := literal_call(text[match.start() : end], name)):
            return call
    return None


def candidate_calls(unit: CodeUnit, client: LLMClient | None, max_calls: int) -> list[tuple[str, str]]:
    """(call, origin) candidates (doctests, then the model's, then the signature's), without repeats, at most
    ``2 * max_calls`` (calls that raise or return what cannot be asserted drop out when recorded)."""
    out: dict[str, str] = {}
    sources = [("doctest", doctest_calls(unit))]
    if client is not None:
        sources.append(("model", model_calls(client, unit)))
    sources.append(("signature", signature_calls(unit)))
    for origin, calls in sources:
        for call in calls:
            out.setdefault(call, origin)
    return list(out.items())[: 2 * max_calls]


_RECORDER = """
import ast, importlib, json
calls = json.loads(open("calls.json").read())
fn = getattr(importlib.import_module(MODULE), NAME)
out = []
for source in calls:
    try:
        first = eval(source, {NAME: fn})
        second = eval(source, {NAME: fn})
        text = repr(first)
        ok = repr(second) == text and len(text) <= MAX and ast.literal_eval(text) == first
        out.append({"call": source, "result": text if ok else None, "error": None if ok else "not assertable"})
    except BaseException as exc:
        out.append({"call": source, "result": None, "error": type(exc).__name__})
print(MARK + json.dumps(out))
"""


def record_calls(
    unit: CodeUnit,
    tree: RepoTree,
    candidates: list[tuple[str, str]],
    limits: SandboxLimits,
    python: str | None = None,
) -> tuple[list[Call], str]:
    """Run the original function on every candidate in two sandboxed runs at least ``RERUN_GAP_S`` apart; a call
    keeps its result only when both runs (and both calls within each run) agree, so results that depend on the
    clock, the process or randomness are not asserted. Returns (calls, a note)."""
    if not candidates:
        return [], "no candidate call"
    module = module_name(unit.path)
    script = f"MODULE, NAME, MAX, MARK = {module!r}, {unit.name!r}, {MAX_REPR_CHARS}, {_MARK!r}\n" + _RECORDER
    files = {**tree.files, "calls.json": json.dumps([c for c, _ in candidates]), "doctune_record_calls.py": script}
    runs = []
    for attempt in range(2):
        started = time.monotonic()
        result = run_python_script(files, "doctune_record_calls.py", limits, python)
        line = next((ln for ln in result.stdout.splitlines() if _MARK in ln), None)
        if line is None:
            return [], f"recording failed: {result.summary()}"
        runs.append(json.loads(line.split(_MARK, 1)[1]))
        if attempt == 0:
            time.sleep(max(0.0, RERUN_GAP_S - (time.monotonic() - started)))
    origins = dict(candidates)
    calls = []
    for first, second in zip(*runs, strict=True):
        result, error = first["result"], first["error"]
        if result is not None and second["result"] != result:
            result, error = None, "differs between runs"
        calls.append(Call(first["call"], origins.get(first["call"], "signature"), result, error))
    return calls, "recorded"
