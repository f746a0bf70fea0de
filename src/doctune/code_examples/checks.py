"""Execution checks: a test on the original and on mutants, and pass@1 of a model's code.

Every run goes through :mod:`doctune.sandbox` (network, PID and mount namespaces, limits, a timeout); nothing here
executes code in doctune's own process.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from doctune.code_examples.tests import GENERATED_TEST_FILE
from doctune.code_examples.tree import RepoTree, dedent_unit
from doctune.records import CodeUnit
from doctune.sandbox import Mutant, SandboxLimits, SandboxResult, run_python_tests

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S)


@dataclass(frozen=True)
class UnitTest:
    """A test that can judge one unit: a generated file (``code`` set) or one of the repository's test files."""

    source: str  # generated | repository
    path: str  # the file to run (GENERATED_TEST_FILE, or the repository test's import path)
    code: str = ""  # the generated test's text ("" for a repository test: its text is the repository's)

    def run(self, files: dict[str, str], limits: SandboxLimits, python: str | None) -> SandboxResult:
        files = {**files, self.path: self.code} if self.source == "generated" else files
        return run_python_tests(files, self.path, limits, python)


@dataclass(frozen=True)
class MutantVerdict:
    mutant: Mutant
    caught: bool
    detail: str
    failure: str = ""
    """The first assertion lines pytest printed for the mutant ("" when not caught)."""


def failure_lines(result: SandboxResult, max_lines: int = 2) -> str:
    """pytest's ``E ...`` lines (what failed and how), at most ``max_lines``."""
    lines = [line[1:].strip() for line in result.stdout.splitlines() if line.startswith("E ")]
    if not lines and result.status == "timeout":
        return "the test timed out"
    return "\n".join(line for line in lines[:max_lines] if line)


def mutant_verdicts(
    tree: RepoTree,
    unit: CodeUnit,
    test: UnitTest,
    mutants: list[Mutant],
    limits: SandboxLimits,
    python: str | None = None,
) -> list[MutantVerdict]:
    """Run ``test`` on each mutant of ``unit`` (the test is known to pass on the original)."""
    verdicts = []
    for mutant in mutants:
        result = test.run(tree.replaced(unit, mutant.source), limits, python)
        if result.status in ("failed", "timeout"):
            verdicts.append(MutantVerdict(mutant, True, f"caught: {result.summary(160)}", failure_lines(result)))
        elif result.status == "passed":
            verdicts.append(MutantVerdict(mutant, False, "not caught: the test passes on the mutant"))
        else:
            verdicts.append(MutantVerdict(mutant, False, f"no verdict: {result.summary(160)}"))
    return verdicts


def code_from_reply(reply: str, name: str) -> str | None:
    """The definition of ``name`` in a model's reply (fenced or not), as written; None when there is none."""
    candidates = [m.group(1) for m in _FENCE.finditer(reply)] or [reply]
    for text in candidates:
        text = textwrap.dedent(text)
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lines = text.splitlines()[start - 1 : node.end_lineno]
                return "\n".join(lines)
    return None


def passes(
    tree: RepoTree, unit: CodeUnit, code: str | None, test: UnitTest, limits: SandboxLimits, python: str | None
) -> bool:
    """Whether ``code`` (a definition of the unit) in place of the unit makes ``test`` pass."""
    if code is None:
        return False
    return test.run(tree.replaced(unit, code), limits, python).status == "passed"


def original_passes(
    tree: RepoTree, unit: CodeUnit, test: UnitTest, limits: SandboxLimits, python: str | None
) -> SandboxResult:
    """The test's run on the unchanged repository (it must pass before it can judge anything)."""
    return test.run(tree.replaced(unit, dedent_unit(unit)), limits, python)


def generated_test(code: str) -> UnitTest:
    return UnitTest("generated", GENERATED_TEST_FILE, code)
