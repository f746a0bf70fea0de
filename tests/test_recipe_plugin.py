"""The recipe seam's proof: a recipe defined only in tests/ (``recipe_plugins.capitals``) goes through
``doctune run``: generate -> curate examples -> export -> train -> eval, with nothing in doctune naming it."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from doctune.cli import app
from doctune.recipes import get_recipe, recipe_names
from doctune.records import Example
from doctune.registry import Registry
from doctune.workspace import Workspace

from genutil import RIVERS, SOLAR

PLUGIN = "recipe_plugins.capitals:CapitalsRecipe"


def test_a_recipe_from_the_config_is_found_by_name(tmp_path):
    from doctune.config import DoctuneConfig

    cfg = DoctuneConfig.model_validate({"recipes": [PLUGIN]})
    assert "capitals" in recipe_names(cfg) and "capitals" not in recipe_names()
    assert get_recipe("capitals", cfg).gate.metric == "perplexity"


@pytest.mark.slow
def test_a_recipe_defined_in_tests_runs_every_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "solar.md").write_text(SOLAR, encoding="utf-8")
    (tmp_path / "docs" / "rivers.md").write_text(RIVERS, encoding="utf-8")
    config = {
        "project": "capitals",
        "recipes": [PLUGIN],
        "ingest": {"paths": ["docs"]},
        "chunk": {"min_chars": 120, "max_chars": 400},
        "train": {"max_steps": 2, "per_device_batch_size": 4, "max_length": 128, "eval_splits": ["eval"]},
        "evaluate": {"max_tokens": 8},
    }
    (tmp_path / "capitals.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    res = CliRunner().invoke(app, ["--workspace", "ws", "run", "capitals.yaml"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for step in ("generate capitals", "curate examples capitals", "export capitals", "train capitals"):
        assert step in res.output
    assert "gate for" in res.output

    ws = Workspace(tmp_path / "ws")
    manifest = ws.manifest()
    assert {"examples_capitals", "dataset_capitals", "exports_capitals", "training_runs_capitals"} <= set(manifest)
    rows = ws.read_rows("dataset_capitals", Example)
    assert {r.split for r in rows} == {"train", "eval"}
    assert all(r.target == r.field_values()["sentence"].upper() for r in rows)
    entries = Registry(ws).list_entries()
    assert len(entries) == 1 and entries[0].labels["recipe"] == "capitals"
    assert entries[0].gate is not None  # the recipe's own gate (perplexity on eval) was decided and recorded
    reports = list((tmp_path / "ws" / "reports").glob("recipe-capitals-*.json"))
    assert reports and "exact_match" in json.dumps(json.loads(reports[0].read_text()))

    # a second run finds everything current: nothing is generated or trained again
    res = CliRunner().invoke(app, ["--workspace", "ws", "run", "capitals.yaml"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "train capitals: current, skipped" in res.output
    assert len(Registry(ws).list_entries()) == 1
