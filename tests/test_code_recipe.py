"""Code recipes (``doctune generate code``): example calls, characterization tests in the repository's style, the
explanation identifier check, no verbatim question, mutants caught and not caught, pass@1 scoring and its self
check, refusal without isolation, and the recipe end to end on a small repository with a scripted model."""

from __future__ import annotations

import json
import textwrap

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from doctune.cli import app
from doctune.code_examples.build import CodeExampleBuilder, reproduces_unit
from doctune.code_examples.calls import Call, doctest_calls, first_call_in, literal_call, signature_calls
from doctune.code_examples.checks import code_from_reply
from doctune.code_examples.explain import built_explanation, code_without_docs, unknown_identifiers
from doctune.code_examples.tests import TestStyle, characterization_test, detect_style
from doctune.code_examples.tree import RepoTree, import_path, module_name
from doctune.config import load_config
from doctune.llm.fake import FakeBackend
from doctune.recipes import get_recipe
from doctune.records import CodeUnit, Example
from doctune.sandbox import runner as sandbox_runner
from doctune.workspace import Workspace

runner = CliRunner()

CORE = textwrap.dedent(
    '''\
    """Small helpers."""
    import re


    def clamp(value: int, low: int, high: int) -> int:
        """Limit value to the range [low, high].

        >>> clamp(15, 0, 10)
        10
        """
        if value < low:
            return low
        if value > high:
            return high
        return value


    def scale(value: int, factor: int = 2) -> int:
        """Value times factor, plus one.

        >>> scale(3)
        7
        """
        return value * factor + 1


    def slug(text: str) -> str:
        """Lower-case words joined by dashes.

        >>> slug("Hello World")
        'hello-world'
        """
        # words only
        return "-".join(re.findall(r"[a-z0-9]+", text.lower()))


    def shout(word):
        """The word in capitals, with a bang."""
        return word.upper() + "!"


    def same(x):
        """Whatever it is given (a mutant of `x or x` changes nothing)."""
        return x or x


    class Counter:
        """Counts things."""

        def add(self, n: int = 1) -> int:
            """Add n and return the total."""
            self.total = getattr(self, "total", 0) + n
            return self.total

        def reset(self):
            """Start again from zero."""
            self.total = 0
            return self
    '''
)
REPO_TEST = textwrap.dedent(
    """\
    import toy.core


    def test_shout():
        assert toy.core.shout("hi") == "HI!"


    def test_counter_adds():
        counter = toy.core.Counter()
        assert counter.add(2) == 2
        assert counter.add() == 3
    """
)


def unit(body: str, name: str, qualname: str | None = None, kind: str = "function", path: str = "toy/core.py", **kw):
    body = textwrap.dedent(body).strip("\n")
    return CodeUnit(
        unit_id=f"u-{qualname or name}",
        repo="toy",
        path=path,
        language="python",
        kind=kind,
        name=name,
        qualname=qualname or name,
        body=body,
        line_start=1,
        line_end=len(body.splitlines()),
        **kw,
    )


def _source_of(name: str) -> str:
    import ast

    node = next(n for n in ast.parse(CORE).body if getattr(n, "name", None) == name)
    return ast.get_source_segment(CORE, node)


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no doctune.yaml of the checkout: defaults plus --set


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "toy-repo"
    (root / "src" / "toy").mkdir(parents=True)
    (root / "src" / "toy" / "__init__.py").write_text("")
    (root / "src" / "toy" / "core.py").write_text(CORE)
    (root / "tests").mkdir()
    (root / "tests" / "test_core.py").write_text(REPO_TEST)
    (root / "LICENSE").write_text("MIT License\n\nPermission is hereby granted, free of charge, to any person")
    return root


