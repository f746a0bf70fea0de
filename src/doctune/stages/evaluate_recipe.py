"""eval --recipe NAME: a recipe's models against their own base, the recipe's gate, and the fidelity benchmark.

For any recipe with a ``dataset_<name>`` of examples: every model (default: the newest registered model of the
recipe per adapter value and base model) is scored on the gate split against the base it was trained from
(:mod:`doctune.evaluate.recipe_eval`); the decision of ``recipe.gate`` is recorded on its registry entry, so
`doctune models promote` refuses a model that failed it. Reports: ``reports/recipe-<name>-<stamp>.json``.

For recipes whose metrics include ``attribution`` or ``style`` and that train one adapter per value (the
character recipe), the fidelity benchmark (:mod:`doctune.evaluate.fidelity`) runs too and writes
``reports/fidelity.json`` and ``reports/fidelity.html``. Each base model is loaded once; its adapters are switched
with PEFT.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from doctune.config import ConfigError, DoctuneConfig
from doctune.evaluate.fidelity import FidelitySettings, Student, fidelity_report
from doctune.evaluate.fidelity_report import fidelity_markdown, write_fidelity_html
from doctune.evaluate.in_character import open_checked_judge
from doctune.evaluate.perplexity import ModelBench
from doctune.evaluate.recipe_eval import adapter_value, evaluate_recipe_models, latest_entries, markdown_summary
from doctune.evaluate.writers import write_json
from doctune.recipes import Recipe, dataset_recipe
from doctune.records import Example, Speech
from doctune.registry import GateRecord, ModelEntry, Registry
from doctune.stages import StageResult
from doctune.train.resolve import BASE, base_model_dir
from doctune.workspace import StaleArtifactError, Workspace

log = logging.getLogger(__name__)

FIDELITY_METRICS = {"attribution", "style"}


def _entries(registry: Registry, recipe: Recipe, models: list[str] | None) -> list[ModelEntry]:
    if models:
        if BASE in models:
            raise ConfigError("eval --recipe compares each model with its own base already: name registry ids only")
        return [registry.get(m) for m in models]
    entries = latest_entries(registry.list_entries(), recipe)
    if not entries:
        raise ConfigError(f"no registered model of recipe {recipe.name!r}: run `doctune train --recipe {recipe.name}`")
    return entries


def _benches(workspace: Workspace, entries: list[ModelEntry]) -> dict[str, ModelBench]:
    """One bench per base model, each with its entries' adapters loaded under their ids."""
    benches: dict[str, ModelBench] = {}
    for entry in entries:
        if entry.base_model not in benches:
            benches[entry.base_model] = ModelBench(base_model_dir(entry.base_model))
        benches[entry.base_model].add(entry.id, workspace.root / entry.weights_path)
    return benches


def _students(recipe: Recipe, entries: list[ModelEntry], compare: list[ModelEntry]) -> list[Student]:
    """The first student (``entries`` not listed in compare_students), then the compared ones, one per base."""
    compare_ids = {e.id for e in compare}
    groups: list[tuple[str, list[ModelEntry]]] = []
    for label, chosen in (("student", [e for e in entries if e.id not in compare_ids]), ("compared", compare)):
        by_base: dict[str, list[ModelEntry]] = defaultdict(list)
        for e in chosen:
            by_base[e.base_model].append(e)
        groups += [(label, group) for group in by_base.values()]
    students = []
    for i, (label, group) in enumerate(groups, start=1):
        base = group[0].base_model
        student = Student(name=f"{label} {i}: {Path(base).name}", base_model=base)
        for e in group:
            student.adapters[adapter_value(recipe, e) or e.id] = e
        students.append(student)
    return students


def _grader_label(recipe: str, metric: str) -> str:
    if metric == "perplexity":
        return "no grader: likelihood of the real targets"
    return f"recipe {recipe}'s reply scores (score_reply)"


