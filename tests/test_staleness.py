"""Every setting a stage reads is part of its artifact's staleness hash (or is listed here as not changing output).

The test runs every stage that writes an artifact with the configuration instrumented: each read of a config field
is recorded against the stage running, and must fall under the config sections that ``ARTIFACT_PRODUCERS`` hashes
for that stage's artifact. A stage that starts reading a new setting without hashing it fails here, by name.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import BaseModel

from doctune.config import DoctuneConfig, ModelSpec, Section
from doctune.stages import curate, generate, pipeline
from doctune.train.config import TrainConfig
from doctune.train.trainer import TrainResult
from doctune.workspace import ARTIFACT_PRODUCERS, Workspace
from test_pipeline import configure

#: (artifact or "*", setting) read by a stage without changing what it writes, and why
NOT_OUTPUT: dict[tuple[str, str], str] = {
    ("*", "workspace"): "where artifacts are written, not what they hold",
    ("*", "curate.batch_size"): "texts per embedding batch; each text is embedded alone",
    ("*", "recipes"): "finds a recipe by name (a plugin's import path); the recipe's own sections are hashed",
    ("training_runs", "project"): "names the tracked training run (MLflow experiment, tags), not the weights",
}


class ReadRecorder:
    """Records dotted paths of config fields read (leaf values only) while ``active``."""

    def __init__(self, config: DoctuneConfig):
        self.paths: dict[int, str] = {}
        self._index(config, "")
        self.reads: set[str] = set()
        self.active = False

    def _index(self, model: BaseModel, prefix: str) -> None:
        self.paths[id(model)] = prefix
        for name in type(model).model_fields:
            value = model.__dict__[name]
            if isinstance(value, BaseModel):
                self._index(value, f"{prefix}{name}.")

    @contextmanager
    def paused(self):
        was, self.active = self.active, False
        try:
            yield
        finally:
            self.active = was


@pytest.fixture
def recorder_for(monkeypatch):
    """``recorder_for(config)``: instrument the config classes to record reads of ``config``'s fields."""

    def install(config: DoctuneConfig) -> ReadRecorder:
        recorder = ReadRecorder(config)

        def getattribute(self, name):
            value = object.__getattribute__(self, name)
            if recorder.active and name in type(self).model_fields and not isinstance(value, BaseModel):
                prefix = recorder.paths.get(id(self))
                if prefix is not None:
                    recorder.reads.add(prefix + name)
            return value

        for cls in (Section, TrainConfig):
            monkeypatch.setattr(cls, "__getattribute__", getattribute, raising=False)

        def pausing(fn):
            def wrapper(*args, **kwargs):
                with recorder.paused():
                    return fn(*args, **kwargs)

            return wrapper

        # saving the resolved config and hashing sections read everything, on purpose: not a stage's reads
        monkeypatch.setattr(DoctuneConfig, "section_hash", pausing(DoctuneConfig.section_hash))
        monkeypatch.setattr(DoctuneConfig, "masked", pausing(DoctuneConfig.masked))
        return recorder

    return install


def _fake_trainer(cfg, base_model, train_examples, eval_sets, output_dir, **kwargs) -> TrainResult:
    weights = Path(output_dir) / "adapter"
    weights.mkdir(parents=True, exist_ok=True)
    (weights / "adapter_config.json").write_text("{}")
    return TrainResult(
        output_dir=str(output_dir),
        weights_dir=str(weights),
        base_model=kwargs.get("base_model_name") or "base",
        device="cpu",
        precision="fp32",
        steps=1,
        resumed_from_step=None,
        initial_loss=1.0,
        final_loss=1.0,
        eval_losses={},
        tokens_per_second=1.0,
        padding_share=0.0,
        train_tokens=1,
        label_tokens=1,
        train_examples=len(train_examples),
        dropped_examples=0,
        stopped_early=False,
        loss_plot=None,
    )


def covered(path: str, sections: tuple[str, ...]) -> bool:
    if any(path == s or path.startswith(s + ".") for s in sections):
        return True
    parts = path.split(".")
    return len(parts) == 3 and parts[0] == "models" and parts[2] in ModelSpec.OPERATIONAL_FIELDS


def test_every_setting_a_stage_reads_is_in_its_staleness_hash(tmp_path, recorder_for, monkeypatch):
    cfg, ws = configure(tmp_path)
    cfg = cfg.model_copy(deep=True)
    cfg.curate.sources = ["qa", "multihop"]
    cfg.curate.label_clusters = True
    cfg.multihop.max_groups = 2
    monkeypatch.setattr("doctune.train.trainer.train", _fake_trainer)
    monkeypatch.setattr("doctune.llm.hf.embedded_safetensors_dir", lambda: tmp_path / "base-model")
    recorder = recorder_for(cfg)

    steps = [s for s in pipeline.steps(cfg) if s.artifact]
    at = next(i for i, s in enumerate(steps) if s.name == "curate split")
    steps.insert(at, pipeline.Step("curate tag", "tags", curate.run_tag))
    steps.insert(at, pipeline.Step("generate rephrase", "rephrased", generate.run_rephrase))
    reads: dict[str, set[str]] = {}
    for step in steps:
        recorder.reads.clear()
        recorder.active = True
        try:
            step.run(cfg, ws, progress=False)
        finally:
            recorder.active = False
        reads[step.artifact] = set(recorder.reads)

    table = {artifact: sorted(r) for artifact, r in reads.items()}
    print(json.dumps(table, indent=2))  # the enumeration: which stage reads which setting
    assert set(reads) >= {"documents", "summaries", "chunks", "qa", "multihop", "rephrased", "dedup", "clustered"}
    assert {"tags", "dataset", "exports", "training_runs"} <= set(reads)
    assert "export.system_prompt" in reads["training_runs"]  # the defect this test was written for
    assert "generate.categories" in reads["qa"] and "chunk.max_chars" in reads["chunks"]  # the recorder works

    allowed = {(a, p) for a, p in NOT_OUTPUT}
    missing = {
        artifact: sorted(
            p for p in r if not covered(p, ARTIFACT_PRODUCERS[artifact][1]) and not {("*", p), (artifact, p)} & allowed
        )
        for artifact, r in reads.items()
    }
    assert {a: m for a, m in missing.items() if m} == {}, "settings read but not in the staleness hash"


def test_changing_the_export_system_prompt_makes_training_stale(tmp_path):
    cfg = DoctuneConfig.model_validate({"workspace": str(tmp_path)})
    ws = Workspace(tmp_path)
    ws.start_run("train", cfg).write_artifact("training_runs", [], BaseModel)
    assert ws.freshness("training_runs", cfg) == "fresh"
    changed = cfg.model_copy(update={"export": cfg.export.model_copy(update={"system_prompt": "Answer in French."})})
    assert ws.freshness("training_runs", changed).startswith("stale (config section")
    # train.system_prompt, when set, is part of the hash too
    own = cfg.model_copy(update={"train": cfg.train.model_copy(update={"system_prompt": "Be brief."})})
    assert ws.freshness("training_runs", own).startswith("stale")
