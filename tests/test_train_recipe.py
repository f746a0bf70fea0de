"""Training a recipe's dataset: one LoRA adapter per character, registered with labels, listed by character."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import ConfigError, DoctuneConfig
from doctune.recipes import get_recipe
from doctune.records import ChatMessage, Example
from doctune.registry import Registry, lineage
from doctune.stages.train import TrainingRun
from doctune.train.recipe_data import adapter_datasets, example_messages, examples_to_chats, slug
from doctune.workspace import Workspace

runner = CliRunner()
PLAY = "The Test"
LINES = {
    "ALICE": ["The moon is pale tonight, good friend.", "I fear the sea will take us all.", "Hold fast, hold fast."],
    "BOB": ["Speak not of the sea, I pray.", "Then let us go within.", "The night is long."],
}
#: tiny, fast training: one step, no tracker, no checkpoint, eval only at the end
QUICK_TRAIN = {
    "max_steps": 1,
    "per_device_batch_size": 4,
    "max_length": 96,
    "lora_r": 4,
    "learning_rate": 1e-3,
    "save_steps": 1000,
    "eval_steps": None,
    "tracking": "none",
}


def _examples() -> list[Example]:
    """Two characters of one play: two train examples each in scene 1, one eval example each in scene 2."""
    recipe = get_recipe("character")
    out = []
    for character, lines in LINES.items():
        other = "BOB" if character == "ALICE" else "ALICE"
        for i, line in enumerate(lines):
            scene = "1" if i < 2 else "2"
            fields = {
                "character": character,
                "play": PLAY,
                "act": "I",
                "scene": scene,
                "speech_id": f"{character}-{i}",
                "speech_index": i,
                "context_speakers": [other],
                "card": f"You are {character} in {PLAY}.",
                "reply_hash": "0" * 32,
            }
            messages = [
                {"role": "system", "content": f"You are {character} in {PLAY}. Reply in their voice."},
                {"role": "user", "content": f"{PLAY}, Act I, Scene {scene}.\n{other}: Well met.\n{character} replies:"},
                {"role": "assistant", "content": line},
            ]
            ex = recipe.example(f"{character}-{i}", f"{PLAY}|I|{scene}", messages, fields, doc_ids=["doc0"])
            out.append(ex.model_copy(update={"split": "train" if i < 2 else "eval"}))
    return out


@pytest.fixture
def project(tmp_path):
    """A workspace with dataset_character written under the same config training uses (its freshness holds)."""
    raw = {"project": "plays", "workspace": str(tmp_path / "ws"), "train": QUICK_TRAIN}
    config_file = tmp_path / "doctune.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    cfg = DoctuneConfig.model_validate(raw)
    ws = Workspace(tmp_path / "ws")
    ws.start_run("curate-examples", cfg).write_artifact("dataset_character", _examples(), Example, inputs=[])
    return cfg, ws, config_file


def _cli(config_file, *args: str):
    return runner.invoke(app, ["--quiet", "--config", str(config_file), *args], catch_exceptions=False)


def test_examples_group_into_one_adapter_per_character():
    recipe = get_recipe("character")
    adapters = adapter_datasets(recipe, _examples())
    assert [a.key for a in adapters] == ["ALICE", "BOB"]
    alice = adapters[0]
    assert len(alice.train) == 2 and {s: len(v) for s, v in alice.eval_splits().items()} == {"eval": 1}
    assert alice.labels == {"recipe": "character", "character": "ALICE", "play": PLAY}
    # asked for by name, any case, in the order given; unknown names list what there is
    assert [a.key for a in adapter_datasets(recipe, _examples(), ["bob", "BOB", "Alice"])] == ["BOB", "ALICE"]
    with pytest.raises(ConfigError, match="CAROL.*ALICE, BOB"):
        adapter_datasets(recipe, _examples(), ["CAROL"])
    assert slug("LADY MACBETH") == "lady-macbeth"


def test_messages_end_at_the_last_assistant_turn():
    ex = _examples()[0]
    extra = ex.model_copy(update={"messages": [*ex.messages, ChatMessage(role="user", content="and then?")]})
    messages = example_messages(extra)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[-1]["content"] == LINES["ALICE"][0]
    assert examples_to_chats([ex]) == [{"messages": messages}]
    with pytest.raises(ValueError, match="no assistant"):
        example_messages(ex.model_copy(update={"messages": ex.messages[:2]}))


def test_train_recipe_needs_a_recipe_for_characters_and_known_characters(project):
    _cfg, ws, config_file = project
    no_recipe = _cli(config_file, "train", "--character", "ALICE")
    assert no_recipe.exit_code == 1 and "--recipe" in no_recipe.output
    unknown = _cli(config_file, "train", "--recipe", "character", "--adapter", "CAROL")
    assert unknown.exit_code == 1 and "CAROL" in unknown.output and "ALICE, BOB" in unknown.output
    assert Registry(ws).list_entries() == []


@pytest.mark.slow
def test_train_one_adapter_per_character_registered_with_labels(project):
    _cfg, ws, config_file = project
    result = _cli(config_file, "train", "--recipe", "character", "--character", "alice", "--character", "BOB")
    assert result.exit_code == 0, result.output
    entries = Registry(ws).list_entries()
    assert [e.labels for e in entries] == [
        {"recipe": "character", "character": name, "play": PLAY} for name in ("ALICE", "BOB")
    ]
    for entry, name in zip(entries, ("alice", "bob"), strict=True):
        assert entry.id.endswith(f"-train-{name}") and entry.method == "lora"
        assert entry.splits == {"train": 2, "eval": 1}
        assert entry.metrics["steps"] == 1 and set(entry.metrics["eval_losses"]) == {"eval"}
        assert entry.dataset_sha256 == ws.manifest()["dataset_character"].sha256
        # items.json: the example ids per split; lineage follows dataset_character
        items = json.loads((ws.root / entry.items_path).read_text())
        mine = [e for e in _examples() if e.field_values()["character"] == name.upper()]
        assert items["dataset"] == "dataset_character"
        assert items["splits"] == {s: [e.example_id for e in mine if e.split == s] for s in ("train", "eval")}
        steps = {s.kind: s for s in lineage(entry.id, ws)}
        assert steps["dataset"].unchanged and steps["dataset"].path.endswith("dataset_character.parquet")
        # the resolved config is saved with each run
        run_dir = ws.runs_dir / entry.id
        assert (run_dir / "config.yaml").exists() and (run_dir / "train" / "train_config.json").exists()

    rows = ws.read_rows("training_runs_character", TrainingRun)
    assert [json.loads(r.labels_json)["character"] for r in rows] == ["ALICE", "BOB"]
    assert "training_runs" not in ws.manifest()  # the QA pipeline's artifact is untouched

    listed = _cli(config_file, "models", "list", "--character", "ALICE")
    assert listed.exit_code == 0 and entries[0].id in listed.output and entries[1].id not in listed.output
    assert "ALICE" in listed.output and PLAY in listed.output
    by_label = _cli(config_file, "models", "list", "--label", "character=bob", "--label", f"play={PLAY}")
    assert entries[1].id in by_label.output and entries[0].id not in by_label.output
    nobody = _cli(config_file, "models", "list", "--character", "CAROL")
    assert nobody.exit_code == 0 and "no model labelled character=CAROL" in nobody.output
    bad = _cli(config_file, "models", "list", "--label", "character")
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output

    # each adapter folder loads with PEFT over the shared base
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from doctune.llm.hf import embedded_safetensors_dir

    base = AutoModelForCausalLM.from_pretrained(str(embedded_safetensors_dir()))
    model = PeftModel.from_pretrained(base, str(ws.root / entries[0].weights_path), adapter_name="ALICE")
    model.load_adapter(str(ws.root / entries[1].weights_path), adapter_name="BOB")
    assert set(model.peft_config) == {"ALICE", "BOB"}
    model.set_adapter("BOB")
    assert model.active_adapter == "BOB"


def test_an_adapter_resumes_only_its_own_unfinished_run_with_the_same_settings(tmp_path):
    """`doctune run` trains with resume on: a finished run, or one made with another base, is not continued."""
    from doctune.config import DoctuneConfig
    from doctune.stages.train import _interrupted_dir
    from doctune.workspace import Workspace

    ws = Workspace(tmp_path)
    cfg = DoctuneConfig.model_validate({"workspace": str(tmp_path)})
    run_ = ws.start_run("train-ophelia", cfg)
    (run_.run_dir / "train" / "checkpoint-2").mkdir(parents=True)
    assert _interrupted_dir(ws, "train-ophelia", cfg) == run_.run_dir / "train"
    other_base = DoctuneConfig.model_validate({"workspace": str(tmp_path), "train": {"base_model": "gemma3-270m"}})
    assert _interrupted_dir(ws, "train-ophelia", other_base) is None
    assert _interrupted_dir(ws, "train-hamlet", cfg) is None
    (run_.run_dir / "train" / "metrics.json").write_text("{}")
    assert _interrupted_dir(ws, "train-ophelia", cfg) is None
