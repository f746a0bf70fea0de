"""Training in two processes on CPU: DDP over gloo through `accelerate launch`, the same train stage.

The two-process run is real (SmolLM2-135M, LoRA, two optimizer steps): both ranks train on their own half of every
batch, rank 0 alone writes the adapter, the run's files and the trackers' runs; the registry gets one entry."""

from __future__ import annotations

import json
import logging
import math

import pytest
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import DoctuneConfig
from doctune.records import DatasetItem
from doctune.registry import Registry
from doctune.train.config import TrainConfig
from doctune.train.distributed import LAUNCH_LOG, LaunchError, launch_command, needs_launch
from doctune.workspace import Workspace

FACTS = [
    ("What colour is the zorblat fruit?", "The zorblat fruit is bright purple."),
    ("Where does the zorblat tree grow?", "The zorblat tree grows on the slopes of Mount Kelva."),
    ("How tall is a zorblat tree?", "A zorblat tree grows up to twelve metres tall."),
    ("When is the zorblat harvest?", "The zorblat harvest takes place every October."),
    ("What does a zorblat taste like?", "A zorblat tastes like pear and cinnamon."),
    ("Who first described the zorblat?", "The botanist Ilse Marrow first described the zorblat in 1871."),
    ("How many seeds does a zorblat have?", "A zorblat has exactly seven seeds."),
    ("What is zorblat wood used for?", "Zorblat wood is used to build violins."),
    ("Which animal eats zorblat leaves?", "The blue mountain goat eats zorblat leaves."),
    ("How long does a zorblat tree live?", "A zorblat tree lives for about two hundred years."),
]
SPLITS = ["train"] * 8 + ["eval"] * 2


def _item(i: int, question: str, answer: str, split: str) -> DatasetItem:
    return DatasetItem(
        item_id=f"i{i}",
        kind="qa",
        unit_id="c0",
        doc_ids=["d0"],
        chunk_ids=["c0"],
        k=1,
        question=question,
        answer=answer,
        evaluation_criteria="",
        difficulty=3,
        category="factual",
        citations=[],
        citations_verified=True,
        model="fake",
        source="qa",
        split=split,
    )


def _workspace(tmp_path) -> tuple[DoctuneConfig, Workspace, list[DatasetItem]]:
    cfg = DoctuneConfig.model_validate({"workspace": str(tmp_path)})
    ws = Workspace(tmp_path)
    items = [_item(i, q, a, split) for i, ((q, a), split) in enumerate(zip(FACTS, SPLITS, strict=True))]
    ws.start_run("curate", cfg).write_artifact("dataset", items, DatasetItem)
    return cfg, ws, items


def _two_process_config(**overrides) -> TrainConfig:
    base = {
        "processes": 2,
        "num_epochs": 1,  # 8 train items, 2 per process and step: 2 steps with two processes, 4 with one
        "per_device_batch_size": 2,
        "learning_rate": 1e-3,
        "max_length": 128,
        "lora_r": 8,
        "eval_steps": None,  # eval loss once, at the end
        "save_steps": 2,  # one checkpoint, at the last step
        "tracking": ["tensorboard"],
        "device": "cpu",
    }
    return TrainConfig(**{**base, **overrides})


