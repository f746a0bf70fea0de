"""LoRA adapters as llama.cpp LoRA GGUF files: converted, loaded over the embedded base GGUF, switched in one context."""

from __future__ import annotations

import ctypes

import pytest

from doctune.config import DoctuneConfig
from doctune.llm.embedded import EMBEDDED_NAME, embedded_gguf_path
from doctune.registry import ModelEntry, Registry
from doctune.train import export_model
from doctune.train.config import TrainConfig
from doctune.train.data import chat_messages
from doctune.train.export_model import (
    LORA_CONVERTER_SCRIPT,
    ConverterMissing,
    ExportError,
    export_lora_gguf,
    find_gguf_converter,
)
from doctune.workspace import Workspace

#: two "characters" with very different replies, so their adapters pull the logits apart
SAYINGS = {
    "alice": [(f"Line {i}?", "Zounds! Zounds! The moon, the moon, zounds!") for i in range(4)],
    "bob": [(f"Line {i}?", "Alas, alas, my lord, alas and alack.") for i in range(4)],
}
PROMPT = [{"role": "user", "content": "Line 9?"}]


@pytest.fixture(scope="module")
def base_dir():
    from doctune.llm.hf import embedded_safetensors_dir

    return embedded_safetensors_dir()


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, base_dir):
    """name -> the folder of a 2-step LoRA adapter on the embedded SmolLM2 (a few CPU seconds each)."""
    from doctune.train.trainer import train

    cfg = TrainConfig(
        max_steps=2, learning_rate=5e-3, per_device_batch_size=4, max_length=64, save_steps=100, eval_steps=None
    )
    cfg = cfg.model_copy(update={"lora_r": 4, "tracking": []})
    out = {}
    for name, pairs in SAYINGS.items():
        examples = [{"messages": chat_messages(q, a, None)} for q, a in pairs]
        result = train(cfg, base_dir, examples, {}, tmp_path_factory.mktemp(name), progress=False)
        out[name] = result.weights_dir
    return out


def _converter_or_fail():
    if find_gguf_converter(LORA_CONVERTER_SCRIPT) is None:  # `make test` installs it: a missing one is a failure
        pytest.fail("llama.cpp's convert_lora_to_gguf.py is not installed: run `make gguf-tools`")


def _next_token_logits(llm, tokens):
    import numpy as np

    llm.reset()
    llm.eval(tokens)  # without logits_all only the last position's logits are computed, read from the context
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy().tolist()


def _differ(a, b) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


@pytest.mark.slow
def test_lora_gguf_loads_over_the_base_gguf_and_switches_adapters(tmp_path, adapters, base_dir):
    _converter_or_fail()
    import llama_cpp
    from llama_cpp import Llama

    files = {name: export_lora_gguf(path, base_dir, tmp_path / f"{name}.gguf") for name, path in adapters.items()}
    for f in files.values():
        assert f.is_file() and 100_000 < f.stat().st_size < 20_000_000  # an adapter, not a model
        assert not f.with_name(f.name + ".tmp").exists()

    # llama-cpp-python's own loading: the base model plus one adapter, generating
    llm = Llama(
        model_path=str(embedded_gguf_path()), lora_path=str(files["alice"]), n_ctx=256, n_threads=2, verbose=False
    )
    try:
        reply = llm.create_chat_completion(messages=PROMPT, max_tokens=8, temperature=0.0)
        assert reply["choices"][0]["message"]["content"].strip()

        # the same loaded base switches between characters: no adapter, alice, bob
        tokens = llm.tokenize(b"<|im_start|>user\nLine 9?<|im_end|>\n<|im_start|>assistant\n", special=True)
        with_alice = _next_token_logits(llm, tokens)
        bob = llama_cpp.llama_adapter_lora_init(llm.model, str(files["bob"]).encode())
        assert bob is not None

        def use(adapter):
            n = 0 if adapter is None else 1
            handles = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            assert llama_cpp.llama_set_adapters_lora(llm.ctx, handles, n, (ctypes.c_float * 1)(1.0)) == 0

        use(None)
        base = _next_token_logits(llm, tokens)
        use(bob)
        with_bob = _next_token_logits(llm, tokens)
        use(llm._lora_adapter)
        assert _next_token_logits(llm, tokens) == pytest.approx(with_alice, abs=1e-3)  # back to alice
        assert min(_differ(base, with_alice), _differ(base, with_bob), _differ(with_alice, with_bob)) > 0.05
        llama_cpp.llama_adapter_lora_free(bob)
    finally:
        llm.close()


@pytest.mark.slow
def test_export_model_lora_gguf_format(tmp_path, adapters):
    """`doctune export-model ID --format lora-gguf` writes <workspace>/models/<id>/<id>.lora.f16.gguf."""
    _converter_or_fail()
    import shutil

    from doctune.stages.models import run_export_model

    cfg = DoctuneConfig.model_validate({"workspace": str(tmp_path)})
    ws = Workspace(tmp_path)
    shutil.copytree(adapters["alice"], tmp_path / "runs" / "r1" / "adapter")
    entry = ModelEntry(
        id="r1-train-alice",
        project="p",
        created_at="2025-01-01T00:00:00+00:00",
        base_model=EMBEDDED_NAME,
        method="lora",
        weights_path="runs/r1/adapter",
        dataset_sha256="",
        config_hash="",
        labels={"recipe": "character", "character": "ALICE"},
    )
    Registry(ws).register(entry)
    result = run_export_model(cfg, ws, "r1", "lora-gguf")
    out = tmp_path / "models" / "r1-train-alice" / "r1-train-alice.lora.f16.gguf"
    assert result.outputs == {"lora-gguf": str(out)} and out.is_file()
    with pytest.raises(ValueError, match="LoRA GGUF type"):
        run_export_model(cfg, ws, "r1", "lora-gguf", quant="q4_k")


def test_lora_converter_is_found_beside_the_hf_converter(tmp_path, monkeypatch):
    folder = tmp_path / "llama.cpp"
    folder.mkdir()
    (folder / "convert_hf_to_gguf.py").write_text("")
    monkeypatch.setenv(export_model.CONVERTER_ENV, str(folder / "convert_hf_to_gguf.py"))
    assert find_gguf_converter(LORA_CONVERTER_SCRIPT) is None
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    with pytest.raises(ConverterMissing, match="convert_lora_to_gguf.py.*make gguf-tools"):
        export_lora_gguf(adapter, base, tmp_path / "a.gguf")
    (folder / LORA_CONVERTER_SCRIPT).write_text("")
    assert find_gguf_converter(LORA_CONVERTER_SCRIPT) == (folder / LORA_CONVERTER_SCRIPT).resolve()
    monkeypatch.setenv(export_model.CONVERTER_ENV, str(folder))
    assert find_gguf_converter(LORA_CONVERTER_SCRIPT) == (folder / LORA_CONVERTER_SCRIPT).resolve()
    assert find_gguf_converter() == (folder / "convert_hf_to_gguf.py").resolve()


def test_lora_gguf_needs_an_adapter_and_a_base_folder(tmp_path, base_dir):
    with pytest.raises(ExportError, match="no LoRA adapter"):
        export_lora_gguf(base_dir, base_dir, tmp_path / "a.gguf")  # a full model folder
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(ExportError, match="config.json"):
        export_lora_gguf(adapter, tmp_path, tmp_path / "a.gguf")
    with pytest.raises(ValueError, match="LoRA GGUF type"):
        export_lora_gguf(adapter, base_dir, tmp_path / "a.gguf", outtype="tq1_0")
