"""train: fine-tune the student on the ``dataset`` artifact's train split; eval loss on its eval splits.

Each run writes under ``<workspace>/runs/<run_id>/`` (``config.yaml`` and ``run.json`` from the workspace, the
training outputs under ``train/``: see :mod:`doctune.train.trainer`). The ``training_runs`` artifact holds one row
per finished run (earlier rows are kept), with ``dataset`` as its input. ``resume`` continues the most recent run
that left a checkpoint instead of starting a new one.

With a recipe (``doctune train --recipe NAME``) it trains on ``dataset_<NAME>`` instead (see :func:`run_recipe`):
one adapter per value of the recipe's ``adapter_field`` (a character), each its own run ``<ts>-train-<key>``,
registered with labels, and recorded in ``training_runs_<NAME>``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from doctune.config import ConfigError, DoctuneConfig
from doctune.records import DatasetItem, Example
from doctune.registry import register_training_run
from doctune.stages import NothingUsable, StageResult
from doctune.train.config import TrainConfig
from doctune.train.data import items_to_examples
from doctune.train.recipe_data import AdapterData, adapter_datasets, examples_to_chats, slug
from doctune.train.resolve import base_model_dir, base_model_label, student_base
from doctune.workspace import Workspace

log = logging.getLogger(__name__)

ARTIFACT = "training_runs"
TRAIN_SUBDIR = "train"


class TrainingRun(BaseModel):
    """One finished training run."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    base_model: str = Field(description="The embedded model's name, or the base model's folder (home as ~).")
    method: str = Field(description="lora | full")
    weights_path: str = Field(description="The adapter (lora) or model (full) folder, relative to the workspace.")
    output_dir: str
    dataset_sha256: str = Field(description="sha256 of the dataset artifact trained on.")
    train_items: int
    steps: int
    resumed_from_step: int | None = None
    initial_loss: float | None = None
    final_loss: float | None = None
    eval_losses_json: str = Field(description="JSON object: eval split -> final eval loss.")
    tokens_per_second: float
    padding_share: float
    device: str
    precision: str
    processes: int = Field(1, description="Data-parallel training processes (the world size train.processes gave).")
    distributed_backend: str | None = Field(
        None, description="torch.distributed backend of a multi-process run (gloo on CPU, nccl on GPUs); none: one."
    )
    tracking_json: str = Field("{}", description="JSON object: tracker -> where its run is (MLflow URI and run id...).")
    labels_json: str = Field("{}", description="JSON object: the registry labels (recipe runs: recipe, character...).")


def train_config(config: DoctuneConfig) -> TrainConfig:
    """The ``train`` section, or the defaults while ``DoctuneConfig`` has none."""
    return getattr(config, "train", None) or TrainConfig()


def _resumable_dir(workspace: Workspace, stage: str = "train") -> Path | None:
    """The ``train`` folder of the most recent run of ``stage`` that left a checkpoint, if any."""
    if not workspace.runs_dir.is_dir():
        return None
    for run_dir in sorted(workspace.runs_dir.glob(f"*-{stage}"), reverse=True):
        out = run_dir / TRAIN_SUBDIR
        if any(out.glob("checkpoint-*")):
            return out
    return None