@pytest.mark.slow
def test_two_cpu_processes_train_one_adapter_and_register_it_once(tmp_path, monkeypatch, caplog):
    from transformers import AutoTokenizer

    from doctune.llm.hf import embedded_safetensors_dir
    from doctune.stages import train as train_stage
    from doctune.train.data import items_to_examples, tokenize_examples

    config, ws, items = _workspace(tmp_path)
    quick = _two_process_config()
    monkeypatch.setattr(train_stage, "train_config", lambda _config: quick)
    caplog.set_level(logging.INFO)  # the launched processes log at the caller's level

    result = train_stage.run(config, ws, progress=False)

    assert result.counts == {"train_items": 8, "steps": 2, "processes": 2, "eval_items": 2}
    [row] = ws.read_rows("training_runs", train_stage.TrainingRun, config)
    assert row.processes == 2 and row.distributed_backend == "gloo" and row.device == "cpu"
    assert row.steps == 2  # the batches were shared: 8 items / (2 per process x 2 processes)
    assert math.isfinite(row.initial_loss) and math.isfinite(row.final_loss)
    assert math.isfinite(json.loads(row.eval_losses_json)["eval"])
    [entry] = Registry(ws).list_entries()
    assert entry.id == row.run_id == result.outputs["registry_id"]

    out = tmp_path / row.output_dir
    resolved = json.loads((out / "train_config.json").read_text())
    assert resolved["processes"] == 2 and resolved["distributed_backend"] == "gloo"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["global_batch_size"] == 4 and metrics["parallelism"] == "ddp"
    # every train example was seen exactly once over the two processes: their token counts add up to the split's
    tokenizer = AutoTokenizer.from_pretrained(embedded_safetensors_dir())
    train_items = [item for item in items if item.split == "train"]
    tokenized, _ = tokenize_examples(items_to_examples(train_items, config.export.system_prompt), tokenizer, 128)
    assert metrics["train_tokens"] == sum(len(t["input_ids"]) for t in tokenized)
    assert metrics["tokens_per_second"] > 0

    adapter = tmp_path / row.weights_path
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "tokenizer.json").is_file()
    adapter_config = json.loads((adapter / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert [p.name for p in out.iterdir() if p.is_dir() and p.name in {"adapter", "model"}] == ["adapter"]
    assert (out / "checkpoint-2").is_dir()
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1  # rank 0's tracker only
    history = json.loads((out / "log_history.json").read_text())
    assert [e["step"] for e in history if "loss" in e] == [1, 2]

    launch_log = (out / LAUNCH_LOG).read_text()
    for rank in (0, 1):
        assert f"[rank {rank}/2] INFO doctune.train.launched: rank {rank} of 2 done: 2 steps" in launch_log
    assert launch_log.count("saved the adapter") == 1  # written once, by rank 0


def test_a_failing_launcher_stops_train_with_one_clear_line(tmp_path, monkeypatch):
    """The launcher itself fails (an accelerate config it cannot read): `doctune train` says so in one line."""
    _workspace(tmp_path)
    bad = tmp_path / "accelerate.yaml"
    bad.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: NO_SUCH_TYPE\nnum_processes: 2\n")
    overrides = ["train.processes=2", f"train.accelerate_config={bad}", "train.device=cpu", "train.tracking=none"]
    args = ["--quiet", "train", "--workspace", str(tmp_path)]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "error: train: 2-process training failed (exit code 1): ValueError:" in message
    assert "NO_SUCH_TYPE" in message and LAUNCH_LOG in message
    assert "Traceback" not in result.output.split("error:")[-1]
    assert not list(tmp_path.glob("runs/*-train/train/adapter"))


@pytest.mark.slow
def test_a_failing_rank_is_named_with_its_error(tmp_path):
    """Both processes start and fail (no model where the config points): the error names the rank and the cause."""
    from doctune.train.data import chat_messages
    from doctune.train.trainer import train

    examples = [{"messages": chat_messages(q, a, None)} for q, a in FACTS[:4]]
    cfg = _two_process_config(tracking=[])
    with pytest.raises(LaunchError) as caught:
        train(cfg, tmp_path / "no-such-model", examples, {}, tmp_path / "run", progress=False)
    message = str(caught.value)
    assert message.startswith("2-process training failed (exit code 1): rank ")
    assert "no-such-model" in message and "\n" not in message
    assert not (tmp_path / "run" / "train_config.json").exists()


def test_launch_command_and_guards(tmp_path, monkeypatch):
    job = tmp_path / "job.json"
    ddp = launch_command(TrainConfig(processes=4), job)
    assert ddp[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in ddp
    assert ddp[ddp.index("--num_processes") + 1] == "4" and ddp[-3:] == ["-m", "doctune.train.launched", str(job)]
    fsdp = launch_command(TrainConfig(processes=2, accelerate_config="fsdp.yaml"), job)
    assert fsdp[fsdp.index("--config_file") + 1] == "fsdp.yaml" and "--multi_gpu" not in fsdp
    assert not needs_launch(1) and needs_launch(2)
    monkeypatch.setenv("WORLD_SIZE", "2")  # inside a launched process: train there, never launch again
    assert not needs_launch(2)
    with pytest.raises(ValueError):
        TrainConfig(processes=0)


def test_more_processes_than_gpus_or_callbacks_are_refused_before_any_launch(tmp_path, monkeypatch):
    import torch

    from doctune.train.trainer import train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(LaunchError, match="train.processes is 2 but 1 CUDA GPU"):
        train(TrainConfig(processes=2), tmp_path / "model", [], {}, tmp_path / "run")
    with pytest.raises(ValueError, match="callbacks"):
        train(TrainConfig(processes=2), tmp_path / "model", [], {}, tmp_path / "run", callbacks=[object()])
    assert not (tmp_path / "run" / LAUNCH_LOG).exists()
