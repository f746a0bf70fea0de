"""Per unit, the code examples of each kind, each with its test code and verdict (see the package docstring).

What each kind keeps (everything else is dropped and counted):

* ``docstring_to_code``: the signature and docstring (and the file's imports) -> the unit's own code, so the answer
  is the repository's code in the repository's style. Its test (generated, or a repository test file that names
  the unit) must pass on it; a unit no test reaches keeps its example with the verdict ``untested``.
* ``explain``: the code without docstring and comments -> an explanation (built from the unit's facts, or a
  model's, see :mod:`.explain`) that names no identifier the unit lacks.
* ``write_test``: signature and docstring -> a characterization test, kept only when it passes on the original
  and fails on at least one mutant (not only on ``return None`` mutants when the unit has mutants of other kinds:
  any assertion of a value catches those). Mutant line numbers count from the unit's first line.
* ``fix_bug``: a mutated copy and the failure it causes -> the original, only for mutants a test catches.

No question may contain the unit's code verbatim (nor any other unit of its file): :func:`reproduces_unit`.
"""

from __future__ import annotations

import logging
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from doctune.code_examples.calls import Call, candidate_calls, record_calls, testable
from doctune.code_examples.checks import UnitTest, failure_lines, generated_test, original_passes
from doctune.code_examples.explain import built_explanation, code_without_docs, unknown_identifiers
from doctune.code_examples.tests import TestStyle, characterization_test
from doctune.code_examples.tree import RepoTree, dedent_unit, module_name, parse_definition
from doctune.records import CodeUnit
from doctune.sandbox import SandboxLimits, mutants

if TYPE_CHECKING:
    from doctune.config_code import CodeConfig
    from doctune.llm.client import LLMClient

log = logging.getLogger(__name__)


