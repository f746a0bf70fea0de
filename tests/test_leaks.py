"""No endpoint URL, API key or local path reaches an artifact, report, log line or export.

A whole `doctune run` (every role on an OpenAI-compatible endpoint whose URL carries credentials, the embedded
student trained for real) with the home folder, the documents and the workspace under a temporary home. Then every
file the run wrote is read (parquet rows decoded, SQLite tables dumped, every other file as bytes) together with the
command's output and a push to a recording Hub client, and none may hold the URL, its host, the key, the home path
or the model cache's path.

Not scanned: ``checkpoint-*`` folders (transformers' resumable trainer state records its own output folder; they are
never exported) and weight files (tensors only).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import load_config
from doctune.llm.embedded import model_cache_dir
from doctune.stages import export
from doctune.testing.openai_server import ScriptedOpenAIServer, ScriptedReply
from doctune.workspace import Workspace

from genutil import RIVERS, SOLAR, qa_reply

KEY = "sk-leaktest-0123456789abcdef"
SKIPPED_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".gguf", ".png"}


def _embedding(text: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).normal(size=16).round(6).tolist()


def respond(payload: dict) -> ScriptedReply:
    """Scripted replies for every role, recognised by its system prompt."""
    if "input" in payload:  # /v1/embeddings
        texts = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
        data = [{"object": "embedding", "index": i, "embedding": _embedding(t)} for i, t in enumerate(texts)]
        body = {"object": "list", "data": data, "model": "scripted", "usage": {"prompt_tokens": 1, "total_tokens": 1}}
        return ScriptedReply(raw_body=json.dumps(body).encode())

    class M:
        def __init__(self, m):
            self.role, self.content = m["role"], m["content"]

    messages = [M(m) for m in payload["messages"]]
    system = messages[0].content
    if system.startswith("You are a careful technical writer"):
        return ScriptedReply(content="The document describes planets and rivers.")
    if system.startswith("You write question/answer pairs"):
        return ScriptedReply(content=qa_reply(messages))
    if system.startswith("You reword"):
        return ScriptedReply(content=json.dumps({"question": "Put another way, what holds?", "answer": "The same."}))
    if system.startswith("You grade"):
        return ScriptedReply(content=json.dumps({"reason": "Fine.", "verdict": "correct"}))
    if system.startswith("You name groups"):
        return ScriptedReply(content=json.dumps({"label": "Planets and rivers"}))
    return ScriptedReply(content="no idea")


class RecordingHub:
    def __init__(self):
        self.pushed: list[str] = []

    def push_dataset_dict(self, dataset_dict, repo_id, config_name, private, token):
        for split, ds in dataset_dict.items():
            self.pushed.append(f"{repo_id} {config_name} {split} " + json.dumps(ds.to_list(), default=str))


def readable(path: Path) -> str:
    """The text a file holds, decoded the way a reader would see it."""
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    if path.suffix in (".sqlite", ".db"):
        conn = sqlite3.connect(path)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            return "\n".join(repr(row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"'))
        finally:
            conn.close()
    return path.read_bytes().decode("latin-1")


@pytest.mark.slow
def test_no_url_key_or_local_path_in_artifacts_reports_logs_or_exports(tmp_path, monkeypatch):
    models_root = model_cache_dir().parent  # the real cache: the embedded student is converted there once
    home = tmp_path / "home" / "me"
    project = home / "project"
    docs = project / "docs"
    docs.mkdir(parents=True)
    (docs / "solar.md").write_text(SOLAR)
    (docs / "rivers.md").write_text(RIVERS)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCTUNE_CACHE_DIR", str(models_root))
    monkeypatch.setenv("DOCTUNE_LEAK_KEY", KEY)
    monkeypatch.chdir(project)

    with ScriptedOpenAIServer(respond) as server:
        host = server.base_url.split("//")[1].split("/")[0]
        url = server.base_url.replace("http://", "http://doctune:s3cret@")
        endpoint = {"backend": "openai", "model": "scripted-7b", "base_url": url, "api_key_env": "DOCTUNE_LEAK_KEY"}
        config = {
            "project": "leaks",
            "ingest": {"paths": [str(docs)]},
            "chunk": {"min_chars": 60, "max_chars": 160},
            "models": {"generator": endpoint, "rephraser": endpoint, "judge": endpoint, "embedder": endpoint},
            "curate": {"eval_share": 0.3, "mirror_size": 2},
            "train": {"max_steps": 1, "max_length": 64, "per_device_batch_size": 4, "save_steps": 1},
            "evaluate": {"splits": ["eval"], "max_tokens": 8, "n_resamples": 200},
        }
        config_file = project / "doctune.yaml"
        config_file.write_text(yaml.safe_dump(config))
        workspace = project / "ws"
        result = CliRunner().invoke(app, ["--workspace", str(workspace), "run", str(config_file)])
        assert result.exit_code == 0, result.output
        hub = RecordingHub()
        cfg = load_config(config_file, [f"workspace={workspace}"])
        export.run(cfg, Workspace(workspace), push_to="me/leaks", progress=False, hub_client=hub)

    needles = {"endpoint URL": url, "endpoint host": host, "credentials": "s3cret", "API key": KEY}
    assert not {what for what, n in needles.items() if n in result.output}, "the command's output"
    needles.update({"home path": str(home), "model cache path": str(models_root)})
    scanned = []
    for path in sorted(workspace.rglob("*")):
        if not path.is_file() or path.suffix in SKIPPED_SUFFIXES:
            continue
        if any(part.startswith("checkpoint-") for part in path.relative_to(workspace).parts):
            continue
        text = readable(path)
        leaks = [what for what, needle in needles.items() if needle in text]
        assert not leaks, f"{path.relative_to(workspace)} holds the {', '.join(leaks)}"
        scanned.append(path.relative_to(workspace).as_posix())
    pushed = "\n".join(hub.pushed)
    assert not [what for what, needle in needles.items() if needle in pushed], "the pushed datasets"

    # the scan saw every kind of output, and what they record instead is there
    for expected in ("artifacts/documents.parquet", "artifacts/qa.parquet", "manifest.json", "registry.json"):
        assert expected in scanned
    assert any(p.startswith("reports/eval-") for p in scanned) and any(p.startswith("export/qa/") for p in scanned)
    assert any(p.endswith("adapter/adapter_config.json") for p in scanned)
    assert any(p.endswith("/config.yaml") for p in scanned) and "cache/llm.sqlite" in scanned
    qa = pq.read_table(workspace / "artifacts" / "qa.parquet").to_pylist()
    assert {row["model"] for row in qa} == {
        "openai:scripted-7b@endpoint-" + hashlib.sha256(url.encode()).hexdigest()[:8]
    }
    documents = pq.read_table(workspace / "artifacts" / "documents.parquet").to_pylist()
    assert sorted(d["source_path"] for d in documents) == ["docs/rivers.md", "docs/solar.md"]
    adapter = next(workspace.rglob("adapter/adapter_config.json"))
    assert json.loads(adapter.read_text())["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
