"""`doctune eval` end to end with real models: a student fine-tuned from a base that is not the embedded default's
path, compared with that base; the configured gate recorded; promotion follows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import DoctuneConfig
from doctune.llm.hf import embedded_safetensors_dir
from doctune.records import DatasetItem
from doctune.registry import Registry, RegistryError
from doctune.stages import evaluate, train
from doctune.workspace import Workspace
from test_train import FACTS, _item

VERDICT = json.dumps({"reason": "Matches the criteria.", "verdict": "correct"})


@pytest.mark.slow
def test_eval_compares_with_the_own_base_records_the_gate_and_promotion_follows(tmp_path, monkeypatch):
    base = tmp_path / "my-base"  # the student's base: SmolLM2 under another name (a symlink: no copy)
    base.symlink_to(embedded_safetensors_dir(), target_is_directory=True)
    cfg = DoctuneConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "models": {
                "judge": {"backend": "fake", "options": {"default_reply": VERDICT}},
                "embedder": {"backend": "fake"},
            },
            "train": {
                "base_model": str(base),
                "max_steps": 1,
                "max_length": 64,
                "per_device_batch_size": 4,
                "save_steps": 1,
            },
            "evaluate": {
                "splits": ["eval"],
                "max_tokens": 12,
                "n_resamples": 200,
                "gate": {"split": "eval", "metric": "token_f1"},  # a scripted judge cannot decide accuracy
            },
        }
    )
    ws = Workspace(cfg.workspace)
    splits = ["train"] * 7 + ["eval"] * 3
    items = [_item(i, q, a, s) for i, ((q, a), s) in enumerate(zip(FACTS, splits, strict=True))]
    ws.start_run("curate", cfg).write_artifact("dataset", items, DatasetItem)
    tuned = train.run(cfg, ws, progress=False).outputs["registry_id"]
    with pytest.raises(RegistryError, match="no evaluation gate result"):
        Registry(ws).promote(tuned)

    result = evaluate.run(cfg, ws, progress=False)
    report = json.loads(Path(result.outputs["report"]).read_text())
    assert set(report["results"]) == {"base", tuned}
    assert report["model_identities"]["base"] == "base:my-base"  # its own base, not the embedded default's path
    assert report["results"]["base"]["eval"]["n"] == 3
    assert "| base" in result.stats["markdown"] and "<html" in Path(result.outputs["html"]).read_text()
    decision = result.stats["gate"][tuned]
    assert decision["recorded"] is True
    entry = Registry(ws).get(tuned)
    assert entry.base_model == str(base) and entry.gate.base == str(base)
    assert entry.gate.passed is decision["passed"] and entry.gate.rule["metric"] == "token_f1"
    if entry.gate.passed:
        assert Registry(ws).promote(tuned).id == tuned
    else:
        with pytest.raises(RegistryError, match="failed its evaluation gate"):
            Registry(ws).promote(tuned)
        assert Registry(ws).promote(tuned, force=True).id == tuned

    # A/B from the command line, on the same items (answers come from the cache)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "doctune.yaml").write_text(cfg.model_dump_json())
    res = CliRunner().invoke(app, ["-q", "eval", "--compare", "base", tuned[:12]], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f"gate for {tuned}" in res.output