# -- pure pieces ------------------------------------------------------------------------------
def test_literal_calls_doctests_and_signature_values():
    assert literal_call("mod.clamp(15, 0, 10)", "clamp") == "clamp(15, 0, 10)"
    assert literal_call("clamp(x, 0, 1)", "clamp") is None  # not a literal
    assert literal_call("other(1)", "clamp") is None
    assert first_call_in("def clamp(a):\n  pass\nUse clamp(3, 1, 2) here", "clamp") == "clamp(3, 1, 2)"
    c = unit(_source_of("clamp"), "clamp", docstring="Limit.\n\n>>> clamp(15, 0, 10)\n10")
    assert doctest_calls(c) == ["clamp(15, 0, 10)"]
    calls = signature_calls(c)
    assert calls and all(literal_call(call, "clamp") for call in calls)


def test_characterization_test_follows_the_repository_style():
    tree = RepoTree("toy", {"toy/core.py": CORE, "tests/test_core.py": REPO_TEST}, ["tests/test_core.py"])
    style = detect_style(tree)
    assert style == TestStyle("pytest", import_module=True)
    c = unit("def shout(word):\n    return word.upper()", "shout")
    text = characterization_test(
        c, [Call("shout('a')", "signature", "'A'"), Call("shout(1)", "model", None, "AttributeError")], style
    )
    assert text == "from toy import core\n\n\ndef test_shout():\n    assert core.shout('a') == 'A'\n"
    unittest_style = characterization_test(c, [Call("shout('a')", "doctest", "'A'")], TestStyle("unittest", False))
    assert "class TestShout(unittest.TestCase)" in unittest_style and "from toy.core import shout" in unittest_style
    assert characterization_test(c, [Call("shout('a')", "doctest", "None")], style) is None  # only None asserted


def test_tree_src_layout_and_replacing_a_method():
    assert import_path("src/toy/core.py") == "toy/core.py" and module_name("src/toy/__init__.py") == "toy"
    text = "class A:\n    def f(self):\n        return 1\n"
    tree = RepoTree("toy", {"toy/a.py": text})
    method = CodeUnit(
        unit_id="m",
        repo="toy",
        path="src/toy/a.py",
        language="python",
        kind="method",
        name="f",
        qualname="A.f",
        body="    def f(self):\n        return 1",
        line_start=2,
        line_end=3,
    )
    assert (
        tree.replaced(method, "def f(self):\n    return 2\n")["toy/a.py"]
        == "class A:\n    def f(self):\n        return 2\n"
    )


def test_explanation_check_rejects_identifiers_the_unit_lacks():
    c = unit(_source_of("slug"), "slug", docstring="Lower-case words joined by dashes.", imports=["import re"])
    built = built_explanation(c)
    assert unknown_identifiers(built, c) == []  # built from the unit's own facts
    assert "`re.findall`" in built and "`text` (str)" in built
    assert unknown_identifiers("It calls `re.findall` on `text`.", c) == []
    assert unknown_identifiers("It calls `slugify_text` and then normalize_unicode(text).", c) == [
        "normalize_unicode",
        "slugify_text",
    ]
    stripped = code_without_docs(c)
    assert '"""' not in stripped and "# words only" not in stripped and "re.findall" in stripped


def test_no_question_reproduces_a_unit():
    c = unit("def shout(word):\n    return word.upper() + '!'", "shout")
    assert reproduces_unit("Explain:\ndef shout(word):\n        return word.upper() + '!'", [c])
    assert not reproduces_unit("Explain:\ndef shout(word):\n    return word.upper() + '?'", [c])


def test_code_from_reply():
    reply = "Here:\n```python\nimport re\n\ndef slug(text):\n    return text\n```\nDone."
    assert code_from_reply(reply, "slug") == "def slug(text):\n    return text"
    assert code_from_reply("no code here", "slug") is None
    assert code_from_reply("```python\ndef other():\n    pass\n```", "slug") is None


