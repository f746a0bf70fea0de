"""Exporting trained weights: the adapter, a merged model (same logits as base + adapter) and a GGUF for llama.cpp."""

from __future__ import annotations

import json

import pytest

from doctune.config import ConfigError
from doctune.train import export_model
from doctune.train.config import TrainConfig
from doctune.train.data import chat_messages
from doctune.train.export_model import (
    ConverterMissing,
    ExportError,
    export_adapter,
    export_gguf,
    export_merged,
    find_gguf_converter,
)

FACTS = [
    ("What colour is the zorblat fruit?", "The zorblat fruit is bright purple."),
    ("Where does the zorblat tree grow?", "The zorblat tree grows on the slopes of Mount Kelva."),
    ("How tall is a zorblat tree?", "A zorblat tree grows up to twelve metres tall."),
    ("When is the zorblat harvest?", "The zorblat harvest takes place every October."),
]
PROMPT = "What colour is the zorblat fruit?"
MARKER = ".doctune-owned"  # doctune.owned.MARKER, spelled out so these tests run (and fail) without the module


@pytest.fixture(scope="module")
def base_dir():
    from doctune.llm.hf import embedded_safetensors_dir

    return embedded_safetensors_dir()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, base_dir):
    """A tiny real LoRA adapter on the embedded SmolLM2 (a few CPU seconds): the training run's folder."""
    from doctune.train.trainer import train

    cfg = TrainConfig(
        max_steps=3,
        learning_rate=2e-3,
        per_device_batch_size=4,
        max_length=128,
        save_steps=100,
        eval_steps=None,
        logging_steps=1,
        lora_r=8,
        tracking="none",
    )
    examples = [{"messages": chat_messages(q, a, "Answer briefly.")} for q, a in FACTS]
    out = tmp_path_factory.mktemp("run")
    result = train(cfg, base_dir, examples, {}, out, progress=False)
    return out, result


@pytest.fixture(scope="module")
def merged_dir(tmp_path_factory, trained, base_dir):
    _, result = trained
    return export_merged(result.weights_dir, base_dir, tmp_path_factory.mktemp("merged") / "model")


def _input_ids(tokenizer):
    messages = [{"role": "user", "content": PROMPT}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)[
        "input_ids"
    ]


