"""The personal pipeline end to end on a small synthetic account: `doctune run` imports the archive, makes likes
examples, trains a LoRA adapter (2 steps), evaluates it (ROC AUC and precision@k of zero-shot base, embedding
baseline and tuned, with CIs) and `doctune rank` scores an unseen feed with the tuned model."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from doctune.cli import app
from doctune.registry import Registry
from doctune.testing.synthetic_account import AccountSizes, generate_account
from doctune.workspace import Workspace


@pytest.mark.slow
def test_likes_run_eval_and_rank_with_the_tuned_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sizes = AccountSizes(feed=120, unseen=12, posts=30, replies=10, boosts=4, bookmarks=4)
    summary = generate_account(tmp_path / "account", seed=1, sizes=sizes)
    archive = summary.files["archive"]
    config = {
        "project": "me",
        "recipes": ["likes"],
        "ingest": {"paths": [str(archive)]},
        "social": {"feeds": [str(summary.files["feed"])]},
        "likes": {"eval_share": 0.3},
        "train": {"max_steps": 2, "per_device_batch_size": 4, "max_length": 128, "eval_splits": ["eval"]},
        "evaluate": {"max_tokens": 4},
    }
    (tmp_path / "me.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    res = CliRunner().invoke(app, ["--workspace", "ws", "run", "me.yaml"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for step in ("ingest posts", "generate likes", "curate examples likes", "train likes", "gate for"):
        assert step in res.output, step

    ws = Workspace(tmp_path / "ws")
    entry = next(e for e in Registry(ws).list_entries() if e.labels.get("recipe") == "likes")
    report = json.loads(next((tmp_path / "ws" / "reports").glob("recipe-likes-*.json")).read_text())
    scorers = report["extra"]["scorers"]
    assert {"baseline", entry.id} <= set(scorers) and any(k.startswith("base:") for k in scorers), scorers
    for scores in scorers.values():
        auc = scores["roc_auc"]
        assert 0.0 <= auc["low"] <= auc["mean"] <= auc["high"] <= 1.0
        assert scores["positives"] > 0 and scores["n"] > scores["positives"]

    feed = str(summary.files["feed_unseen"])
    res = CliRunner().invoke(app, ["--workspace", "ws", "-c", "me.yaml", "rank", feed, "--model", entry.id])
    assert res.exit_code == 0, res.output
    ranked = json.loads(next((tmp_path / "ws" / "reports" / "rank").glob("rank-*.json")).read_text())
    assert ranked["scorer"] == entry.id
    assert all(row["model"] is not None and 0.0 <= row["model"] <= 1.0 for row in ranked["rows"])