class CodeFields(BaseModel):
    """The typed fields of a code example: where it comes from, and how to re-run its check."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="docstring_to_code | explain | write_test | fix_bug")
    repo: str
    path: str = Field(description="The unit's file in the repository.")
    qualname: str
    line_start: int = Field(description="The unit's first line in its file (its decorators included).")
    line_end: int
    unit_kind: str = Field(description="function | method | class")
    licence: str = ""
    test_source: str = Field(description="generated | repository | none")
    test_file: str = Field("", description="The test file to run (a generated file's name, or the repository's).")
    test_code: str = Field("", description="The generated test's code ('' for a repository test or none).")
    verdict: str = Field(description="What the sandboxed runs showed, in words.")
    mutant: str = Field("", description="fix_bug: the mutation (e.g. line 3: `<` -> `<=`).")
    mutants_tried: int = 0
    mutants_caught: int = 0
    call_origins: dict[str, int] = Field(default_factory=dict, description="Recorded calls per origin.")
    explanation_source: str = Field("", description="explain: docstring (built from the unit) or model.")


@dataclass
class UnitExamples:
    """What one unit gave: (messages, fields) per example, counts and problems."""

    examples: list[tuple[list[dict[str, str]], CodeFields]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)


def _norm(text: str) -> str:
    return " ".join(text.split())


def reproduces_unit(question: str, units: list[CodeUnit]) -> bool:
    """Whether ``question`` contains any of ``units``' code verbatim (whitespace-normalised; one-line units are too
    short to count)."""
    asked = _norm(question)
    return any(len(u.body.strip().splitlines()) > 1 and _norm(u.body) in asked for u in units)


def has_body(unit: CodeUnit) -> bool:
    """Whether the unit does something besides its docstring (``pass``/``...`` bodies do not)."""
    node = parse_definition(unit.body)
    if node is None:
        return False
    stmts = node.body[1:] if unit.docstring else node.body
    import ast

    return any(
        not (isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))) for s in stmts
    )


def _fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def _header(unit: CodeUnit) -> str:
    owner = f" (a method of class `{unit.qualname.rsplit('.', 1)[0]}`)" if unit.kind == "method" else ""
    return f"`{unit.qualname}`{owner} in module `{module_name(unit.path)}` (`{unit.path}`)"


def _spec(unit: CodeUnit) -> str:
    doc = textwrap.indent(unit.docstring.strip(), "    ")
    return f"Signature:\n{_fenced(textwrap.dedent(unit.signature))}\nDocstring:\n{doc}"


@dataclass
class CodeExampleBuilder:
    """Makes the examples of the units of one repository (holds the repository and what is shared across units)."""

    tree: RepoTree
    style: TestStyle
    config: CodeConfig
    client: LLMClient | None = None
    """The generator model, for example calls (and model explanations); None: no model call."""
    explanation_source: str = "docstring"
    explainer: Any = None
    """A callable (unit -> explanation text) for model explanations; None: built explanations only."""
    judge: Any = None
    """A callable ((unit, explanation) -> accurate?) of a judge that passed its check; None: no judge."""
    _repo_baseline: dict[str, bool] = field(default_factory=dict)

    @property
    def limits(self) -> SandboxLimits:
        return SandboxLimits(
            timeout_s=self.config.timeout_s, cpu_s=self.config.timeout_s, memory_mb=self.config.memory_mb
        )

    def _repository_tests(self, unit: CodeUnit) -> list[UnitTest]:
        if not self.config.repository_tests:
            return []
        found = []
        for path in self.tree.tests_mentioning(unit.name)[:2]:
            if path not in self._repo_baseline:
                result = UnitTest("repository", path).run(self.tree.files, self.limits, self.config.python)
                self._repo_baseline[path] = result.status == "passed"
                if result.status != "passed":
                    log.info("repository test %s does not pass on the original: %s", path, result.summary(200))
            if self._repo_baseline[path]:
                found.append(UnitTest("repository", path))
        return found

    def _tests_of(self, unit: CodeUnit, out: UnitExamples) -> tuple[list[UnitTest], list[Call]]:
        tests: list[UnitTest] = []
        asserted: list[Call] = []
        reason = testable(unit, self.tree)
        if reason is None:
            candidates = candidate_calls(unit, self.client if self.config.model_calls else None, self.config.max_calls)
            out.counts["candidate calls"] += len(candidates)
            calls, note = record_calls(unit, self.tree, candidates, self.limits, self.config.python)
            if note == "no candidate call":
                out.counts["no candidate call (no literal value for a parameter)"] += 1
            elif note != "recorded":
                out.errors.append({"unit_id": f"{unit.path}:{unit.qualname}", "reason": note})
            kept = [c for c in calls if c.result is not None][: self.config.max_calls]
            out.counts["calls recorded"] += len(kept)
            out.counts.update(f"calls dropped ({c.error})" for c in calls if c.result is None)
            code = characterization_test(unit, kept, self.style)
            if code is not None:
                test = generated_test(code)
                result = original_passes(self.tree, unit, test, self.limits, self.config.python)
                if result.status == "passed":
                    tests.append(test)
                    asserted = kept
                else:
                    out.counts["generated test fails on the original"] += 1
                    out.errors.append(
                        {"unit_id": f"{unit.path}:{unit.qualname}", "reason": f"generated test: {result.summary(200)}"}
                    )
        else:
            out.counts[f"no recorded calls ({reason})"] += 1
        tests += self._repository_tests(unit)
        return tests, asserted

    def unit_examples(self, unit: CodeUnit, file_units: list[CodeUnit]) -> UnitExamples:
        out = UnitExamples()
        kinds = set(self.config.kinds)
        tests, asserted = self._tests_of(unit, out)
        origins = dict(Counter(c.origin for c in asserted))
        base = {
            "repo": unit.repo,
            "path": unit.path,
            "qualname": unit.qualname,
            "unit_kind": unit.kind,
            "line_start": unit.line_start,
            "line_end": unit.line_end,
            "licence": unit.licence,
            "call_origins": origins,
        }
        original = dedent_unit(unit)

        # mutants, each tried against the tests in order until one catches it
        caught: list[tuple[Any, UnitTest, str]] = []
        tried = 0
        generated_caught: list[Any] = []
        tried_kinds: set[str] = set()
        if tests and ({"fix_bug", "write_test"} & kinds):
            for mutant in mutants(original, self.config.max_mutants):
                tried += 1
                tried_kinds.add(mutant.kind)
                out.counts[f"mutants tried ({mutant.kind})"] += 1
                for test in tests:
                    result = test.run(self.tree.replaced(unit, mutant.source), self.limits, self.config.python)
                    if result.status in ("failed", "timeout"):
                        caught.append((mutant, test, failure_lines(result)))
                        out.counts[f"mutants caught ({mutant.kind})"] += 1
                        if test.source == "generated":
                            generated_caught.append(mutant)
                        break
            out.counts["mutants tried"] += tried
            out.counts["mutants caught"] += len(caught)
            out.counts["mutants not caught (dropped)"] += tried - len(caught)
        counts = {"mutants_tried": tried, "mutants_caught": len(caught)}

        def add(kind: str, question: str, answer: str, **values: Any) -> None:
            if reproduces_unit(question, file_units):
                out.counts[f"{kind} dropped (question reproduces a unit)"] += 1
                return
            fields = CodeFields(kind=kind, **base, **counts, **values)
            out.examples.append(
                ([{"role": "user", "content": question}, {"role": "assistant", "content": answer}], fields)
            )
            out.counts[f"{kind} kept"] += 1

        def test_fields(test: UnitTest | None) -> dict[str, str]:
            if test is None:
                return {"test_source": "none", "test_file": "", "test_code": ""}
            return {"test_source": test.source, "test_file": test.path, "test_code": test.code}

        if "docstring_to_code" in kinds and unit.docstring.strip() and has_body(unit):
            test = tests[0] if tests else None
            verdict = f"passes its {test.source} test on the original" if test else "untested: no test reaches it"
            imports = "\n".join(unit.imports[:12])
            question = (
                f"Write {_header(unit)}.\n{_spec(unit)}\n"
                + (f"The module's imports:\n{_fenced(imports)}\n" if imports else "")
                + "Reply with the code only."
            )
            add("docstring_to_code", question, _fenced(original), verdict=verdict, **test_fields(test))

        if "explain" in kinds and has_body(unit):
            self._explain(unit, add, out)

        gen = next((t for t in tests if t.source == "generated"), None)
        only_return = bool(generated_caught) and all(m.kind == "return" for m in generated_caught)
        if "write_test" in kinds and gen is not None:
            if only_return and tried_kinds - {"return"}:  # asserting any value catches `return None`: too weak
                out.counts["write_test dropped (catches only `return None` mutants)"] += 1
            elif generated_caught:
                question = f"Write a {self.style.framework} test for {_header(unit)}.\n{_spec(unit)}"
                add(
                    "write_test",
                    question,
                    _fenced(gen.code),
                    verdict="passes on the original; fails on mutants: "
                    + "; ".join(m.description for m in generated_caught),
                    **test_fields(gen),
                )
            else:
                out.counts["write_test dropped (catches no mutant)"] += 1

        if "fix_bug" in kinds:
            for mutant, test, failure in caught[: self.config.fix_examples_per_unit]:
                shown = _fenced(test.code) if test.source == "generated" else f"`{test.path}` (the repository's test)"
                question = (
                    f"{_header(unit)} has a bug: this test fails on it.\n{_fenced(mutant.source)}\nFailing test: {shown}\n"
                    + (f"Failure:\n{failure}\n" if failure else "")
                    + "Fix the bug and reply with the corrected code only."
                )
                add(
                    "fix_bug",
                    question,
                    _fenced(original),
                    mutant=mutant.description,
                    verdict=f"the {test.source} test passes on the original and fails on the mutant ({mutant.description})",
                    **test_fields(test),
                )
        return out

    def _explain(self, unit: CodeUnit, add: Any, out: UnitExamples) -> None:
        code = code_without_docs(unit)
        if _norm(code) == _norm(unit.body):
            out.counts["explain dropped (no docstring or comment to leave out)"] += 1
            return
        question = f"Explain what {_header(unit)} does.\n{_fenced(code)}"
        source, text = "docstring", built_explanation(unit)
        if self.explanation_source == "model" and self.explainer is not None:
            proposed = (self.explainer(unit) or "").strip()
            unknown = unknown_identifiers(proposed, unit)
            if not proposed:
                out.counts["model explanation rejected (empty)"] += 1
            elif unknown:
                out.counts["model explanation rejected (names identifiers the unit lacks)"] += 1
                out.errors.append(
                    {"unit_id": f"{unit.path}:{unit.qualname}", "reason": f"explanation names {', '.join(unknown[:5])}"}
                )
            elif self.judge is not None and not self.judge(unit, proposed):
                out.counts["model explanation rejected (the judge: inaccurate)"] += 1
            else:
                source, text = "model", proposed
            if source == "docstring":
                out.counts["explanation built from the unit instead"] += 1
        unknown = unknown_identifiers(text, unit)
        if unknown:  # a built explanation must pass too; if not, the check or the builder is wrong
            out.counts["explain dropped (unknown identifiers)"] += 1
            out.errors.append(
                {"unit_id": f"{unit.path}:{unit.qualname}", "reason": f"explanation names {', '.join(unknown[:5])}"}
            )
            return
        add(
            "explain",
            question,
            text,
            test_source="none",
            verdict=f"{source} explanation names only the unit's identifiers",
            explanation_source=source,
        )


def eligible(unit: CodeUnit) -> bool:
    """A Python function or method of a source file that does something (tests and stubs are not used)."""
    return (
        unit.language == "python"
        and unit.role == "source"
        and unit.kind in ("function", "method")
        and not unit.name.startswith("test")
        and has_body(unit)
    )


def choose_units(units: list[CodeUnit], tree: RepoTree, max_units: int) -> list[CodeUnit]:
    """Up to ``max_units`` eligible units of ``tree``'s repository: module-level functions (whose calls can be
    recorded) first, then methods and the rest, each group evenly spaced over the repository (by path and line)."""
    from doctune.sampling import evenly_spaced

    pool = sorted((u for u in units if u.repo == tree.repo and eligible(u)), key=lambda u: (u.path, u.line_start))
    first = [u for u in pool if testable(u, tree) is None]
    rest = [u for u in pool if testable(u, tree) is not None]
    chosen = evenly_spaced(first, max_units)
    chosen += evenly_spaced(rest, max_units - len(chosen)) if len(chosen) < max_units else []
    return sorted(chosen, key=lambda u: (u.path, u.line_start))