@pytest.mark.slow
def test_adapter_export_copies_the_adapter_and_tokenizer_only(tmp_path, trained):
    out, result = trained
    exported = export_adapter(result.weights_dir, tmp_path / "adapter")
    names = {p.name for p in exported.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not any(n.startswith("checkpoint") or n in {"training_args.bin", "optimizer.pt"} for n in names)
    source = result.weights_dir
    assert (exported / "adapter_model.safetensors").read_bytes() == (
        out / "adapter" / "adapter_model.safetensors"
    ).read_bytes()
    assert json.loads((exported / "adapter_config.json").read_text())["r"] == 8
    # a second export replaces the folder
    assert export_adapter(source, tmp_path / "adapter") == exported
    with pytest.raises(ExportError, match="no LoRA adapter"):
        export_adapter(tmp_path, tmp_path / "nothing")


@pytest.mark.slow
def test_merged_model_gives_the_logits_of_base_plus_adapter(trained, merged_dir, base_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, result = trained
    assert (merged_dir / "model.safetensors").is_file() and (merged_dir / "config.json").is_file()
    assert not (merged_dir / "adapter_config.json").exists()
    assert (merged_dir / MARKER).is_file()  # doctune's marker, and transformers loads the folder regardless
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    assert "<|im_start|>" in (tokenizer.chat_template or "")
    ids = _input_ids(tokenizer)

    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    with torch.no_grad():
        base_logits = base(ids).logits
        with_adapter = PeftModel.from_pretrained(base, result.weights_dir).eval()
        adapter_logits = with_adapter(ids).logits
        merged_logits = merged(ids).logits
    assert (adapter_logits - base_logits).abs().max() > 1e-2  # the adapter changes the model
    assert torch.allclose(merged_logits, adapter_logits, atol=1e-3, rtol=1e-4)


@pytest.mark.slow
def test_merged_export_of_a_full_model_is_a_copy(tmp_path, base_dir):
    out = export_merged(base_dir, base_dir, tmp_path / "full")
    assert (out / "model.safetensors").read_bytes() == (base_dir / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="dtype"):
        export_merged(base_dir, base_dir, tmp_path / "x", dtype="int3")


def test_missing_converter_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(export_model.CONVERTER_ENV, str(tmp_path / "nowhere"))
    assert find_gguf_converter() is None
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    with pytest.raises(ConverterMissing, match="make gguf-tools"):
        export_gguf(tmp_path / "m", tmp_path / "m.gguf")
    monkeypatch.delenv(export_model.CONVERTER_ENV)
    monkeypatch.setattr(export_model, "CONVERTER_CACHE_DIR", tmp_path / "empty-cache")
    assert find_gguf_converter() is None
    with pytest.raises(ConverterMissing, match="DOCTUNE_GGUF_CONVERTER"):
        export_gguf(tmp_path / "m", tmp_path / "m.gguf")


def test_converter_discovery_order(tmp_path, monkeypatch):
    cache, other = tmp_path / "cache", tmp_path / "other"
    for folder in (cache, other):
        folder.mkdir()
        (folder / "convert_hf_to_gguf.py").write_text("")
    monkeypatch.setattr(export_model, "CONVERTER_CACHE_DIR", cache)
    monkeypatch.delenv(export_model.CONVERTER_ENV, raising=False)
    assert find_gguf_converter() == (cache / "convert_hf_to_gguf.py").resolve()
    monkeypatch.setenv(export_model.CONVERTER_ENV, str(other))  # a folder or the script itself
    assert find_gguf_converter() == (other / "convert_hf_to_gguf.py").resolve()
    monkeypatch.setenv(export_model.CONVERTER_ENV, str(other / "convert_hf_to_gguf.py"))
    assert find_gguf_converter() == (other / "convert_hf_to_gguf.py").resolve()


def test_gguf_export_needs_a_model_folder(tmp_path):
    with pytest.raises(ExportError, match="config.json"):
        export_gguf(tmp_path, tmp_path / "m.gguf")
    with pytest.raises(ValueError, match="quant"):
        export_gguf(tmp_path, tmp_path / "m.gguf", quant="q3_k_zz")


@pytest.mark.slow
def test_gguf_export_loads_and_decodes_with_llama_cpp(tmp_path, merged_dir):
    if find_gguf_converter() is None:  # `make test` installs it; a missing converter is a failed set-up, not a skip
        pytest.fail("llama.cpp's converter is not installed: run `make gguf-tools`")
    import torch
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = export_gguf(merged_dir, tmp_path / "model-q8_0.gguf", quant="q8_0")
    assert gguf_file.stat().st_size > 50_000_000  # 135M parameters at ~1 byte each
    assert not (tmp_path / "model-q8_0.gguf.tmp").exists()

    llm = Llama(model_path=str(gguf_file), n_ctx=512, n_threads=2, verbose=False)
    try:
        assert "<|im_start|>" in llm.metadata.get("tokenizer.chat_template", "")
        reply = llm.create_chat_completion(
            messages=[{"role": "user", "content": PROMPT}], max_tokens=12, temperature=0.0
        )
        text = reply["choices"][0]["message"]["content"]
        assert text.strip()

        # the GGUF's first greedy token is the merged HF model's
        tokenizer = AutoTokenizer.from_pretrained(merged_dir)
        ids = _input_ids(tokenizer)
        with torch.no_grad():
            hf_next = int(AutoModelForCausalLM.from_pretrained(merged_dir)(ids).logits[0, -1].argmax())
        assert text.strip().startswith(tokenizer.decode([hf_next]).strip())
    finally:
        llm.close()


# --------------------------------------------------------------------------- only what doctune created is replaced


def _user_folder(path):
    path.mkdir(parents=True)
    (path / "precious.txt").write_text("keep me")
    return path


def _fake_adapter(path):
    """What export_adapter copies: an adapter config and weights (bytes), a tokenizer file, and run clutter."""
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text('{"r": 8}')
    (path / "adapter_model.safetensors").write_bytes(b"adapter weights")
    (path / "tokenizer.json").write_text("{}")
    (path / "training_args.bin").write_bytes(b"clutter")
    return path


def test_adapter_export_replaces_only_its_own_folder(tmp_path):
    weights = _fake_adapter(tmp_path / "run" / "adapter")
    mine = _user_folder(tmp_path / "project" / "adapter")
    with pytest.raises(ConfigError, match="refusing to replace") as info:
        export_adapter(weights, mine)
    assert str(mine) in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in mine.iterdir()) == ["precious.txt"]
    assert (mine / "precious.txt").read_text() == "keep me"
    assert not (tmp_path / "project" / "adapter.tmp").exists()

    out = export_adapter(weights, tmp_path / "models" / "m1" / "adapter")
    assert (out / MARKER).is_file() and (tmp_path / "models" / "m1" / MARKER).is_file()  # doctune made both
    assert not (tmp_path / "models" / "m1" / "adapter.tmp").exists()
    (out / "stale.bin").write_bytes(b"old")
    (weights / "adapter_model.safetensors").write_bytes(b"new weights")
    assert export_adapter(weights, out) == out  # doctune's own folder: replaced
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER, "adapter_config.json", "adapter_model.safetensors", "tokenizer.json"]
    )
    assert (out / "adapter_model.safetensors").read_bytes() == b"new weights"

    leftover = _user_folder(tmp_path / "other" / "adapter.tmp")  # the tmp sibling is not doctune's either
    with pytest.raises(ConfigError, match="adapter.tmp"):
        export_adapter(weights, tmp_path / "other" / "adapter")
    assert (leftover / "precious.txt").is_file()


