"""`doctune eval` end to end: base vs a tuned embedded student, a scripted judge, the gate and promotion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import DoctuneConfig
from doctune.records import DatasetItem
from doctune.registry import Registry, RegistryError
from doctune.stages import evaluate, train
from doctune.workspace import Workspace
from test_train import FACTS, _item

VERDICT = json.dumps({"reason": "Matches the criteria.", "verdict": "correct"})


@pytest.mark.slow
def test_eval_reports_gate_and_promotion(tmp_path, monkeypatch):
    cfg = DoctuneConfig.model_validate(
        {
            "workspace": str(tmp_path),
            "models": {
                "judge": {"backend": "fake", "options": {"default_reply": VERDICT}},
                "embedder": {"backend": "fake"},
            },
            "train": {"max_steps": 1, "max_length": 64, "per_device_batch_size": 4, "save_steps": 1},
            "evaluate": {"splits": ["eval", "rephrased_eval"], "max_tokens": 12, "n_resamples": 200},
        }
    )
    ws = Workspace(tmp_path)
    splits = ["train"] * 7 + ["eval"] * 3
    items = [_item(i, q, a, s) for i, ((q, a), s) in enumerate(zip(FACTS, splits, strict=True))]
    ws.start_run("curate", cfg).write_artifact("dataset", items, DatasetItem)
    tuned = train.run(cfg, ws, progress=False).outputs["registry_id"]

    result = evaluate.run(cfg, ws, progress=False)
    report = json.loads(Path(result.outputs["report"]).read_text())
    assert set(report["results"]) == {"base", tuned}
    assert report["results"]["base"]["eval"]["n"] == 3
    assert "| base" in result.stats["markdown"] and "<html" in Path(result.outputs["html"]).read_text()
    # the judge calls every answer correct: tuned - base = 0, so the interval is not above zero
    gate = result.stats["gate"][tuned]
    assert gate["passed"] is False  # the gate split (rephrased_eval) is missing or shows no gain
    entry = Registry(ws).get(tuned)
    assert entry.metrics["gate_passed"] is False and entry.metrics["eval_accuracy"] == 1.0
    with pytest.raises(RegistryError, match="failed its evaluation gate"):
        Registry(ws).promote(tuned)
    assert Registry(ws).promote(tuned, force=True).id == tuned

    # A/B from the command line, on the same items (answers come from the cache)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "doctune.yaml").write_text(cfg.model_dump_json())
    res = CliRunner().invoke(app, ["-q", "eval", "--compare", "base", tuned[:12]], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "gate for" in res.output and "FAILED" in res.output
