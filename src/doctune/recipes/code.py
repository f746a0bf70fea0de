"""The code recipe (``doctune generate code``): execution-checked examples from a repository's own code.

Reads ``code_units`` (``doctune ingest --as code PATH``). Per chosen unit (``code.max_units``), the kinds of
:mod:`doctune.code_examples.build`: docstring -> code, code -> explanation, write a test, fix this bug. Tests and
solutions run only in the OS-level sandbox (:mod:`doctune.sandbox`); without isolation nothing runs and the stage
stops with the probe's reason. The generator model proposes example calls (the embedded small model's only job);
results are recorded from the original code, never asked of the model.

Split: whole units. ``code.eval_share`` of the units that have a test are held out: their docstring_to_code and
fix_bug examples are ``eval`` (scored by pass@1), their explain and write_test examples ``heldout`` (neither trained
on nor scored). Untested units always train.

Evaluation: ``pass_at_1`` (docstring_to_code) and ``fix_pass_at_1`` (fix_bug): the reply's definition of the unit
replaces the original in the repository and the example's stored test runs in the sandbox; 1 when it passes. The
grader checks itself first (:meth:`CodeRecipe.check_grader`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from doctune.code_examples.build import CodeExampleBuilder, CodeFields, choose_units
from doctune.code_examples.checks import UnitTest, code_from_reply, passes
from doctune.code_examples.tests import detect_style
from doctune.code_examples.tree import RepoTree
from doctune.recipes.base import GateSpec, Recipe, RecipeOutput
from doctune.records import CodeUnit, Example
from doctune.sandbox import SandboxLimits, SandboxUnavailable, isolation_available

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)

SCORED_KINDS = {"docstring_to_code": "pass_at_1", "fix_bug": "fix_pass_at_1"}


class CodeRecipe(Recipe):
    """Examples from a repository's code, each checked by running tests in a sandbox (see the module docstring)."""

    name = "code"
    description = (
        "Code tasks from your repository: docstring->code, explain, write a test, fix a bug; execution-checked."
    )
    inputs = ("code_units",)
    config_sections = ("code", "models.generator", "generate.strategy")
    fields_model = CodeFields
    splits = ("train", "eval", "heldout")
    metrics = ("perplexity", "pass_at_1", "fix_pass_at_1")
    gate = GateSpec(metric="pass_at_1", split="eval", min_margin=0.0)

    def __init__(self) -> None:
        self._trees: dict[str, RepoTree] = {}
        self._units: dict[str, CodeUnit] = {}
        self._limits = SandboxLimits()
        self._python: str | None = None
        self.grader_check: dict[str, Any] = {}

    # -- making examples ------------------------------------------------------------------
    def build_examples(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> RecipeOutput:
        from doctune.code_examples.judge import ExplanationJudge, model_explanation
        from doctune.generate.strategy import resolve_strategy
        from doctune.jobs import Job, run_jobs
        from doctune.llm.roles import open_client

        available, reason = isolation_available()
        if not available:
            raise SandboxUnavailable(f"generate code: refusing to execute code without OS-level isolation: {reason}")
        cfg = config.code
        units = workspace.read_rows("code_units", CodeUnit, config)
        client = open_client(config, workspace, "generator")
        strategy = resolve_strategy(config.generate.strategy, client.backend)
        source = (
            cfg.explanations if cfg.explanations != "auto" else ("model" if strategy == "one_call" else "docstring")
        )
        explainer = (lambda unit: model_explanation(client, unit)) if source == "model" else None
        judge_check: dict[str, Any] = {}
        judge_clients: list[Any] = []
        examples: list[Example] = []
        errors: list[dict[str, str]] = []
        counts: Counter[str] = Counter()
        per_repo: dict[str, dict[str, Any]] = {}
        try:
            for repo in sorted({u.repo for u in units}):
                tree = RepoTree.from_units(units, repo)
                chosen = choose_units(units, tree, cfg.max_units)
                judge = None
                if explainer is not None and cfg.judge_explanations:
                    checked = ExplanationJudge(open_client(config, workspace, "judge"))
                    judge_check = checked.run_check(chosen)
                    judge_clients.append(checked.client)
                    judge = checked.accurate if judge_check.get("passed") else None
                    if judge is None:  # an untrusted judge is not a check: model explanations are not used
                        log.warning(
                            "the explanation judge failed its check (%s): explanations built instead", judge_check
                        )
                        explainer, source = None, "docstring"
                style = detect_style(tree)
                builder = CodeExampleBuilder(
                    tree, style, cfg, client if cfg.model_calls else None, source, explainer, judge
                )
                by_file: dict[str, list[CodeUnit]] = {}
                for unit in units:
                    if unit.repo == repo and unit.kind != "module":
                        by_file.setdefault(unit.path, []).append(unit)
                repo_counts: Counter[str] = Counter()
                jobs = [
                    Job(unit.unit_id, partial(builder.unit_examples, unit, by_file.get(unit.path, [unit])))
                    for unit in chosen
                ]
                workers = cfg.workers or os.cpu_count() or 1  # sandbox runs are processes: one unit per core
                for unit, done in zip(
                    chosen, run_jobs(jobs, workers, client, f"code examples ({repo})", progress), strict=True
                ):
                    if done.error is not None:  # a unit that breaks the builder is reported; the rest goes on
                        errors.append(
                            {
                                "unit_id": f"{unit.path}:{unit.qualname}",
                                "reason": f"{type(done.error).__name__}: {done.error}",
                            }
                        )
                        continue
                    made = done.value
                    repo_counts += made.counts
                    errors += made.errors
                    for messages, fields in made.examples:
                        examples.append(self.example(unit.unit_id, unit.unit_id, messages, fields))
                counts += repo_counts
                per_repo[repo] = {
                    "units": len([u for u in units if u.repo == repo and u.kind != "module"]),
                    "chosen": len(chosen),
                    "style": style.__dict__,
                    "counts": dict(repo_counts),
                }
        finally:
            for opened in [client, *judge_clients]:
                opened.backend.close()
        stats = {
            "explanations": source,
            "judge_check": judge_check,
            "repositories": per_repo,
            "kinds": dict(Counter(e.field_values()["kind"] for e in examples)),
            "counts": dict(counts),
        }
        log.info("code examples: %d (%s)", len(examples), stats["kinds"])
        return RecipeOutput(examples=examples, errors=errors, stats=stats)

    # -- curation -------------------------------------------------------------------------
    def check(self, example: Example) -> list[str]:
        failed = super().check(example)
        values = example.field_values()
        if values.get("kind") in ("write_test", "fix_bug") and not values.get("test_file"):
            failed.append("no_test")
        return failed

    def split_examples(self, examples: Sequence[Example], config: DoctuneConfig) -> dict[str, list[Example]]:
        out: dict[str, list[Example]] = {s: [] for s in self.splits}
        tested = {
            e.group
            for e in examples
            if e.field_values().get("kind") == "docstring_to_code" and e.field_values().get("test_source") != "none"
        }
        for ex in examples:
            digest = int(hashlib.sha256(f"{config.code.seed}:{ex.group}".encode()).hexdigest(), 16)
            held = ex.group in tested and digest % 1000 < config.code.eval_share * 1000
            if not held:
                out["train"].append(ex)
            else:
                out["eval" if ex.field_values().get("kind") in SCORED_KINDS else "heldout"].append(ex)
        return out

    # -- evaluation -----------------------------------------------------------------------
    def prepare_eval(self, config: DoctuneConfig, workspace: Workspace, examples: Sequence[Example]) -> None:
        """The repositories (to run the stored tests) and the grader's own check on the eval examples."""
        units = workspace.read_rows("code_units", CodeUnit, config)
        self._units = {u.unit_id: u for u in units}
        self._trees = {repo: RepoTree.from_units(units, repo) for repo in {u.repo for u in units}}
        cfg = config.code
        self._limits = SandboxLimits(timeout_s=cfg.timeout_s, cpu_s=cfg.timeout_s, memory_mb=cfg.memory_mb)
        self._python = cfg.python
        self.grader_check = self.check_grader([e for e in examples if e.split == self.gate.split])

    def code_passes(self, example: Example, reply: str) -> float | None:
        """1.0 when the reply's definition of the unit makes the example's stored test pass, 0.0 otherwise; None
        for an example without a test or a kind that is not scored."""
        values = example.field_values()
        if values.get("kind") not in SCORED_KINDS or values.get("test_source") == "none":
            return None
        unit = self._units.get(example.unit_id)
        if unit is None or unit.repo not in self._trees:
            raise RuntimeError(f"code example {example.example_id}: its unit is not in code_units (run prepare_eval)")
        test = UnitTest(values["test_source"], values["test_file"], values["test_code"])
        code = code_from_reply(reply, unit.name)
        return 1.0 if passes(self._trees[unit.repo], unit, code, test, self._limits, self._python) else 0.0

    def score_reply(self, example: Example, reply: str) -> dict[str, float]:
        score = self.code_passes(example, reply)
        if score is None:
            return {}
        return {SCORED_KINDS[example.field_values()["kind"]]: score}

    def check_grader(self, examples: Sequence[Example]) -> dict[str, Any]:
        """The pass@1 grader on replies whose verdict is known: the reference (the original code) must pass; the
        question echoed, an empty reply and, for fix_bug, the buggy code from the question must fail."""
        import re

        failures: list[dict[str, str]] = []
        cases: Counter[str] = Counter()
        for ex in examples:
            if ex.field_values().get("kind") not in SCORED_KINDS or ex.field_values().get("test_source") == "none":
                continue
            question = next(m.content for m in reversed(ex.prompt_messages) if m.role == "user")
            known = [("reference", ex.target, 1.0), ("echo", question, 0.0), ("empty", "", 0.0)]
            if ex.field_values()["kind"] == "fix_bug":
                buggy = re.search(r"```python\n(.*?)```", question, re.S)
                if buggy:
                    known.append(("buggy_code", f"```python\n{buggy.group(1)}```", 0.0))
            for case, reply, expected in known:
                cases[case] += 1
                if self.code_passes(ex, reply) != expected:
                    failures.append({"example_id": ex.example_id, "case": case})
        total = sum(cases.values())
        agreement = 1 - len(failures) / total if total else 0.0
        return {
            "passed": bool(total) and agreement >= 0.95,
            "agreement": round(agreement, 4),
            "cases": dict(cases),
            "failures": failures[:20],
            "rule": "reference passes; echo, empty and the buggy code fail",
        }

    def extra_report(
        self, config: DoctuneConfig, workspace: Workspace, examples: Sequence[Example], entries: Any, benches: Any
    ) -> dict[str, Any]:
        """The grader's self-check and every scored reply (base and tuned), with its verdict, to read."""
        by_id = {e.example_id: e for e in examples}
        replies = []
        for entry in entries:
            bench = benches[entry.base_model]
            for (name, key, _), text in sorted(
                bench.cached_replies().items(), key=lambda kv: (str(kv[0][0]), kv[0][1])
            ):
                example = by_id.get(key)
                if example is None or name not in (None, entry.id):
                    continue
                score = self.code_passes(example, text)
                if score is None:
                    continue
                values = example.field_values()
                replies.append(
                    {
                        "example_id": key,
                        "model": "base" if name is None else "tuned",
                        "kind": values["kind"],
                        "unit": f"{values['path']}:{values['qualname']}",
                        "passed": score,
                        "reply": text[:2000],
                    }
                )
        return {"grader_check": self.grader_check, "replies": replies}

    def extra_markdown(self, extra: dict[str, Any]) -> str:
        check = extra.get("grader_check") or {}
        return (
            f"pass@1 grader self-check: {'passed' if check.get('passed') else 'FAILED'}, agreement "
            f"{check.get('agreement')} on {check.get('cases')} ({check.get('rule')})."
        )
