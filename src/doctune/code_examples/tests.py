"""The repository's test style, and characterization tests written in it from recorded calls.

A characterization test asserts what the original function returned on each recorded call
(:mod:`doctune.code_examples.calls`), so it is right by construction for the original; whether it *tests*
anything is checked separately (it must fail on a mutant, :mod:`doctune.code_examples.checks`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from doctune.code_examples.calls import Call
from doctune.code_examples.tree import RepoTree, module_name
from doctune.records import CodeUnit

GENERATED_TEST_FILE = "test_doctune_generated.py"


@dataclass(frozen=True)
class TestStyle:
    """How the repository's own tests are written (what a generated test imitates)."""

    __test__ = False  # not a pytest class

    framework: str = "pytest"  # pytest | unittest
    import_module: bool = False
    """True: ``import pkg.mod`` / ``from pkg import mod`` and calls as ``mod.name(...)``; False: ``from pkg.mod import
    name``."""


def detect_style(tree: RepoTree) -> TestStyle:
    """The majority style of the repository's test files (pytest functions with from-imports when it has none)."""
    unittest_files = pytest_files = module_imports = name_imports = 0
    for path in tree.tests:
        text = tree.files[path]
        if re.search(r"unittest\.TestCase|\(TestCase\)", text):
            unittest_files += 1
        elif re.search(r"^def test_|^    def test_", text, re.M):
            pytest_files += 1
        module_imports += len(re.findall(r"^import \w+(\.\w+)*\s*$", text, re.M))
        name_imports += len(re.findall(r"^from [\w.]+ import ", text, re.M))
    framework = "unittest" if unittest_files > pytest_files else "pytest"
    # `import pytest` / `import os` count as module imports too: only a clear majority switches the style
    project_modules = sum(
        1
        for path in tree.tests
        for mod in {module_name(p).split(".")[0] for p in tree.files if p not in tree.tests}
        if re.search(rf"^import {re.escape(mod)}\b", tree.files[path], re.M)
    )
    return TestStyle(framework=framework, import_module=project_modules > 0 and module_imports >= name_imports)


def _test_name(name: str) -> str:
    return "test_" + name.lstrip("_")


def characterization_test(unit: CodeUnit, calls: Sequence[Call], style: TestStyle) -> str | None:
    """A test file asserting the recorded result of every call with one (None when there is none)."""
    asserted = [c for c in calls if c.result is not None]
    if all(c.result == "None" for c in asserted):  # nothing but None asserted: no test of what it computes
        return None
    module = module_name(unit.path)
    if style.import_module:
        if "." in module:
            package, _, leaf = module.rpartition(".")
            header, prefix = f"from {package} import {leaf}", f"{leaf}."
        else:
            header, prefix = f"import {module}", f"{module}."
    else:
        header, prefix = f"from {module} import {unit.name}", ""
    lines = [f"{prefix}{c.source}" for c in asserted]
    if style.framework == "unittest":
        body = "\n".join(
            f"        self.assertEqual({call}, {c.result})" for call, c in zip(lines, asserted, strict=True)
        )
        class_name = "Test" + "".join(part.capitalize() for part in unit.name.strip("_").split("_"))
        return f"import unittest\n\n{header}\n\n\nclass {class_name}(unittest.TestCase):\n    def {_test_name(unit.name)}(self):\n{body}\n"
    body = "\n".join(f"    assert {call} == {c.result}" for call, c in zip(lines, asserted, strict=True))
    return f"{header}\n\n\ndef {_test_name(unit.name)}():\n{body}\n"
