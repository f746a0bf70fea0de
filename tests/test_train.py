"""The training stage: completion-only labels on the real SmolLM2 template, a short real LoRA run, resume."""

from __future__ import annotations

import json

import pytest
from transformers import TrainerCallback

from doctune.config import DoctuneConfig
from doctune.records import DatasetItem
from doctune.registry import Registry, lineage
from doctune.train.config import TrainConfig
from doctune.train.data import IGNORE_INDEX, chat_messages, items_to_examples, read_chat_jsonl, tokenize_example
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


@pytest.fixture(scope="module")
def model_dir():
    from doctune.llm.hf import embedded_safetensors_dir

    return embedded_safetensors_dir()


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


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


@pytest.mark.parametrize("system", ["Answer briefly.", None])
def test_labels_train_only_the_answer_and_end_of_turn(tokenizer, system):
    question, answer = "What is the capital of France?", "Paris is the capital of France."
    messages = chat_messages(question, answer, system)
    example = tokenize_example(messages, tokenizer)
    ids, labels = example["input_ids"], example["labels"]
    assert len(ids) == len(labels)
    assert ids == list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=True, return_dict=True, add_generation_prompt=True)
    n_prompt = len(prompt["input_ids"])
    assert all(label == IGNORE_INDEX for label in labels[:n_prompt])  # system, user, "<|im_start|>assistant\n"
    trained = [(i, label) for i, label in enumerate(labels) if label != IGNORE_INDEX]
    positions = [i for i, _ in trained]
    assert positions == list(range(n_prompt, positions[-1] + 1))  # one contiguous run right after the prompt
    assert all(ids[i] == label for i, label in trained)
    assert tokenizer.decode([label for _, label in trained]) == answer + "<|im_end|>"
    assert labels[-1] == IGNORE_INDEX and tokenizer.decode(ids[-1:]) == "\n"  # the template's newline after the turn
    assert "France?" in tokenizer.decode(ids[:n_prompt])


def test_truncation_and_prompt_only_examples(tokenizer):
    messages = chat_messages("Q " * 50, "A long answer " * 20, None)
    full = tokenize_example(messages, tokenizer)
    n_prompt = full["labels"].index(next(label for label in full["labels"] if label != IGNORE_INDEX))
    cut = tokenize_example(messages, tokenizer, max_length=n_prompt + 3)
    assert len(cut["input_ids"]) == n_prompt + 3 and sum(label != IGNORE_INDEX for label in cut["labels"]) == 3
    assert tokenize_example(messages, tokenizer, max_length=n_prompt) is None
    with pytest.raises(ValueError, match="assistant"):
        tokenize_example(messages[:-1], tokenizer)


def test_examples_from_items_and_chat_jsonl(tmp_path):
    from doctune.export.jsonl import write_chat_jsonl

    items = [_item(i, q, a, "train") for i, (q, a) in enumerate(FACTS[:3])]
    examples = items_to_examples(items, "Be brief.")
    assert examples[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": FACTS[0][0]},
        {"role": "assistant", "content": FACTS[0][1]},
    ]
    write_chat_jsonl(items, tmp_path / "train.jsonl", "Be brief.")
    assert read_chat_jsonl(tmp_path / "train.jsonl") == examples
    assert [m["role"] for m in items_to_examples(items, "")[0]["messages"]] == ["user", "assistant"]


def test_config_rejects_unknown_keys_and_misaligned_early_stopping():
    with pytest.raises(ValueError):
        TrainConfig(lora_rank=8)
    with pytest.raises(ValueError, match="multiple"):
        TrainConfig(early_stopping_patience=2, eval_steps=3, save_steps=4)
    assert TrainConfig(early_stopping_patience=2, eval_steps=2, save_steps=4).early_stopping_patience == 2


class _Interrupt(Exception):
    pass


class _StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise _Interrupt(f"killed at step {self.step}")


def _quick_config(**overrides) -> TrainConfig:
    base = {
        "max_steps": 8,
        "learning_rate": 1e-3,
        "per_device_batch_size": 4,
        "max_length": 128,
        "save_steps": 4,
        "eval_steps": 4,
        "logging_steps": 1,
        "lora_r": 8,
    }
    return TrainConfig(**{**base, **overrides})


