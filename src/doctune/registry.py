"""The model registry: one entry per trained model, a ``current`` pointer and its history.

Stored as ``<workspace>/registry.json`` (written atomically). Nothing becomes current except by
:meth:`Registry.promote` or :meth:`Registry.rollback`; registering a model does not promote it. Each promotion
pushes the previous current onto a history stack; :meth:`Registry.rollback` pops it, so repeated rollbacks walk
back through earlier currents and fail once the stack is empty (a rollback never leaves *no* current model).
Nothing is deleted except by :meth:`Registry.remove`.

At registration the entry snapshots the manifest sha256 of ``dataset``, ``chunks`` and ``documents`` and writes
the ids of the items trained and evaluated on (with their chunk ids, doc ids and the documents' source paths) to
``runs/<id>/train/items.json``, so :func:`lineage` still answers after earlier stages are rerun.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from doctune.config import DoctuneConfig
from doctune.records import DatasetItem, Example
from doctune.workspace import ARTIFACT_PRODUCERS, Workspace

if TYPE_CHECKING:
    from doctune.stages.train import TrainingRun

log = logging.getLogger(__name__)

REGISTRY_FILE = "registry.json"
ITEMS_FILE = "items.json"
LINEAGE_ARTIFACTS = ("dataset", "chunks", "documents")


class RegistryError(Exception):
    """A registry operation cannot be done; the message says why."""


class GateRecord(BaseModel):
    """The configured evaluation gate's decision for a model, against its own base model."""

    model_config = ConfigDict(extra="forbid")

    passed: bool
    reason: str = Field(description="One line: metric, split, both means, the difference and its interval.")
    rule: dict[str, Any] = Field(description="The gate settings it was decided with (split, metric, margins).")
    base: str = Field(description="The base model it was compared with (the one it was trained from).")
    judge: str = Field(description="The judge's label (accuracy gates) or the metric's grader.")
    report: str = Field(description="The evaluation report, relative to the workspace.")
    decided_at: str


