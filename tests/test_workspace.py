from __future__ import annotations

import json

import pytest

from doctune.config import DoctuneConfig, load_config
from doctune.records import Chunk, Document
from doctune.workspace import StaleArtifactError, Workspace


def doc(i: int, text: str = "Hello world.") -> Document:
    return Document(doc_id=f"d{i}", source_path=f"f{i}.txt", format="txt", title="t", text=text, n_chars=len(text))


def chunk_of(d: Document) -> Chunk:
    return Chunk(
        chunk_id=f"{d.doc_id}-0000",
        doc_id=d.doc_id,
        index=0,
        text=d.text,
        char_start=0,
        char_end=d.n_chars,
        n_chars=d.n_chars,
    )


def test_write_read_and_manifest(tmp_path):
    ws = Workspace(tmp_path / "ws")
    cfg = DoctuneConfig()
    run = ws.start_run("ingest", cfg)
    docs = [doc(1), doc(2, "Other text.")]
    rec = run.write_artifact("documents", docs, Document, stats={"chars": 23})
    assert ws.read_rows("documents", Document, cfg) == docs
    manifest = json.loads(ws.manifest_path.read_text())
    entry = manifest["artifacts"]["documents"]
    assert entry["rows"] == 2 and entry["sha256"] == rec.sha256
    assert entry["config_hash"] == cfg.section_hash("ingest")
    assert {"doctune", "python", "pyarrow"} <= set(entry["versions"])
    assert entry["duration_s"] >= 0
    assert (ws.runs_dir / rec.run_id / "config.yaml").exists()


def test_empty_artifact_round_trips(tmp_path):
    ws = Workspace(tmp_path)
    cfg = DoctuneConfig()
    ws.start_run("chunk", cfg).write_artifact("chunks", [], Chunk)
    assert ws.read_rows("chunks", Chunk, cfg) == []


def test_missing_input_is_refused_with_the_command_to_run(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(StaleArtifactError, match=r"'documents' is missing: run `doctune ingest` first"):
        ws.read_rows("documents", Document)


def test_stale_after_input_changes(tmp_path):
    ws = Workspace(tmp_path)
    cfg = DoctuneConfig()
    d = doc(1)
    ws.start_run("ingest", cfg).write_artifact("documents", [d], Document)
    ws.start_run("chunk", cfg).write_artifact("chunks", [chunk_of(d)], Chunk, inputs=["documents"])
    assert ws.freshness("chunks", cfg) == "fresh"
    ws.start_run("ingest", cfg).write_artifact("documents", [doc(1, "Changed text.")], Document)
    assert ws.freshness("chunks", cfg).startswith("stale (input 'documents' changed")
    with pytest.raises(StaleArtifactError, match="run `doctune chunk` first"):
        ws.read_rows("chunks", Chunk, cfg)


def test_stale_after_config_change_and_on_disk_edit(tmp_path):
    ws = Workspace(tmp_path)
    cfg = DoctuneConfig()
    d = doc(1)
    ws.start_run("ingest", cfg).write_artifact("documents", [d], Document)
    ws.start_run("chunk", cfg).write_artifact("chunks", [chunk_of(d)], Chunk, inputs=["documents"])
    changed = DoctuneConfig.model_validate({"chunk": {"max_chars": 2000}})
    assert ws.freshness("chunks", changed) == "stale (config section chunk changed)"
    assert ws.freshness("documents", changed) == "fresh"  # ingest does not depend on chunk settings
    ws.artifact_path("documents").write_bytes(b"tampered")
    assert ws.freshness("documents", cfg) == "changed on disk since it was written"


def test_resolved_config_masks_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_FOR_TEST", "sk-do-not-leak")
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("models:\n  judge: {backend: openai, model: m, api_key: $SECRET_FOR_TEST}\n")
    cfg = load_config(cfg_path)
    ws = Workspace(tmp_path / "ws")
    ws.start_run("ingest", cfg).write_artifact("documents", [doc(1)], Document)
    for path in (tmp_path / "ws").rglob("*"):
        if path.is_file():
            assert b"sk-do-not-leak" not in path.read_bytes(), path