@pytest.mark.slow
def test_lora_training_learns_logs_and_resumes_after_a_kill(tmp_path, model_dir):
    from doctune.train.trainer import train

    examples = [{"messages": chat_messages(q, a, "Answer briefly.")} for q, a in FACTS]
    evals = {"eval": examples[:3], "rephrased_eval": []}  # an empty split is skipped
    out = tmp_path / "run"
    cfg = _quick_config()
    with pytest.raises(_Interrupt):
        train(cfg, model_dir, examples, evals, out, progress=False, callbacks=[_StopAt(5)])
    assert (out / "checkpoint-4").is_dir() and not (out / "checkpoint-5").exists()

    result = train(cfg, model_dir, examples, evals, out, resume=True, progress=False)
    assert result.resumed_from_step == 4
    assert result.steps == 8
    history = json.loads((out / "log_history.json").read_text())
    train_steps = [e["step"] for e in history if "loss" in e]
    assert train_steps == list(range(1, 9))  # steps 1-4 from the checkpoint, 5-8 after resuming; none twice
    assert result.initial_loss is not None and result.final_loss is not None
    assert result.final_loss < result.initial_loss
    assert set(result.eval_losses) == {"eval"}
    assert result.padding_share == 0.0 and result.tokens_per_second > 0
    adapter = out / "adapter"
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    assert (adapter / "tokenizer.json").exists()
    assert (out / "loss.png").stat().st_size > 1000
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    resolved = json.loads((out / "train_config.json").read_text())
    assert resolved["train"]["max_steps"] == 8 and resolved["device"] == "cpu"