class ModelEntry(BaseModel):
    """One trained model."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The training run id.")
    project: str
    created_at: str
    base_model: str
    method: str = Field(description="lora | full")
    weights_path: str = Field(description="Adapter (lora) or model (full) folder, relative to the workspace.")
    dataset_sha256: str = Field(description="sha256 of the dataset artifact trained on.")
    splits: dict[str, int] = Field(default_factory=dict, description="Split name -> items trained/evaluated on.")
    config_hash: str = Field(description="Hash of the train config sections (train, models.student).")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Losses, then any scores recorded later.")
    parent: str | None = Field(None, description="The entry that was current when this one was registered.")
    status: str = Field("registered", description="registered | current | retired (was current before)")
    artifacts: dict[str, str] = Field(default_factory=dict, description="Manifest sha256 of the inputs at training.")
    items_path: str | None = Field(None, description="JSON file of the item ids per split, relative to the workspace.")
    tracking: dict[str, str] = Field(
        default_factory=dict, description="Tracker -> where the training run's metrics are."
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="What the model is for: recipe, and for one-adapter-per-value recipes the value (character, "
        "play); `doctune models list --character NAME` filters on them.",
    )
    gate: GateRecord | None = Field(
        None, description="The configured gate's last decision against this model's own base; none: never decided."
    )


class RegistryState(BaseModel):
    """The content of ``registry.json``."""

    model_config = ConfigDict(extra="forbid")

    entries: list[ModelEntry] = Field(default_factory=list)
    current: str | None = None
    history: list[str] = Field(default_factory=list, description="Previous currents, oldest first.")


class LineageStep(BaseModel):
    """One link of a model's lineage: what was recorded at training time and whether it still holds."""

    kind: str = Field(description="adapter | dataset | items | chunks | documents")
    sha256: str | None = Field(None, description="Artifact sha256 recorded at registration.")
    current_sha256: str | None = Field(None, description="The workspace manifest's sha256 now.")
    unchanged: bool | None = Field(None, description="Whether the workspace still has the recorded content.")
    path: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Registry:
    """The registry of one workspace; every operation reads and writes ``registry.json`` afresh."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.path = workspace.root / REGISTRY_FILE

    # -- storage ----------------------------------------------------------------------------
    def _load(self) -> RegistryState:
        if not self.path.exists():
            return RegistryState()
        try:
            return RegistryState.model_validate_json(self.path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise RegistryError(f"{self.path} is not a valid registry: {exc}") from None

    def _save(self, state: RegistryState) -> None:
        for entry in state.entries:
            retired = entry.id in state.history
            entry.status = "current" if entry.id == state.current else "retired" if retired else "registered"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(state.model_dump_json(indent=2), encoding="utf-8")
        os.replace(tmp, self.path)

    @staticmethod
    def _find(state: RegistryState, id_or_prefix: str) -> ModelEntry:
        exact = [e for e in state.entries if e.id == id_or_prefix]
        matches = exact or [e for e in state.entries if id_or_prefix and e.id.startswith(id_or_prefix)]
        if not matches:
            raise RegistryError(f"no model '{id_or_prefix}' in the registry (see `doctune models list`)")
        if len(matches) > 1:
            raise RegistryError(f"'{id_or_prefix}' is ambiguous: matches {', '.join(e.id for e in matches)}")
        return matches[0]

    # -- operations -------------------------------------------------------------------------
    def register(self, entry: ModelEntry) -> ModelEntry:
        """Add an entry; its ``parent`` is the current model. Registering does not promote."""
        state = self._load()
        if any(e.id == entry.id for e in state.entries):
            raise RegistryError(f"model '{entry.id}' is already registered")
        entry = entry.model_copy(update={"parent": state.current})
        state.entries.append(entry)
        self._save(state)
        log.info("registered model %s", entry.id)
        return self._find(state, entry.id)

    def list_entries(self) -> list[ModelEntry]:
        """All entries, oldest first."""
        return sorted(self._load().entries, key=lambda e: (e.created_at, e.id))

    def get(self, id_or_prefix: str) -> ModelEntry:
        """The entry with this id, or the only one whose id starts with it."""
        return self._find(self._load(), id_or_prefix)

    def current(self) -> ModelEntry | None:
        """The current model, if one was promoted."""
        state = self._load()
        return self._find(state, state.current) if state.current else None

    def promote(self, id_or_prefix: str, force: bool = False) -> ModelEntry:
        """Make a model current (the previous current goes onto the history); a no-op for the current one.
        A model without a passed evaluation gate (never evaluated, or failed) is refused unless ``force``."""
        state = self._load()
        entry = self._find(state, id_or_prefix)
        if not force and (entry.gate is None or not entry.gate.passed):
            if entry.gate is None:
                why = (
                    f"{entry.id} has no evaluation gate result: run `doctune eval` (it compares the model with its own "
                    "base and records the configured gate)"
                )
            else:
                why = f"{entry.id} failed its evaluation gate ({entry.gate.reason})"
            raise RegistryError(f"{why}; promote with --force to override")
        if force and (entry.gate is None or not entry.gate.passed):
            log.warning("promoting %s without a passed evaluation gate (--force)", entry.id)
        if state.current == entry.id:
            return entry
        if state.current is not None:
            state.history.append(state.current)
        state.current = entry.id
        self._save(state)
        log.info("model %s is now current", entry.id)
        return entry

    def rollback(self) -> ModelEntry:
        """Make the previous current model current again; an error when there is none."""
        state = self._load()
        if not state.history:
            raise RegistryError("nothing to roll back to: no model was current before the current one")
        state.current = state.history.pop()
        self._save(state)
        log.info("rolled back: model %s is current again", state.current)
        return self._find(state, state.current)

    def record_gate(self, id_or_prefix: str, gate: GateRecord, scores: Mapping[str, Any]) -> ModelEntry:
        """Record the configured gate's decision (replacing an earlier one) and the scores it was decided on."""
        state = self._load()
        entry = self._find(state, id_or_prefix)
        entry.gate = gate
        entry.metrics.update(scores)
        self._save(state)
        return entry

    def remove(self, id_or_prefix: str, delete_files: bool = False, force: bool = False) -> ModelEntry:
        """Drop an entry (and with ``delete_files`` its weights folder). The current model needs ``force``.

        Removing the current model leaves no current one; the entry is also dropped from the history.
        """
        state = self._load()
        entry = self._find(state, id_or_prefix)
        if entry.id == state.current and not force:
            raise RegistryError(f"model '{entry.id}' is current: promote another one first, or force")
        weights = None
        if delete_files:
            weights = (self.workspace.root / entry.weights_path).resolve()
            root = self.workspace.root.resolve()
            if not weights.is_relative_to(root) or weights == root:
                raise RegistryError(f"refusing to delete {weights}: it is not inside the workspace {root}")
            shared = [e.id for e in state.entries if e.id != entry.id and e.weights_path == entry.weights_path]
            if shared:
                raise RegistryError(f"refusing to delete {entry.weights_path}: also the weights of {', '.join(shared)}")
        state.entries = [e for e in state.entries if e.id != entry.id]
        if state.current == entry.id:
            state.current = None
        history: list[str] = []
        for h in state.history:
            if h != entry.id and (not history or history[-1] != h):
                history.append(h)
        state.history = history
        self._save(state)
        if weights is not None and weights.exists():
            shutil.rmtree(weights)
            log.info("deleted %s", weights)
        log.info("removed model %s", entry.id)
        return entry


