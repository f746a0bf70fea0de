"""The model registry: register, look up, promote/rollback, remove, lineage, and the ``doctune models`` commands.

Workspaces are built without training: artifacts written through ``StageRun.write_artifact`` and a fake weights
folder per model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import DoctuneConfig
from doctune.records import Chunk, DatasetItem, Document
from doctune.registry import GateRecord, ModelEntry, Registry, RegistryError, lineage, register_training_run
from doctune.stages.train import TrainingRun
from doctune.workspace import Workspace

runner = CliRunner()


def _item(i: int, split: str, doc: str) -> DatasetItem:
    return DatasetItem(
        item_id=f"i{i}",
        kind="qa",
        unit_id=f"c-{doc}",
        doc_ids=[doc],
        chunk_ids=[f"c-{doc}"],
        k=1,
        question=f"question {i}?",
        answer=f"answer {i}.",
        evaluation_criteria="",
        difficulty=3,
        category="factual",
        citations=[],
        citations_verified=True,
        model="fake",
        source="qa",
        split=split,
    )


@pytest.fixture
def project(tmp_path: Path) -> tuple[DoctuneConfig, Workspace]:
    """A workspace with documents, chunks and a dataset (4 train, 2 eval items)."""
    cfg = DoctuneConfig.model_validate({"workspace": str(tmp_path), "project": "zorblat"})
    ws = Workspace(tmp_path)
    docs = [
        Document(doc_id=d, source_path=f"docs/{d}.md", format="md", title=d, text="text", n_chars=4)
        for d in ("da", "db", "dc")
    ]
    ws.start_run("ingest", cfg).write_artifact("documents", docs, Document)
    chunks = [
        Chunk(chunk_id=f"c-{d.doc_id}", doc_id=d.doc_id, index=0, text="text", char_start=0, char_end=4, n_chars=4)
        for d in docs
    ]
    ws.start_run("chunk", cfg).write_artifact("chunks", chunks, Chunk, inputs=["documents"])
    items = [_item(i, "train", "da" if i % 2 else "db") for i in range(4)] + [_item(9, "eval", "da")]
    items.append(_item(10, "eval", "da"))
    ws.start_run("curate", cfg).write_artifact("dataset", items, DatasetItem, inputs=["chunks"])
    return cfg, ws


def _train(cfg: DoctuneConfig, ws: Workspace, final_loss: float = 1.0, gate: bool | None = True) -> ModelEntry:
    """What the train stage does, minus the training: a run, a fake adapter folder, a registry entry; then (unless
    ``gate`` is None) what `doctune eval` records: a gate decision that passed (True) or failed (False)."""
    run = ws.start_run("train", cfg)
    adapter = run.run_dir / "train" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"fake")
    row = TrainingRun(
        run_id=run.run_id,
        base_model="SmolLM2-135M-Instruct",
        method="lora",
        weights_path=str(adapter.relative_to(ws.root)),
        output_dir=str(adapter.parent.relative_to(ws.root)),
        dataset_sha256=ws.manifest()["dataset"].sha256,
        train_items=4,
        steps=2,
        initial_loss=2.0,
        final_loss=final_loss,
        eval_losses_json=json.dumps({"eval": 1.5}),
        tokens_per_second=10.0,
        padding_share=0.0,
        device="cpu",
        precision="fp32",
    )
    items = ws.read_rows("dataset", DatasetItem, cfg)
    train = [i for i in items if i.split == "train"]
    evals = {"eval": [i for i in items if i.split == "eval"]}
    entry = register_training_run(ws, cfg, row, train, evals)
    if gate is None:
        return entry
    record = GateRecord(
        passed=gate,
        reason="token_f1 on eval: passes" if gate else "token_f1 on eval: below the required margin",
        rule={"split": "eval", "metric": "token_f1"},
        base=row.base_model,
        judge="token F1",
        report="reports/eval-x.json",
        decided_at="2026-11-30T00:00:00+00:00",
    )
    return Registry(ws).record_gate(entry.id, record, {"eval_token_f1": 0.5})


def test_register_snapshots_inputs_and_items(project):
    cfg, ws = project
    entry = _train(cfg, ws)
    reg = Registry(ws)
    assert [e.id for e in reg.list_entries()] == [entry.id]
    assert entry.project == "zorblat" and entry.method == "lora" and entry.parent is None
    assert entry.status == "registered" and reg.current() is None  # registering does not promote
    assert entry.splits == {"train": 4, "eval": 2}
    assert entry.metrics["final_loss"] == 1.0 and entry.metrics["eval_losses"] == {"eval": 1.5}
    manifest = ws.manifest()
    assert entry.artifacts == {n: manifest[n].sha256 for n in ("dataset", "chunks", "documents")}
    assert entry.dataset_sha256 == manifest["dataset"].sha256
    assert entry.config_hash == cfg.section_hash("train", "models.student", "export.system_prompt")
    assert entry.items_path == f"runs/{entry.id}/train/items.json"
    saved = json.loads((ws.root / entry.items_path).read_text())
    assert saved["splits"] == {"train": ["i0", "i1", "i2", "i3"], "eval": ["i9", "i10"]}
    assert json.loads((ws.root / "registry.json").read_text())["entries"][0]["id"] == entry.id
    with pytest.raises(RegistryError, match="already registered"):
        reg.register(entry)

    assert reg.get(entry.id).gate.passed and reg.get(entry.id).metrics["eval_token_f1"] == 0.5
    assert reg.get(entry.id).metrics["final_loss"] == 1.0  # the gate's scores join the training metrics


def test_prefix_lookup(project):
    cfg, ws = project
    a, b = _train(cfg, ws), _train(cfg, ws)
    reg = Registry(ws)
    assert reg.get(a.id).id == a.id
    assert reg.get(b.id[:-3]).id == b.id  # a unique prefix (ids differ in their timestamp)
    with pytest.raises(RegistryError, match="ambiguous"):
        reg.get("2")
    with pytest.raises(RegistryError, match="no model 'nope'"):
        reg.get("nope")


def test_promote_and_rollback(project):
    """Promote A, promote B, rollback -> A; rollback again -> error (rollback never leaves no current model)."""
    cfg, ws = project
    a, b = _train(cfg, ws), _train(cfg, ws)
    reg = Registry(ws)
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()
    reg.promote(a.id)
    reg.promote(a.id)  # promoting the current one is a no-op (no history entry)
    reg.promote(b.id)
    assert reg.current().id == b.id
    assert {e.id: e.status for e in reg.list_entries()} == {a.id: "retired", b.id: "current"}
    assert reg.rollback().id == a.id and reg.current().id == a.id
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()
    assert reg.current().id == a.id

    c = _train(cfg, ws)
    assert c.parent == a.id  # the current model when it was registered
    reg.promote(b.id)
    reg.promote(c.id)
    assert reg.rollback().id == b.id  # repeated rollbacks walk back further
    assert reg.rollback().id == a.id


def test_remove(project):
    cfg, ws = project
    a, b = _train(cfg, ws), _train(cfg, ws)
    reg = Registry(ws)
    reg.promote(a.id)
    reg.promote(b.id)
    with pytest.raises(RegistryError, match="is current"):
        reg.remove(b.id)
    assert (ws.root / a.weights_path).is_dir()
    reg.remove(a.id)  # entry only: files stay
    assert (ws.root / a.weights_path).is_dir() and [e.id for e in reg.list_entries()] == [b.id]
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()  # a removed model is dropped from the history too

    c = _train(cfg, ws)
    reg.remove(b.id, delete_files=True, force=True)
    assert not (ws.root / b.weights_path).exists()
    assert (ws.root / b.weights_path).parent.is_dir()  # only the weights folder
    assert (ws.root / a.weights_path).is_dir() and (ws.root / c.weights_path).is_dir()
    assert reg.current() is None and [e.id for e in reg.list_entries()] == [c.id]


def test_lineage_reaches_documents_and_survives_reruns(project):
    cfg, ws = project
    entry = _train(cfg, ws)
    chain = {step.kind: step for step in lineage(entry.id, ws)}
    assert list(chain) == ["adapter", "dataset", "items", "chunks", "documents"]
    assert chain["adapter"].path == entry.weights_path and chain["adapter"].details["exists"]
    assert chain["dataset"].unchanged and chain["dataset"].sha256 == ws.manifest()["dataset"].sha256
    assert chain["items"].details["counts"] == {"train": 4, "eval": 2} and chain["items"].path == entry.items_path
    assert chain["chunks"].details["count"] == 2 and chain["chunks"].unchanged
    assert chain["documents"].details["source_paths"] == ["docs/da.md", "docs/db.md"]

    # rerun the earlier stages with other content: lineage keeps what was trained on and says it changed
    docs = [Document(doc_id="dz", source_path="docs/dz.md", format="md", title="z", text="z", n_chars=1)]
    ws.start_run("ingest", cfg).write_artifact("documents", docs, Document)
    ws.start_run("curate", cfg).write_artifact("dataset", [_item(1, "train", "dz")], DatasetItem)
    chain = {step.kind: step for step in lineage(entry.id[:12], ws)}
    assert chain["dataset"].unchanged is False and chain["documents"].unchanged is False
    assert chain["chunks"].unchanged is True
    assert chain["documents"].details["source_paths"] == ["docs/da.md", "docs/db.md"]


def _cli(ws: Workspace, *args: str):
    return runner.invoke(app, ["--workspace", str(ws.root), "models", *args], catch_exceptions=False)


def test_models_cli(project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no doctune.yaml here: the defaults plus --workspace
    cfg, ws = project
    empty = _cli(ws, "list")
    assert empty.exit_code == 0 and "no models registered" in empty.output
    a, b = _train(cfg, ws, final_loss=0.25), _train(cfg, ws)
    never, failed_gate = _train(cfg, ws, gate=None), _train(cfg, ws, gate=False)
    refused = _cli(ws, "promote", never.id)
    assert refused.exit_code == 1 and "has no evaluation gate result: run `doctune eval`" in refused.output
    refused = _cli(ws, "promote", failed_gate.id)
    assert refused.exit_code == 1 and "failed its evaluation gate (token_f1 on eval" in refused.output
    for model in (never, failed_gate):
        Registry(ws).remove(model.id)

    assert _cli(ws, "promote", a.id[:-2]).exit_code == 0
    assert _cli(ws, "promote", b.id).exit_code == 0
    listed = _cli(ws, "list")
    assert listed.exit_code == 0 and a.id in listed.output and b.id in listed.output and "0.2500" in listed.output
    assert "*" in next(line for line in listed.output.splitlines() if b.id in line)

    shown = _cli(ws, "show", a.id)
    assert shown.exit_code == 0
    payload = json.loads(shown.output)
    assert payload["entry"]["id"] == a.id and payload["entry"]["status"] == "retired"
    assert payload["lineage"][-1]["details"]["source_paths"] == ["docs/da.md", "docs/db.md"]

    rolled = _cli(ws, "rollback")
    assert rolled.exit_code == 0 and a.id in rolled.output
    failed = _cli(ws, "rollback")
    assert failed.exit_code == 1 and "nothing to roll back" in failed.output

    refused = _cli(ws, "rm", a.id)
    assert refused.exit_code == 1 and "is current" in refused.output
    assert _cli(ws, "rm", "2").exit_code == 1  # ambiguous prefix
    assert _cli(ws, "show", "nope").exit_code == 1
    removed = _cli(ws, "rm", a.id, "--force", "--delete-files")
    assert removed.exit_code == 0 and not (ws.root / a.weights_path).exists()
    assert Registry(ws).current() is None and [e.id for e in Registry(ws).list_entries()] == [b.id]
