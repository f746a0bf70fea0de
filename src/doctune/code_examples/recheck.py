"""Re-run a code example's stored check from its fields (``scripts/code_recheck.py`` runs it on a workspace).

Each example stores its test (``test_source``, ``test_file``, ``test_code``) and the verdict generation reached;
this repeats the runs in the sandbox and says whether the verdict still holds:

* docstring_to_code with a test: the test passes on the original;
* fix_bug: the test passes on the original and fails on the buggy code shown in the question;
* write_test: the test passes on the original and fails on a mutant the verdict names;
* explain: the explanation names only identifiers of the unit.
"""

from __future__ import annotations

import re
from typing import Any

from doctune.code_examples.checks import UnitTest
from doctune.code_examples.explain import unknown_identifiers
from doctune.code_examples.tree import RepoTree, dedent_unit
from doctune.records import CodeUnit
from doctune.sandbox import SandboxLimits, mutants


def recheck_example(
    fields: dict[str, Any],
    question: str,
    answer: str,
    unit: CodeUnit,
    tree: RepoTree,
    limits: SandboxLimits,
    python: str | None = None,
    max_mutants: int = 20,
) -> tuple[bool, str]:
    """(the stored verdict holds, what the runs showed)."""
    kind = fields["kind"]
    if kind == "explain":
        unknown = unknown_identifiers(answer, unit)
        return not unknown, "names only the unit's identifiers" if not unknown else f"names {', '.join(unknown)}"
    if fields["test_source"] == "none":
        return True, "untested: nothing to run"
    test = UnitTest(fields["test_source"], fields["test_file"], fields["test_code"])
    original = test.run(tree.replaced(unit, dedent_unit(unit)), limits, python)
    if original.status != "passed":
        return False, f"the test does not pass on the original: {original.summary(160)}"
    if kind == "fix_bug":
        buggy = re.search(r"```python\n(.*?)```", question, re.S)
        if buggy is None:
            return False, "no buggy code in the question"
        result = test.run(tree.replaced(unit, buggy.group(1)), limits, python)
        ok = result.status in ("failed", "timeout")
        return ok, "fails on the buggy code" if ok else f"does not fail on the buggy code ({result.status})"
    if kind == "write_test":
        named = fields["verdict"].split("fails on mutants: ", 1)[-1]
        for mutant in mutants(dedent_unit(unit), max_mutants):
            if mutant.description in named:
                result = test.run(tree.replaced(unit, mutant.source), limits, python)
                if result.status in ("failed", "timeout"):
                    return True, f"fails on the mutant {mutant.description}"
        return False, "fails on none of the mutants its verdict names"
    return True, "passes on the original"