def lineage(id_or_prefix: str, workspace: Workspace) -> list[LineageStep]:
    """The chain adapter -> dataset -> items -> chunks -> documents, checked against the workspace now."""
    entry = Registry(workspace).get(id_or_prefix)
    manifest = workspace.manifest()
    root = workspace.root
    items: dict[str, Any] = {}
    if entry.items_path and (root / entry.items_path).exists():
        items = json.loads((root / entry.items_path).read_text(encoding="utf-8"))

    def artifact(kind: str, details: dict[str, Any]) -> LineageStep:
        name = items.get("dataset", kind) if kind == "dataset" else kind  # a recipe's dataset_<recipe>
        recorded = entry.artifacts.get(name) or (entry.dataset_sha256 if kind == "dataset" else None)
        now = manifest[name].sha256 if name in manifest else None
        unchanged = None if recorded is None else recorded == now
        path = manifest[name].path if name in manifest else None
        return LineageStep(
            kind=kind, sha256=recorded, current_sha256=now, unchanged=unchanged, path=path, details=details
        )

    weights = root / entry.weights_path
    documents = items.get("documents", {})
    doc_ids = items.get("doc_ids", [])
    return [
        LineageStep(
            kind="adapter" if entry.method == "lora" else "model",
            path=entry.weights_path,
            unchanged=weights.is_dir(),
            details={"base_model": entry.base_model, "method": entry.method, "exists": weights.is_dir()},
        ),
        artifact("dataset", {"splits": entry.splits}),
        LineageStep(
            kind="items",
            path=entry.items_path,
            details={"counts": {s: len(ids) for s, ids in items.get("splits", {}).items()} or entry.splits},
        ),
        artifact("chunks", {"count": len(items.get("chunk_ids", []))}),
        artifact(
            "documents",
            {"count": len(doc_ids), "source_paths": sorted({documents[d] for d in doc_ids if d in documents})},
        ),
    ]


def _row_id(row: DatasetItem | Example) -> str:
    """The id of a QA item or of a recipe's example."""
    return row.item_id if isinstance(row, DatasetItem) else row.example_id


def _document_paths(workspace: Workspace, doc_ids: set[str]) -> dict[str, str]:
    """doc_id -> source_path from the documents artifact (empty when there is none)."""
    path = workspace.artifact_path("documents")
    if not doc_ids or not path.exists():
        return {}
    try:
        table = pq.read_table(path, columns=["doc_id", "source_path"])
    except (OSError, ValueError, KeyError) as exc:
        log.warning("cannot read document paths from %s: %s", path, exc)
        return {}
    return {r["doc_id"]: r["source_path"] for r in table.to_pylist() if r["doc_id"] in doc_ids}


def register_training_run(
    workspace: Workspace,
    config: DoctuneConfig,
    training_run_row: TrainingRun,
    train_items: Sequence[DatasetItem | Example],
    eval_sets: Mapping[str, Sequence[DatasetItem | Example]],
    labels: Mapping[str, str] | None = None,
    dataset: str = "dataset",
) -> ModelEntry:
    """Register a finished training run: snapshot its inputs' hashes and write its item ids beside the weights.

    ``dataset`` is the artifact trained on (a recipe's ``dataset_<recipe>`` of examples, whose ids are listed per
    split like the QA items'); ``labels`` say what the model is for (recipe, character...)."""
    row = training_run_row
    manifest = workspace.manifest()
    splits = {"train": list(train_items), **{s: list(v) for s, v in eval_sets.items()}}
    every = [item for group in splits.values() for item in group]
    doc_ids = sorted({d for item in every for d in item.doc_ids})
    items_dir = workspace.runs_dir / row.run_id / "train"
    items_dir.mkdir(parents=True, exist_ok=True)
    items_file = items_dir / ITEMS_FILE
    payload = {
        "dataset": dataset,
        "splits": {s: [_row_id(item) for item in group] for s, group in splits.items()},
        "chunk_ids": sorted({c for item in every for c in getattr(item, "chunk_ids", [])}),
        "doc_ids": doc_ids,
        "documents": _document_paths(workspace, set(doc_ids)),
    }
    tmp = items_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, items_file)
    metrics: dict[str, Any] = {
        "initial_loss": row.initial_loss,
        "final_loss": row.final_loss,
        "eval_losses": json.loads(row.eval_losses_json or "{}"),
        "steps": row.steps,
    }
    entry = ModelEntry(
        id=row.run_id,
        project=config.project,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        base_model=row.base_model,
        method=row.method,
        weights_path=row.weights_path,
        dataset_sha256=row.dataset_sha256,
        splits={s: len(group) for s, group in splits.items()},
        config_hash=config.section_hash(*ARTIFACT_PRODUCERS["training_runs"][1]),
        metrics=metrics,
        artifacts={name: manifest[name].sha256 for name in (dataset, *LINEAGE_ARTIFACTS[1:]) if name in manifest},
        items_path=str(items_file.relative_to(workspace.root)),
        tracking=json.loads(row.tracking_json or "{}"),
        labels=dict(labels or {}),
    )
    return Registry(workspace).register(entry)