# -- sandboxed: builder on a real tree --------------------------------------------------------
def _units_of(repo, tmp_path):
    ws = tmp_path / "w"
    res = runner.invoke(app, ["--workspace", str(ws), "ingest", "--as", "code", str(repo)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return [CodeUnit(**r) for r in pq.read_table(ws / "artifacts" / "code_units.parquet").to_pylist()]


def test_builder_keeps_caught_mutants_and_drops_the_rest(repo, tmp_path):
    units = _units_of(repo, tmp_path)
    tree = RepoTree.from_units(units, "toy-repo")
    assert set(tree.files) == {"toy/__init__.py", "toy/core.py", "tests/test_core.py"}
    config = load_config(None, ["code.max_mutants=3"]).code
    builder = CodeExampleBuilder(tree, detect_style(tree), config)
    by_name = {u.qualname: u for u in units}
    file_units = [u for u in units if u.path == "src/toy/core.py" and u.kind != "module"]

    made = builder.unit_examples(by_name["scale"], file_units)
    kinds = [f.kind for _, f in made.examples]
    assert kinds.count("docstring_to_code") == 1 and "write_test" in kinds and "fix_bug" in kinds
    fix = next(f for _, f in made.examples if f.kind == "fix_bug")
    assert fix.test_source == "generated" and "assert core.scale(3) == 7" in fix.test_code
    assert fix.mutant and "fails on the mutant" in fix.verdict
    messages = next(m for m, f in made.examples if f.kind == "fix_bug")
    assert "Failure:" in messages[0]["content"] and messages[1]["content"].startswith("```python\ndef scale(")

    # clamp's boundary flips change nothing the recorded calls reach: its test catches only `return None`, too weak
    clamp = builder.unit_examples(by_name["clamp"], file_units)
    assert clamp.counts["write_test dropped (catches only `return None` mutants)"] == 1
    assert [f.kind for _, f in clamp.examples].count("fix_bug") >= 1  # the caught mutant still makes a fix example

    same = builder.unit_examples(by_name["same"], file_units)  # `x or x` -> `x and x` changes nothing
    assert same.counts["mutants not caught (dropped)"] == 1 and same.counts["mutants caught"] == 1
    fixes = [f.mutant for _, f in same.examples if f.kind == "fix_bug"]
    assert len(fixes) == 1 and "return None" in fixes[0]  # the caught one only; `or` -> `and` is dropped

    method = builder.unit_examples(by_name["Counter.add"], file_units)  # only the repository's test reaches it
    d2c = next(f for _, f in method.examples if f.kind == "docstring_to_code")
    assert (d2c.test_source, d2c.test_file, d2c.test_code) == ("repository", "tests/test_core.py", "")
    assert method.counts["mutants caught"] >= 1
    assert {f.test_source for _, f in method.examples if f.kind == "fix_bug"} == {"repository"}

    untested = builder.unit_examples(by_name["Counter.reset"], file_units)
    d2c = next(f for _, f in untested.examples if f.kind == "docstring_to_code")
    assert d2c.test_source == "none" and d2c.verdict.startswith("untested")
    assert not [f for _, f in untested.examples if f.kind in ("fix_bug", "write_test")]
    for messages, _ in made.examples + clamp.examples + same.examples + method.examples + untested.examples:
        assert not reproduces_unit(messages[0]["content"], file_units)


def test_model_explanations_are_checked(repo, tmp_path):
    units = _units_of(repo, tmp_path)
    tree = RepoTree.from_units(units, "toy-repo")
    slug = next(u for u in units if u.qualname == "slug")
    config = load_config(None, ["code.kinds=[explain]"]).code
    builder = CodeExampleBuilder(tree, detect_style(tree), config, None, "model", lambda u: "It calls `make_slug`.")
    made = builder.unit_examples(slug, [slug])
    assert made.counts["model explanation rejected (names identifiers the unit lacks)"] == 1
    assert [f.explanation_source for _, f in made.examples] == ["docstring"]  # fell back to the built one
    ok = CodeExampleBuilder(
        tree, detect_style(tree), config, None, "model", lambda u: "It lower-cases `text` with `re.findall`."
    )
    assert [f.explanation_source for _, f in ok.unit_examples(slug, [slug]).examples] == ["model"]


# -- the recipe end to end ---------------------------------------------------------------------
FakeBackend.register_script(
    "code-calls", lambda messages: "clamp(-5, 0, 10)" if "clamp" in messages[-1].content else "shout('hey')"
)


def _generate(repo, tmp_path):
    ws = tmp_path / "w"
    args = [
        "--workspace",
        str(ws),
        "--set",
        "models.generator.backend=fake",
        "--set",
        "models.generator.model=code-calls",
        "--set",
        "code.eval_share=0.5",
        "--set",
        "code.max_mutants=2",
        "--set",
        "code.max_units=7",
    ]
    assert runner.invoke(app, [*args, "ingest", "--as", "code", str(repo)]).exit_code == 0
    res = runner.invoke(app, [*args, "generate", "code"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*args, "curate", "examples", "code"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    config = load_config(None, [a for a in args[3::2]], workspace=str(ws))
    return config, Workspace(ws)


def test_recipe_end_to_end_with_pass_at_1_grader(repo, tmp_path):
    config, ws = _generate(repo, tmp_path)
    rows = pq.read_table(ws.root / "artifacts" / "dataset_code.parquet").to_pylist()
    examples = [Example(**{k: r[k] for k in Example.model_fields if k in r}) for r in rows]
    fields = [e.field_values() for e in examples]
    assert {"docstring_to_code", "explain", "write_test", "fix_bug"} <= {f["kind"] for f in fields}
    assert any(f["call_origins"].get("model") for f in fields)  # the scripted model's call was recorded
    assert {e.split for e in examples} <= {"train", "eval", "heldout"}
    evals = [e for e in examples if e.split == "eval"]
    assert evals and {e.field_values()["kind"] for e in evals} <= {"docstring_to_code", "fix_bug"}

    recipe = get_recipe("code")
    recipe.prepare_eval(config, ws, examples)
    assert recipe.grader_check["passed"], recipe.grader_check
    d2c = next(e for e in evals if e.field_values()["kind"] == "docstring_to_code")
    assert recipe.score_reply(d2c, d2c.target) == {"pass_at_1": 1.0}
    name = e_name = d2c.field_values()["qualname"]
    wrong = f"```python\ndef {e_name}(*args, **kwargs):\n    return 'wrong'\n```"
    assert recipe.score_reply(d2c, wrong) == {"pass_at_1": 0.0}
    assert recipe.score_reply(d2c, f"def {name}(") == {"pass_at_1": 0.0}  # does not parse
    explain = next((e for e in examples if e.field_values()["kind"] == "explain"), None)
    assert explain is not None and recipe.score_reply(explain, "anything") == {}
    # every example's stored test re-runs to the stored verdict: passes on the original
    for e in examples:
        if e.field_values()["test_source"] != "none" and e.field_values()["kind"] in ("docstring_to_code", "fix_bug"):
            assert recipe.code_passes(e, e.target) == 1.0, e.field_values()["verdict"]


def test_generate_code_refuses_without_isolation(repo, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox_runner, "_probe_cache", (False, "no namespaces here (test)"))
    ws = tmp_path / "w"
    assert runner.invoke(app, ["--workspace", str(ws), "ingest", "--as", "code", str(repo)]).exit_code == 0
    res = runner.invoke(app, ["--workspace", str(ws), "generate", "code"])
    assert res.exit_code == 1
    assert "refusing to execute code without OS-level isolation: no namespaces here (test)" in res.output
    assert not (ws / "artifacts" / "examples_code.parquet").exists()
    assert json.loads((ws / "manifest.json").read_text())  # the workspace is intact


def _judge_by_name(messages):
    """A judge that checks the explanation names the function the code defines (right on the self-check)."""
    import re

    text = messages[-1].content
    defined = re.search(r"def (\w+)", text).group(1)
    named = re.search(r"Explanation:\n`([\w.]+)`", text)
    return "accurate" if named and named.group(1).split(".")[-1] == defined else "inaccurate"


FakeBackend.register_script("code-judge-always-yes", lambda messages: "accurate")
FakeBackend.register_script("code-judge-by-name", _judge_by_name)


def test_the_explanation_judge_is_used_only_after_passing_its_check():
    from doctune.code_examples.judge import ExplanationJudge
    from doctune.config import ModelSpec
    from doctune.llm.client import LLMClient
    from doctune.llm.registry import create_backend

    units = [
        unit(f"def f{i}(x):\n    '''Doc {i}.'''\n    return x + {i}", f"f{i}", docstring=f"Doc {i}.") for i in range(4)
    ]

    def judge(model):
        return ExplanationJudge(LLMClient(create_backend(ModelSpec(backend="fake", model=model))))

    assert judge("code-judge-always-yes").run_check(units)["passed"] is False  # says yes to another unit's facts
    check = judge("code-judge-by-name").run_check(units)
    assert check["passed"] is True and check["agreement"] == 1.0 and check["n"] == 8


def _explainer(messages):
    """Calls for call prompts; for explanation prompts: right for `scale`, a made-up helper for `slug`, and for the
    rest a text that names nothing wrong but does not start with the function's name (the judge says inaccurate)."""
    import re

    if "You explain Python code" not in messages[0].content:
        return "scale(4, 3)"
    name = re.search(r"def (\w+)", messages[-1].content).group(1)
    if name == "scale":
        return "`scale` multiplies `value` by `factor` and adds one."
    if name == "slug":
        return "It calls `make_slug_helper` on `text`."
    return "It returns something."


FakeBackend.register_script("code-explainer", _explainer)


@pytest.mark.parametrize("judge_model", ["code-judge-by-name", "code-judge-always-yes"])
def test_model_explanations_through_the_recipe_with_a_judge(repo, tmp_path, judge_model):
    ws = tmp_path / "w"
    sets = [
        "models.generator.backend=fake",
        "models.generator.model=code-explainer",
        "models.judge.backend=fake",
        f"models.judge.model={judge_model}",
        "code.explanations=model",
        "code.judge_explanations=true",
        "code.kinds=[explain]",
    ]
    args = ["--workspace", str(ws), *[x for s in sets for x in ("--set", s)]]
    assert runner.invoke(app, [*args, "ingest", "--as", "code", str(repo)]).exit_code == 0
    res = runner.invoke(app, [*args, "generate", "code"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    stats = json.loads((ws / "manifest.json").read_text())["artifacts"]["examples_code"]["stats"]
    rows = pq.read_table(ws / "artifacts" / "examples_code.parquet").to_pylist()
    by_unit = {json.loads(r["fields"])["qualname"]: json.loads(r["fields"]) for r in rows}
    if judge_model == "code-judge-by-name":  # passes its check: used
        assert stats["judge_check"]["passed"] is True and stats["explanations"] == "model"
        assert by_unit["scale"]["explanation_source"] == "model"
        assert stats["counts"]["model explanation rejected (names identifiers the unit lacks)"] == 1  # slug
        assert stats["counts"]["model explanation rejected (the judge: inaccurate)"] >= 1
        assert by_unit["slug"]["explanation_source"] == "docstring"
    else:  # says yes to everything: fails its check, so no model text is trusted
        assert stats["judge_check"]["passed"] is False and stats["explanations"] == "docstring"
        assert {f["explanation_source"] for f in by_unit.values()} == {"docstring"}


def test_a_unit_that_breaks_the_builder_is_reported_and_the_rest_goes_on(repo, tmp_path, monkeypatch):
    original = CodeExampleBuilder.unit_examples

    def breaking(self, unit, file_units):
        if unit.qualname == "shout":
            raise RuntimeError("boom")
        return original(self, unit, file_units)

    monkeypatch.setattr(CodeExampleBuilder, "unit_examples", breaking)
    ws = tmp_path / "w"
    args = [
        "--workspace",
        str(ws),
        "--set",
        "models.generator.backend=fake",
        "--set",
        "models.generator.model=code-calls",
    ]
    args += ["--set", "code.kinds=[docstring_to_code]", "--set", "code.workers=2"]
    assert runner.invoke(app, [*args, "ingest", "--as", "code", str(repo)]).exit_code == 0
    res = runner.invoke(app, [*args, "generate", "code"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "src/toy/core.py:shout: RuntimeError: boom" in res.output
    rows = pq.read_table(ws / "artifacts" / "examples_code.parquet").to_pylist()
    names = {json.loads(r["fields"])["qualname"] for r in rows}
    assert "shout" not in names and {"clamp", "scale", "slug"} <= names