def _interrupted_dir(workspace: Workspace, stage: str, config: DoctuneConfig) -> Path | None:
    """The checkpoint folder of the latest run of ``stage`` when it stopped before the end and was made with the
    same ``train`` and ``models.student`` settings; None otherwise (a finished run or another base starts anew)."""
    import yaml

    previous = _resumable_dir(workspace, stage)
    if previous is None or (previous / "metrics.json").exists():
        return None
    try:
        saved = yaml.safe_load((previous.parent / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    current = config.masked()
    same = saved.get("train") == current.get("train") and (saved.get("models") or {}).get("student") == current[
        "models"
    ].get("student")
    if not same:
        log.info("not resuming %s: it was trained with other train/student settings", previous)
    return previous if same else None


def previous_training_rows(workspace: Workspace, artifact: str = ARTIFACT) -> list[TrainingRun]:
    path = workspace.artifact_path(artifact)
    if not path.exists():
        return []
    return [TrainingRun.model_validate(r) for r in pq.read_table(path).to_pylist()]


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def run(
    config: DoctuneConfig,
    workspace: Workspace,
    progress: bool = True,
    resume: bool = False,
    recipe: str | None = None,
    adapter_keys: Sequence[str] | None = None,
) -> StageResult:
    """Train on the dataset's train split and record the run in ``training_runs``; with ``recipe``, train that
    recipe's adapters instead (:func:`run_recipe`)."""
    if recipe is not None or adapter_keys:
        if recipe is None:
            raise ConfigError("--character/--adapter needs --recipe (e.g. `doctune train --recipe character`)")
        return run_recipe(config, workspace, recipe, adapter_keys, progress=progress, resume=resume)
    from doctune.train.tracking import RunInfo
    from doctune.train.trainer import train

    cfg = train_config(config)
    items = workspace.read_rows("dataset", DatasetItem, config)
    system_prompt = cfg.system_prompt if cfg.system_prompt is not None else config.export.system_prompt
    by_split: dict[str, list[DatasetItem]] = {}
    for item in items:
        by_split.setdefault(item.split, []).append(item)
    train_items = by_split.get("train", [])
    if not train_items:
        raise NothingUsable("train: the dataset has no train item: generate more items, then `doctune curate split`")
    eval_sets = {s: items_to_examples(by_split[s], system_prompt) for s in cfg.eval_splits if by_split.get(s)}

    run_ = workspace.start_run("train", config)
    previous = _resumable_dir(workspace) if resume else None
    output_dir = previous or run_.run_dir / TRAIN_SUBDIR
    if resume and previous is None:
        log.info("no checkpoint to resume in %s: starting a new run", workspace.runs_dir)
    base_name = student_base(config)
    base = base_model_dir(base_name)
    dataset_sha = run_.input_hashes(["dataset"]).get("dataset", "")
    tags = {"doctune.project": config.project, "doctune.dataset_sha256": dataset_sha, "doctune.base_model": base_name}
    info = RunInfo(
        experiment=cfg.experiment or config.project, run_name=run_.run_id, tags=tags, store_dir=workspace.root
    )
    result = train(
        cfg,
        base,
        items_to_examples(train_items, system_prompt),
        eval_sets,
        output_dir,
        resume=previous is not None,
        progress=progress,
        run_info=info,
        base_model_name=base_model_label(base_name),
    )
    root = workspace.root
    row = TrainingRun(
        run_id=run_.run_id,
        base_model=base_name,
        method="full" if cfg.full_finetune else "lora",
        weights_path=_relative(Path(result.weights_dir), root),
        output_dir=_relative(output_dir, root),
        dataset_sha256=dataset_sha,
        train_items=len(train_items),
        steps=result.steps,
        resumed_from_step=result.resumed_from_step,
        initial_loss=result.initial_loss,
        final_loss=result.final_loss,
        eval_losses_json=json.dumps(result.eval_losses, sort_keys=True),
        tokens_per_second=result.tokens_per_second,
        padding_share=result.padding_share,
        device=result.device,
        precision=result.precision,
        processes=result.processes,
        distributed_backend=result.distributed_backend,
        tracking_json=json.dumps(result.tracking, sort_keys=True),
    )
    rows = [*previous_training_rows(workspace), row]
    stats = {
        "final_loss": result.final_loss,
        "eval_losses": result.eval_losses,
        "tokens_per_second": result.tokens_per_second,
    }
    rec = run_.write_artifact(ARTIFACT, rows, TrainingRun, inputs=["dataset"], stats=stats)
    counts = {"train_items": len(train_items), "steps": result.steps}
    if result.processes > 1:
        counts["processes"] = result.processes
    counts.update({f"{split}_items": len(examples) for split, examples in eval_sets.items()})
    entry = register_training_run(workspace, config, row, train_items, {s: by_split[s] for s in eval_sets})
    outputs = {"weights": result.weights_dir, "output_dir": str(output_dir), ARTIFACT: str(root / rec.path)}
    outputs["registry_id"] = entry.id
    if result.loss_plot:
        outputs["loss_plot"] = result.loss_plot
    outputs.update({f"tracking ({name})": where for name, where in result.tracking.items()})
    return StageResult(stage="train", outputs=outputs, counts=counts, stats=stats)


def run_recipe(
    config: DoctuneConfig,
    workspace: Workspace,
    recipe_name: str,
    adapter_keys: Sequence[str] | None = None,
    progress: bool = True,
    resume: bool = False,
) -> StageResult:
    """Train on ``dataset_<recipe>``: one LoRA adapter per adapter key (all keys of the train split when none are
    given), one after the other on the same base model, each a run of its own, registered with its labels.

    Each example's messages are the chat (its last assistant turn the completion; ``train.system_prompt`` is not
    used: the examples carry their own system turn). Eval loss is measured on the adapter's other splits. With
    ``resume``, an adapter continues the latest of its own runs that left a checkpoint.
    """
    from doctune.recipes import dataset_recipe

    recipe = dataset_recipe(recipe_name, config)
    dataset = f"dataset_{recipe.name}"
    examples = workspace.read_rows(dataset, Example, config)
    adapters = [a for a in adapter_datasets(recipe, examples, adapter_keys) if a.train]
    if not adapters:
        raise NothingUsable(f"train: {dataset} has no train example: `doctune curate examples {recipe.name}` first")
    outputs: dict[str, str] = {}
    counts = {"adapters": len(adapters), "train_examples": 0, "steps": 0}
    per_adapter: dict[str, dict] = {}
    for n, data in enumerate(adapters, 1):
        name = data.key or recipe.name
        log.info("adapter %d/%d: %s (%d train examples)", n, len(adapters), name, len(data.train))
        row, registry_id = _train_adapter(config, workspace, recipe.name, dataset, data, progress, resume)
        outputs[f"registry_id ({name})"] = registry_id
        outputs[f"weights ({name})"] = row.weights_path
        evals = "".join(f", {k} {v:.3f}" for k, v in json.loads(row.eval_losses_json).items())
        final = f"{row.final_loss:.3f}" if row.final_loss is not None else "-"
        outputs[f"loss ({name})"] = f"train {final}{evals}; {row.tokens_per_second:.0f} tokens/s"
        counts["train_examples"] += row.train_items
        counts["steps"] += row.steps
        per_adapter[name] = {"final_loss": row.final_loss, "tokens_per_second": row.tokens_per_second}
        per_adapter[name]["eval_losses"] = json.loads(row.eval_losses_json)
    stats = {"adapters": per_adapter}
    if len(per_adapter) == 1:
        stats.update(next(iter(per_adapter.values())))
    return StageResult(stage=f"train {recipe.name}", outputs=outputs, counts=counts, stats=stats)


def _train_adapter(
    config: DoctuneConfig,
    workspace: Workspace,
    recipe: str,
    dataset: str,
    data: AdapterData,
    progress: bool,
    resume: bool,
) -> tuple[TrainingRun, str]:
    """Train, record (``training_runs_<recipe>``) and register one adapter; (its row, its registry id)."""
    from doctune.train.tracking import RunInfo
    from doctune.train.trainer import train

    cfg = train_config(config)
    stage = f"train-{slug(data.key) if data.key else slug(recipe)}"  # the run (and registry) id ends with it
    run_ = workspace.start_run(stage, config)
    previous = _interrupted_dir(workspace, stage, config) if resume else None
    output_dir = previous or run_.run_dir / TRAIN_SUBDIR
    base_name = student_base(config)
    dataset_sha = run_.input_hashes([dataset]).get(dataset, "")
    tags = {"doctune.project": config.project, "doctune.dataset_sha256": dataset_sha, "doctune.base_model": base_name}
    tags.update({f"doctune.{k}": v for k, v in data.labels.items()})
    info = RunInfo(
        experiment=cfg.experiment or config.project, run_name=run_.run_id, tags=tags, store_dir=workspace.root
    )
    eval_sets = data.eval_splits()
    result = train(
        cfg,
        base_model_dir(base_name),
        examples_to_chats(data.train),
        {split: examples_to_chats(rows) for split, rows in eval_sets.items()},
        output_dir,
        resume=previous is not None,
        progress=progress,
        run_info=info,
        base_model_name=base_model_label(base_name),
    )
    root = workspace.root
    row = TrainingRun(
        run_id=run_.run_id,
        base_model=base_name,
        method="full" if cfg.full_finetune else "lora",
        weights_path=_relative(Path(result.weights_dir), root),
        output_dir=_relative(output_dir, root),
        dataset_sha256=dataset_sha,
        train_items=len(data.train),
        steps=result.steps,
        resumed_from_step=result.resumed_from_step,
        initial_loss=result.initial_loss,
        final_loss=result.final_loss,
        eval_losses_json=json.dumps(result.eval_losses, sort_keys=True),
        tokens_per_second=result.tokens_per_second,
        padding_share=result.padding_share,
        device=result.device,
        precision=result.precision,
        processes=result.processes,
        distributed_backend=result.distributed_backend,
        tracking_json=json.dumps(result.tracking, sort_keys=True),
        labels_json=json.dumps(data.labels, sort_keys=True),
    )
    artifact = f"{ARTIFACT}_{recipe}"
    rows = [*previous_training_rows(workspace, artifact), row]
    stats = {"final_loss": result.final_loss, "tokens_per_second": result.tokens_per_second, **data.labels}
    run_.write_artifact(artifact, rows, TrainingRun, inputs=[dataset], stats=stats)
    entry = register_training_run(workspace, config, row, data.train, eval_sets, labels=data.labels, dataset=dataset)
    return row, entry.id