@pytest.mark.slow
def test_train_stage_records_a_training_run(tmp_path, monkeypatch):
    from doctune.stages import train as train_stage

    cfg = DoctuneConfig.model_validate({"workspace": str(tmp_path)})
    ws = Workspace(tmp_path)
    splits = ["train"] * 8 + ["eval"] * 2
    items = [_item(i, q, a, split) for i, ((q, a), split) in enumerate(zip(FACTS, splits, strict=True))]
    ws.start_run("curate", cfg).write_artifact("dataset", items, DatasetItem)
    quick = _quick_config(max_steps=2, save_steps=2, tracking=["tensorboard", "mlflow"])
    monkeypatch.setattr(train_stage, "train_config", lambda config: quick)

    result = train_stage.run(cfg, ws, progress=False)
    assert result.counts == {"train_items": 8, "steps": 2, "eval_items": 2}
    rows = ws.read_rows("training_runs", train_stage.TrainingRun, cfg)
    assert len(rows) == 1
    row = rows[0]
    assert row.base_model == "SmolLM2-135M-Instruct" and row.method == "lora" and row.steps == 2
    assert row.dataset_sha256 == ws.manifest()["dataset"].sha256
    assert (tmp_path / row.weights_path / "adapter_model.safetensors").exists()
    assert set(json.loads(row.eval_losses_json)) == {"eval"}
    run_dir = tmp_path / "runs" / row.run_id
    assert (run_dir / "config.yaml").exists() and (run_dir / "train" / "train_config.json").exists()
    assert ws.manifest()["training_runs"].inputs == {"dataset": ws.manifest()["dataset"].sha256}
    registry = Registry(ws)
    first = registry.get(result.outputs["registry_id"])
    assert first.weights_path == row.weights_path  # registered
    steps = {s.kind: s for s in lineage(first.id, ws)}
    assert list(steps) == ["adapter", "dataset", "items", "chunks", "documents"]
    assert steps["dataset"].sha256 == ws.manifest()["dataset"].sha256 and steps["dataset"].unchanged
    # tracked in the workspace's MLflow store, tagged with the lineage, and found from the registry entry
    from mlflow import MlflowClient

    assert set(first.tracking) == {"tensorboard", "mlflow"} and "mlflow.db" in first.tracking["mlflow"]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    [tracked] = client.search_runs([client.get_experiment_by_name("doctune").experiment_id])
    assert tracked.info.run_name == row.run_id and tracked.info.status == "FINISHED"
    assert tracked.info.run_id in first.tracking["mlflow"]
    assert tracked.data.tags["doctune.dataset_sha256"] == row.dataset_sha256
    assert tracked.data.tags["doctune.base_model"] == "SmolLM2-135M-Instruct"

    # where the run and its weights are is recorded without a local path; the adapter names its base by Hub id
    assert first.tracking["tensorboard"] == f"runs/{row.run_id}/train/tensorboard"
    assert first.tracking["mlflow"].startswith("sqlite:///mlflow/mlflow.db (experiment 'doctune'")
    adapter_config = json.loads((tmp_path / row.weights_path / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert json.loads((run_dir / "train" / "metrics.json").read_text())["weights_dir"] == "adapter"

    # a second trained model; promote both in turn (forced: neither passed a gate), then roll back to the first
    second_id = train_stage.run(cfg, ws, progress=False).outputs["registry_id"]
    registry.promote(first.id, force=True)
    registry.promote(second_id, force=True)
    assert registry.current().id == second_id
    assert registry.rollback().id == first.id == registry.current().id


@pytest.mark.slow
def test_early_stopping_ends_a_diverging_run(tmp_path, model_dir):
    """A learning rate far too high makes eval loss rise: the run stops before max_steps and keeps the best."""
    from doctune.train.trainer import train

    examples = [{"messages": chat_messages(q, a, "Answer briefly.")} for q, a in FACTS]
    cfg = _quick_config(
        max_steps=12, learning_rate=0.5, eval_steps=1, save_steps=1, early_stopping_patience=1, save_total_limit=3
    )
    result = train(cfg, model_dir, examples, {"eval": examples[:3]}, tmp_path / "run", progress=False)
    assert result.stopped_early and result.steps < 12


@pytest.mark.slow
def test_padding_free_batches_keep_attention_within_each_example(tmp_path, model_dir, tokenizer):
    """The trainer's padding-free collator flattens a batch into one row; the loss must equal the examples' own."""
    import torch
    from transformers import AutoModelForCausalLM

    from doctune.train.data import to_dataset, tokenize_examples
    from doctune.train.metrics import TokenCounter
    from doctune.train.trainer import _sft_args, counting_sft_trainer

    examples = [{"messages": chat_messages(q, a, "Answer briefly.")} for q, a in FACTS[:4]]
    tokenized, _ = tokenize_examples(examples, tokenizer, 128)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    cfg = _quick_config(max_steps=1)
    assert cfg.padding_free and not cfg.packing
    args = _sft_args(cfg, tmp_path, "cpu", "fp32", None, progress=False)
    trainer = counting_sft_trainer(
        TokenCounter(), model=model, args=args, train_dataset=to_dataset(tokenized), processing_class=tokenizer
    )
    batch = trainer.data_collator([dict(t) for t in tokenized])
    assert batch["input_ids"].shape[0] == 1 and "position_ids" in batch  # one row, no padding
    assert batch["input_ids"].shape[1] == sum(len(t["input_ids"]) for t in tokenized)

    def summed_nll(input_ids, labels, **extra):
        logits = model(input_ids=input_ids, **extra).logits[:, :-1].float()
        target = labels[:, 1:]
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="sum")

    with torch.no_grad():
        separate = sum(summed_nll(torch.tensor([t["input_ids"]]), torch.tensor([t["labels"]])) for t in tokenized)
        flattened = summed_nll(batch["input_ids"], batch["labels"], position_ids=batch["position_ids"])
        leaking = summed_nll(batch["input_ids"], batch["labels"])  # no position ids: one long causal sequence
    assert flattened.item() == pytest.approx(separate.item(), rel=1e-4)
    assert abs(leaking.item() - separate.item()) > 1e-2 * separate.item()  # the check can tell the difference


def test_device_and_precision_follow_the_hardware_unless_configured(monkeypatch):
    """A bf16-capable CUDA GPU gets cuda + bf16 with no config change; config overrides win; CPU stays fp32."""
    import torch

    from doctune.train.trainer import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_device(TrainConfig()) == ("cuda", "bf16")
    assert resolve_device(TrainConfig(precision="fp32")) == ("cuda", "fp32")
    assert resolve_device(TrainConfig(device="cpu")) == ("cpu", "fp32")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a V100
    assert resolve_device(TrainConfig()) == ("cuda", "fp32")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(TrainConfig()) == ("cpu", "fp32")
    assert resolve_device(TrainConfig(precision="bf16")) == ("cpu", "bf16")  # CPU autocast, on request only


def test_multi_turn_trains_every_assistant_turn_and_nothing_else(tokenizer):
    messages = [
        {"role": "system", "content": "You are the expert in a dialogue."},
        {"role": "user", "content": "Novice: What is R?"},
        {"role": "assistant", "content": "R is a suite of software facilities."},
        {"role": "user", "content": "Sceptic: Where does it say so?"},
        {"role": "assistant", "content": "The introduction says it."},
    ]
    example = tokenize_example(messages, tokenizer)
    ids, labels = example["input_ids"], example["labels"]
    runs, current = [], []
    for i, label in enumerate(labels):
        if label != IGNORE_INDEX:
            assert ids[i] == label
            current.append(label)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    assert runs == ["R is a suite of software facilities.<|im_end|>", "The introduction says it.<|im_end|>"]
    assert "Sceptic" not in "".join(runs) and "Novice" not in "".join(runs)
