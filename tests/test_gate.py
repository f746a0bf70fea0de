"""A tuned model is compared with its own base, and only the configured gate against that base is recorded.

The eval stage runs for real with its model backends replaced by scripted ones (no weights load): ``base`` answers
"no idea", a tuned model answers each question with its reference, so token F1 separates them. Which folder each
model would have been loaded from is recorded, so the tests see which base was chosen.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctune.config import DoctuneConfig, ModelSpec
from doctune.llm import create_backend
from doctune.llm.fake import FakeBackend
from doctune.records import DatasetItem
from doctune.registry import ModelEntry, Registry, RegistryError, register_training_run
from doctune.stages import evaluate
from doctune.stages import models as models_stage
from doctune.stages.train import TrainingRun
from doctune.train.resolve import BASE, student_base
from doctune.workspace import Workspace
from test_registry import _item

VERDICT = json.dumps({"reason": "Matches.", "verdict": "correct"})
FACTS = [
    ("Which planet is closest to the Sun?", "Mercury, which has no moons."),
    ("What gas makes up the thick atmosphere of Venus?", "Carbon dioxide, which traps heat."),
    ("Which planet is the largest?", "Jupiter, with a faint ring system."),
    ("What are the bright rings of Saturn made of?", "Ice."),
    ("What is the axial tilt of Uranus?", "98 degrees: Uranus rotates on its side."),
    ("How long does sunlight take to reach the Earth?", "About 8 minutes."),
    ("Which river carries the most water?", "The Amazon."),
]
ANSWERS = dict(FACTS)
FakeBackend.register_script("knows-the-answers", lambda messages: ANSWERS.get(messages[-1].content, "no idea"))
FakeBackend.register_script("knows-nothing", lambda messages: "no idea")


def _exact_judge(messages) -> str:
    """A scripted judge that passes its check: correct exactly when the answer is the reference."""
    fields = dict(line.split(": ", 1) for line in messages[-1].content.splitlines() if ": " in line)
    ok = fields["Answer to grade"].strip() == fields["Reference answer"].strip()
    return json.dumps({"reason": "compared", "verdict": "correct" if ok else "incorrect"})


FakeBackend.register_script("exact-judge", _exact_judge)


def _config(tmp_path: Path, base_folder: Path, **gate) -> DoctuneConfig:
    return DoctuneConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "train": {"base_model": str(base_folder)},
            "models": {
                "judge": {"backend": "fake", "options": {"default_reply": VERDICT}},
                "rephraser": {"backend": "fake", "model": "knows-nothing"},
                "embedder": {"backend": "fake"},
            },
            "evaluate": {
                "splits": ["eval"],
                "n_resamples": 200,
                "gate": {"split": "eval", "metric": "token_f1", **gate},
            },
        }
    )


def _workspace(cfg: DoctuneConfig) -> Workspace:
    ws = Workspace(cfg.workspace)
    splits = ["train"] * 4 + ["eval"] * 3
    items = [
        _item(i, split, "da").model_copy(update={"question": q, "answer": a})
        for i, ((q, a), split) in enumerate(zip(FACTS, splits, strict=True))
    ]
    ws.start_run("curate", cfg).write_artifact("dataset", items, DatasetItem)
    return ws


def _register(cfg: DoctuneConfig, ws: Workspace) -> ModelEntry:
    """What the train stage registers, without training: the configured base, a fake adapter, a merged copy."""
    run = ws.start_run("train", cfg)
    adapter = run.run_dir / "train" / "adapter"
    adapter.mkdir(parents=True)
    merged = ws.root / "models" / run.run_id / "merged"
    merged.mkdir(parents=True)
    (merged / "config.json").write_text("{}")  # eval's merged copy exists: nothing to merge
    row = TrainingRun(
        run_id=run.run_id,
        base_model=student_base(cfg),
        method="lora",
        weights_path=str(adapter.relative_to(ws.root)),
        output_dir=str(adapter.parent.relative_to(ws.root)),
        dataset_sha256=ws.manifest()["dataset"].sha256,
        train_items=4,
        steps=1,
        eval_losses_json="{}",
        tokens_per_second=1.0,
        padding_share=0.0,
        device="cpu",
        precision="fp32",
    )
    items = ws.read_rows("dataset", DatasetItem, cfg)
    return register_training_run(ws, cfg, row, [i for i in items if i.split == "train"], {})


@pytest.fixture
def loaded(monkeypatch) -> list[ModelSpec]:
    """The specs of the student models the eval stage asked for (answered by scripts instead of loaded)."""
    specs: list[ModelSpec] = []

    def scripted(spec: ModelSpec):
        if spec.backend != "transformers":
            return create_backend(spec)
        specs.append(spec)
        script = "knows-nothing" if spec.label.startswith("base") else "knows-the-answers"
        return FakeBackend(ModelSpec(backend="fake", model=script, label=spec.label))

    monkeypatch.setattr(evaluate, "create_backend", scripted)
    return specs


def test_base_means_the_tuned_models_own_base(tmp_path, loaded, monkeypatch):
    first_base = tmp_path / "models" / "qwen-0.5b"
    cfg = _config(tmp_path, first_base)
    ws = _workspace(cfg)
    tuned = _register(cfg, ws)
    assert tuned.base_model == str(first_base.absolute())

    result = evaluate.run(cfg, ws, progress=False)
    base_spec = next(s for s in loaded if s.label.startswith("base"))
    assert base_spec.model == str(first_base.absolute())  # not the embedded SmolLM2
    assert result.stats["gate"][tuned.id]["passed"] is True

    # the config now names another student: `base` still means the tuned model's own base beside it ...
    later = _config(tmp_path, tmp_path / "models" / "llama-1b")
    loaded.clear()
    evaluate.run(later, ws, progress=False)
    assert next(s for s in loaded if s.label.startswith("base")).model == str(first_base.absolute())
    assert Registry(ws).get(tuned.id).gate.base == str(first_base.absolute())

    # ... while `chat base` (no tuned model named) is the configured student's base
    chosen = {}

    def fake_load(weights, base):
        chosen.update(weights=weights, base=base)
        raise FileNotFoundError("stop here")

    monkeypatch.setattr("doctune.train.chat.load_chat_model", fake_load)
    with pytest.raises(FileNotFoundError):
        models_stage.run_chat(later, ws, BASE)
    assert chosen == {"weights": None, "base": tmp_path / "models" / "llama-1b"}
    with pytest.raises(FileNotFoundError):
        models_stage.run_chat(later, ws, tuned.id)
    assert chosen["base"] == first_base.absolute()


def test_only_the_configured_gate_against_the_own_base_is_recorded(tmp_path, loaded):
    cfg = _config(tmp_path, tmp_path / "base-model")
    ws = _workspace(cfg)
    tuned, other = _register(cfg, ws), _register(cfg, ws)
    registry = Registry(ws)

    with pytest.raises(RegistryError, match="has no evaluation gate result: run `doctune eval`"):
        registry.promote(tuned.id)  # never evaluated

    result = evaluate.run(cfg, ws, models=[BASE, tuned.id], progress=False)
    assert result.stats["gate"][tuned.id] == {
        "passed": True,
        "reason": result.stats["gate"][tuned.id]["reason"],
        "recorded": True,
    }
    gate = registry.get(tuned.id).gate
    assert gate.passed and gate.rule["metric"] == "token_f1" and gate.report.startswith("reports/eval-")
    assert (ws.root / gate.report).is_file()
    assert registry.promote(tuned.id).id == tuned.id

    # later evaluations that are not the configured gate against the own base never replace it
    cases = {
        "another baseline": (cfg, [other.id, tuned.id], "compared with"),
        "a role's model as baseline": (cfg, ["role:rephraser", tuned.id], "compared with role:rephraser"),
        "a scripted judge deciding accuracy": (
            _config(tmp_path, tmp_path / "base-model", metric="accuracy").model_copy(
                update={
                    "models": cfg.models.model_copy(update={"judge": ModelSpec(backend="fake", model="exact-judge")})
                }
            ),
            [BASE, tuned.id],
            "scripted test double",
        ),
        "a gate split that was not evaluated": (
            _config(tmp_path, tmp_path / "base-model", split="rephrased_eval"),
            [BASE, tuned.id],
            "was not evaluated",
        ),
    }
    for case, (config, models, why) in cases.items():
        result = evaluate.run(config, ws, models=models, progress=False)
        decision = result.stats["gate"][tuned.id]
        assert decision["recorded"] is False and why in decision["not_recorded"], case
        assert registry.get(tuned.id).gate == gate, case

    # an accuracy gate with the default scripted judge (it calls everything correct): the judge fails its check,
    # the deterministic grader decides, and its decision is recorded with its name
    result = evaluate.run(_config(tmp_path, tmp_path / "base-model", metric="accuracy"), ws, progress=False)
    assert result.stats["markdown"].startswith("Graded by deterministic grader")
    assert result.stats["gate"][tuned.id]["recorded"] and registry.get(tuned.id).gate.judge.startswith("deterministic")
    gate = registry.get(tuned.id).gate

    # a failed gate blocks promotion; --force overrides it
    failing = _config(tmp_path, tmp_path / "base-model", min_margin=2.0)
    evaluate.run(failing, ws, models=[BASE, other.id], progress=False)
    with pytest.raises(RegistryError, match="failed its evaluation gate"):
        registry.promote(other.id)
    assert registry.promote(other.id, force=True).id == other.id
