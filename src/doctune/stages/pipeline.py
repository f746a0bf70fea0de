"""`doctune run`: every stage in order, each skipped when its artifact is current.

A run killed at any point resumes: finished stages are skipped (their artifacts are fresh), LLM calls
of an interrupted stage come back from the call cache, and an interrupted training run continues from
its last checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from doctune.config import DoctuneConfig
from doctune.records import DatasetItem
from doctune.stages import NothingUsable, StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class Step:
    name: str
    artifact: str
    run: Callable[..., StageResult]
    is_current: Callable[[DoctuneConfig, Workspace], bool] | None = None
    #: the count in the step's result that must be above zero for the next steps to have anything to work on
    must_yield: str | None = None


@dataclass
class PipelineSummary:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    results: dict[str, StageResult] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)


def _documents_current(config: DoctuneConfig, workspace: Workspace) -> bool:
    from doctune.stages.ingest import documents_paths, source_fingerprint

    if workspace.freshness("documents", config) != "fresh" or not config.ingest.paths:
        return False
    recorded = workspace.manifest()["documents"].stats.get("fingerprint")
    return recorded == source_fingerprint(documents_paths(config), config)


def _training_current(config: DoctuneConfig, workspace: Workspace) -> bool:
    from doctune.stages.train import _resumable_dir

    if workspace.freshness("training_runs", config) != "fresh":
        return False
    interrupted = _resumable_dir(workspace)
    return interrupted is None or (interrupted / "metrics.json").exists()


#: recipes whose examples the QA steps (generate qa/multihop, curate, export, train, eval) make and use
QA_FAMILY = ("qa", "multihop", "rephrase")


def steps(config: DoctuneConfig) -> list[Step]:
    """The plan of `doctune run`: ingest, then the steps of each recipe in ``config.recipes``."""
    from doctune.recipes import configured_recipes
    from doctune.stages import ingest, social_ingest

    names = configured_recipes(config)
    plan = []
    if ingest.documents_paths(config) or not config.ingest.paths:
        plan.append(Step("ingest", "documents", ingest.run, _documents_current, must_yield="documents"))
    if social_ingest.configured_archives(config):
        plan.append(Step("ingest posts", "posts", social_ingest.run, social_ingest.posts_current, must_yield="posts"))
    if any(n in QA_FAMILY for n in names):
        plan += _qa_steps(config)
    for name in names:
        if name not in QA_FAMILY:
            plan += _recipe_steps(config, name, {s.name for s in plan})
    return plan


def _qa_steps(config: DoctuneConfig) -> list[Step]:
    from doctune.stages import chunk, curate, curate_report, evaluate, export, generate, summarize

    plan = [
        Step("summarize", "summaries", summarize.run, must_yield="summaries"),
        Step("chunk", "chunks", chunk.run, must_yield="chunks"),
        Step("generate qa", "qa", generate.run_qa, must_yield="items"),
    ]
    if "multihop" in config.curate.sources:
        plan.append(Step("generate multihop", "multihop", generate.run_multihop))
    plan += [
        Step("curate dedup", "dedup", curate.run_dedup, must_yield="kept"),
        Step("curate cluster", "clustered", curate.run_cluster),
        Step("curate split", "dataset", curate.run_split, must_yield="train"),
        Step("curate report", "", curate_report.run_report),
        Step("curate map", "", curate_report.run_map),
        Step("export", "exports", export.run),
        Step("train", "training_runs", _train_resuming, _training_current),
        Step("eval", "", evaluate.run),  # answers and verdicts come from the cache when nothing changed
    ]
    return plan


def _recipe_steps(config: DoctuneConfig, name: str, planned: set[str]) -> list[Step]:
    """generate -> curate examples -> export -> train (one adapter per key) -> eval, for a recipe of ``Example`` rows;
    the chunk (and summarize) steps first when the recipe reads them and no earlier recipe planned them."""
    from doctune.recipes import get_recipe
    from doctune.stages import chunk, curate_examples, evaluate_recipe, export, generate, summarize, train

    recipe = get_recipe(name, config)
    plan = []
    if "summaries" in recipe.inputs and "summarize" not in planned:
        plan.append(Step("summarize", "summaries", summarize.run, must_yield="summaries"))
    if "chunks" in recipe.inputs and "chunk" not in planned:
        plan.append(Step("chunk", "chunks", chunk.run, must_yield="chunks"))

    def train_missing(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
        missing = _untrained_adapters(config, workspace, name)
        keys = None if missing == [None] else missing
        return train.run(config, workspace, progress=progress, resume=True, recipe=name, adapter_keys=keys)

    def trained(config: DoctuneConfig, workspace: Workspace) -> bool:
        return not _untrained_adapters(config, workspace, name)

    plan += [
        Step(f"generate {name}", f"examples_{name}", partial(generate.run, recipe=name), must_yield="examples"),
        Step(f"curate examples {name}", f"dataset_{name}", partial(curate_examples.run, recipe_name=name)),
        Step(f"export {name}", f"exports_{name}", partial(export.run, recipe=name)),
        Step(f"train {name}", f"training_runs_{name}", train_missing, trained),
        Step(f"eval {name}", "", partial(evaluate_recipe.run, recipe_name=name)),
    ]
    return plan


def _untrained_adapters(config: DoctuneConfig, workspace: Workspace, recipe_name: str) -> list[str | None]:
    """The adapter keys of ``dataset_<recipe>``'s train split with no training run on the current dataset and
    train settings (``[None]`` for a one-adapter recipe that needs training; empty: all trained)."""
    import json

    from doctune.recipes import get_recipe
    from doctune.records import Example
    from doctune.stages.train import TrainingRun, previous_training_rows

    recipe = get_recipe(recipe_name, config)
    dataset = f"dataset_{recipe.name}"
    keys = sorted({recipe.adapter_key(e) for e in workspace.read_rows(dataset, Example, config) if e.split == "train"})
    artifact = f"training_runs_{recipe.name}"
    if workspace.freshness(artifact, config) != "fresh":
        return keys or [None]
    sha = workspace.manifest()[dataset].sha256
    rows: list[TrainingRun] = previous_training_rows(workspace, artifact)
    done = {json.loads(r.labels_json).get(recipe.adapter_field or "", None) for r in rows if r.dataset_sha256 == sha}
    return [k for k in keys if k not in done] if recipe.adapter_field else ([] if rows else [None])


def _train_resuming(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """Train, continuing an interrupted run when its checkpoint is there."""
    from doctune.stages import train
    from doctune.stages.train import _resumable_dir

    interrupted = _resumable_dir(workspace)
    resume = interrupted is not None and not (interrupted / "metrics.json").exists()
    return train.run(config, workspace, progress=progress, resume=resume)


def run_pipeline(
    config: DoctuneConfig,
    workspace: Workspace,
    progress: bool = True,
    on_step: Callable[[str, StageResult | None], None] | None = None,
) -> PipelineSummary:
    """Run every stage whose artifact is not current; ``on_step(name, result_or_None_if_skipped)``."""
    summary = PipelineSummary()
    for step in steps(config):
        current = (
            step.is_current(config, workspace)
            if step.is_current is not None
            else bool(step.artifact) and workspace.freshness(step.artifact, config) == "fresh"
        )
        if current and step.must_yield and not workspace.manifest()[step.artifact].rows:
            current = False  # an empty artifact: run the step again (from the cache) to say why it is empty
        if current:
            summary.skipped.append(step.name)
            if on_step:
                on_step(step.name, None)
            continue
        start = time.perf_counter()
        result = step.run(config, workspace, progress=progress)
        summary.seconds[step.name] = round(time.perf_counter() - start, 1)
        summary.ran.append(step.name)
        summary.results[step.name] = result
        if on_step:
            on_step(step.name, result)
        if step.must_yield and not result.counts.get(step.must_yield):
            raise NothingUsable(f"doctune run stopped at {step.name}: {_why_empty(step, result)}")
    summary.totals = totals(config, workspace)
    return summary


def _why_empty(step: Step, result: StageResult) -> str:
    """One line: what the step produced none of, and the reasons it recorded."""
    what = "train items" if step.must_yield == "train" else step.must_yield
    details = []
    if outcomes := result.stats.get("outcomes"):
        details.append("requests by outcome: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    if result.errors:
        first = result.errors[0]
        details.append(f"first error: {first.get('source_path') or first.get('unit_id', '?')}: {first.get('reason')}")
    reasons = f" ({'; '.join(details)})" if details else ""
    return f"it produced no {what}{reasons}; nothing is left for the next stages (see `doctune status`)"


def totals(config: DoctuneConfig, workspace: Workspace) -> dict[str, Any]:
    """What the workspace holds now: documents, chunks, items, splits, the last training run."""
    manifest = workspace.manifest()
    out: dict[str, Any] = {
        name: manifest[name].rows for name in ("documents", "chunks", "qa", "multihop", "dedup") if name in manifest
    }
    if "dataset" in manifest:
        splits: dict[str, int] = {}
        for item in workspace.read_rows("dataset", DatasetItem):
            splits[item.split] = splits.get(item.split, 0) + 1
        out["splits"] = splits
    if "training_runs" in manifest:
        rec = manifest["training_runs"]
        out["training"] = {"seconds": rec.duration_s, **rec.stats}
    for name, rec in manifest.items():
        if name.startswith("dataset_"):
            out[name] = rec.stats.get("splits", rec.rows)
    return out


def eval_summary(result: StageResult) -> str:
    """The scores table and the gate of an eval result (QA or a recipe's), for the end-of-run summary."""
    lines = [result.stats["markdown"]]
    if "fidelity_markdown" in result.stats:
        lines.append(result.stats["fidelity_markdown"])
    for model, gate in result.stats["gate"].items():
        lines.append(f"gate for {model}: {'PASSED' if gate['passed'] else 'FAILED'} ({gate['reason']})")
        if not gate.get("recorded"):
            lines.append(f"  not recorded on the registry: {gate.get('not_recorded', '')}")
    return "\n".join(lines)