def test_merged_export_of_a_full_model_replaces_only_its_own_folder(tmp_path):
    weights = tmp_path / "run" / "model"
    (weights / "checkpoint-1").mkdir(parents=True)
    (weights / "config.json").write_text('{"model_type": "llama"}')
    (weights / "model.safetensors").write_bytes(b"full weights")
    mine = _user_folder(tmp_path / "project" / "merged")
    with pytest.raises(ConfigError, match="refusing to replace"):
        export_merged(weights, weights, mine)
    assert sorted(p.name for p in mine.iterdir()) == ["precious.txt"]

    out = export_merged(weights, weights, tmp_path / "models" / "m1" / "merged")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "config.json", "model.safetensors"]
    (weights / "model.safetensors").write_bytes(b"new weights")
    assert export_merged(weights, weights, out) == out  # replaced: the marker comes along through tmp -> rename
    assert (out / "model.safetensors").read_bytes() == b"new weights" and (out / MARKER).is_file()
    assert not (tmp_path / "models" / "m1" / "merged.tmp").exists()


def test_gguf_export_overwrites_a_file_only_in_its_own_folder(tmp_path, monkeypatch):
    script = tmp_path / "llama.cpp" / "convert_hf_to_gguf.py"
    script.parent.mkdir()
    script.write_text(
        "import sys\n"
        "out = sys.argv[sys.argv.index('--outfile') + 1]\n"
        "open(out, 'wb').write(b'GGUF fake ' + sys.argv[-1].encode())\n"
    )
    monkeypatch.setenv(export_model.CONVERTER_ENV, str(script))
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "config.json").write_text("{}")

    mine = _user_folder(tmp_path / "project")
    (mine / "m.gguf").write_bytes(b"the user's own model")
    with pytest.raises(ConfigError, match="refusing to replace"):
        export_gguf(merged, mine / "m.gguf")
    assert (mine / "m.gguf").read_bytes() == b"the user's own model"
    assert export_gguf(merged, mine / "new.gguf").read_bytes() == b"GGUF fake q8_0"  # a new file may go anywhere

    out = export_gguf(merged, tmp_path / "models" / "m1" / "m.gguf")  # doctune creates (and marks) the folder
    assert out.read_bytes() == b"GGUF fake q8_0"
    assert export_gguf(merged, out, quant="f16").read_bytes() == b"GGUF fake f16"  # and may replace the file