def _record_gates(registry: Registry, report: dict[str, Any], rel_report: str) -> dict[str, dict[str, Any]]:
    gates = {}
    for row in report["models"]:
        gate = row["gate"]
        recorded = row["n"] > 0 and not gate["reason"].startswith("cannot decide")
        gates[row["id"]] = {"passed": gate["passed"], "reason": gate["reason"], "recorded": recorded}
        if not recorded:
            gates[row["id"]]["not_recorded"] = gate["reason"]
            continue
        nll = row["scores"]["perplexity"]
        split = row["split"]
        record = GateRecord(
            passed=gate["passed"],
            reason=gate["reason"],
            rule=report["gate_rule"],
            base=row["base_model"],
            judge=_grader_label(report["recipe"], report["gate_rule"]["metric"]),
            report=rel_report,
            decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        metric = report["gate_rule"]["metric"]
        scores = {
            f"{split}_{metric}": row["scores"][metric]["tuned"]["mean"],
            f"{split}_{metric}_base": row["scores"][metric]["base"]["mean"],
            f"{split}_perplexity": nll["tuned"]["perplexity"],
            f"{split}_perplexity_base": nll["base"]["perplexity"],
            f"{split}_nll_diff": nll["diff"]["mean"] if nll["diff"] else None,
        }
        registry.record_gate(row["id"], record, scores)
    return gates


def run(
    config: DoctuneConfig,
    workspace: Workspace,
    recipe_name: str,
    models: list[str] | None = None,
    progress: bool = True,
) -> StageResult:
    """Evaluate ``recipe_name``'s models (default: the newest per adapter value and base), record the recipe's gate
    on each, and for character-like recipes run the fidelity benchmark (see the module docstring)."""
    recipe = dataset_recipe(recipe_name, config)
    examples = workspace.read_rows(f"dataset_{recipe.name}", Example, config)
    registry = Registry(workspace)
    entries = _entries(registry, recipe, models)
    compare = [registry.get(i) for i in config.fidelity.compare_students]
    benches = _benches(workspace, [*entries, *[e for e in compare if e.id not in {x.id for x in entries}]])
    ev = config.evaluate
    if hasattr(recipe, "prepare_eval"):  # reply scorers built from the workspace (e.g. replies' sounds_like_me)
        recipe.prepare_eval(config, workspace, examples)
    report = evaluate_recipe_models(
        recipe,
        examples,
        entries,
        benches,
        ev.max_items_per_split,
        ev.max_tokens,
        ev.gate.require_ci_above_zero,
        ev.n_resamples,
        ev.confidence,
        ev.seed,
    )
    if hasattr(recipe, "extra_report"):  # recipe-level scores beside the per-example ones (e.g. likes' ROC AUC)
        report["extra"] = recipe.extra_report(config, workspace, examples, entries, benches)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    reports = workspace.root / "reports"
    json_name = f"recipe-{recipe.name}-{stamp}.json"
    report["gate"] = _record_gates(registry, report, f"reports/{json_name}")
    outputs = {"report": str(write_json(report, reports / json_name))}
    stats: dict[str, Any] = {"markdown": markdown_summary(report), "gate": report["gate"]}
    if "extra" in report and hasattr(recipe, "extra_markdown"):  # e.g. kg's "does graph context help?" table
        stats["markdown"] += "\n\n" + recipe.extra_markdown(report["extra"])
    if FIDELITY_METRICS & set(recipe.metrics) and recipe.adapter_field:
        fid = config.fidelity
        try:
            speeches: list[Speech] | None = workspace.read_rows("speeches", Speech, config)
        except StaleArtifactError as exc:
            log.warning("fidelity: %s; the classifier is trained on the dataset's targets instead", exc)
            speeches = None
        judge, check = open_checked_judge(config, workspace, examples, recipe.gate.split)
        settings = FidelitySettings(
            max_speeches=fid.max_speeches,
            reply_contexts=fid.reply_contexts,
            max_tokens=fid.max_tokens,
            classifier_characters=fid.classifier_characters,
            distinctive_words=fid.distinctive_words,
            n_resamples=ev.n_resamples,
            confidence=ev.confidence,
            seed=ev.seed,
        )

        def on_character(student: str, character: str) -> None:
            if progress:
                log.info("fidelity: %s, %s", student, character)

        fidelity = fidelity_report(
            recipe,
            settings,
            examples,
            speeches,
            _students(recipe, entries, compare),
            benches,
            judge,
            check,
            on_character,
        )
        if judge is not None:
            judge.backend.close()
        outputs["fidelity"] = str(write_json(fidelity, reports / "fidelity.json"))
        outputs["fidelity_html"] = str(write_fidelity_html(fidelity, reports / "fidelity.html"))
        stats["fidelity_markdown"] = fidelity_markdown(fidelity)
    return StageResult(
        stage="eval",
        outputs=outputs,
        counts={
            "models": len(report["models"]),
            f"{recipe.gate.split}_examples": sum(r["n"] for r in report["models"]),
        },
        stats=stats,
    )
