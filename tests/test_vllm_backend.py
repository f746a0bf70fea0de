"""The in-process vLLM backend through a faked ``vllm`` package (the real one needs CUDA; `make` never installs
it): engine options, LoRA requests, batch chat, structured outputs, token counts, the missing-package error."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import ClassVar

import pytest

from doctune.config import ModelSpec
from doctune.llm import BackendError, CallParams, LLMClient, Message, create_backend


@dataclass
class _Output:
    text: str
    token_ids: list[int]
    finish_reason: str = "stop"


@dataclass
class _RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[_Output]


class FakeLLM:
    """Records how it was built and called; replies with the last user message reversed."""

    instances: ClassVar[list[FakeLLM]] = []

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []
        FakeLLM.instances.append(self)

    def chat(self, conversations, sampling_params, lora_request=None, use_tqdm=True):
        self.calls.append({"conversations": conversations, "sampling": sampling_params, "lora": lora_request})
        return [
            _RequestOutput(
                list(range(sum(len(m["content"].split()) for m in conv))),
                [_Output(conv[-1]["content"][::-1], [1, 2, 3])],
            )
            for conv in conversations
        ]


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM = FakeLLM
    vllm.SamplingParams = lambda **kw: dict(kw)
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = lambda **kw: ("structured", kw)
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, lora_id, path: {"name": name, "id": lora_id, "path": path}
    for name, module in {
        "vllm": vllm,
        "vllm.sampling_params": sampling,
        "vllm.lora": lora,
        "vllm.lora.request": request,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    FakeLLM.instances.clear()
    return vllm


def test_offline_batch_with_lora_and_structured_output(fake_vllm, tmp_path):
    adapter = tmp_path / "runs" / "adapter"
    spec = ModelSpec(
        backend="vllm", model=str(tmp_path / "SmolLM2"), options={"lora": str(adapter), "tensor_parallel_size": 2}
    )
    backend = create_backend(spec)
    assert not FakeLLM.instances  # nothing loaded before the first call
    convs = [
        [Message(role="user", content="abc")],
        [Message(role="system", content="s"), Message(role="user", content="hello there")],
    ]
    out = backend.complete_batch(convs, CallParams(temperature=0.0, max_tokens=7, seed=3), {"type": "object"})
    assert [c.text for c in out] == ["cba", "ereht olleh"]
    assert out[1].prompt_tokens == 3 and out[1].completion_tokens == 3 and out[1].finish_reason == "stop"
    (engine,) = FakeLLM.instances
    assert engine.kwargs["enable_lora"] is True and engine.kwargs["tensor_parallel_size"] == 2
    (call,) = engine.calls  # one chat call for the whole batch
    assert call["lora"] == {"name": "doctune-adapter", "id": 1, "path": str(adapter)}
    assert call["sampling"]["max_tokens"] == 7 and call["sampling"]["seed"] == 3
    assert call["sampling"]["structured_outputs"] == ("structured", {"json": {"type": "object"}})
    assert backend.label() == "vllm:SmolLM2" and str(tmp_path) not in backend.label()


def test_through_the_cached_client(fake_vllm, tmp_path):
    backend = create_backend(ModelSpec(backend="vllm", model="org/model"))
    client = LLMClient(backend)
    assert client.chat([Message(role="user", content="xy")]).text == "yx"
    assert "enable_lora" not in FakeLLM.instances[0].kwargs and FakeLLM.instances[0].calls[0]["lora"] is None


def test_missing_vllm_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails
    backend = create_backend(ModelSpec(backend="vllm", model="org/model"))
    with pytest.raises(BackendError, match=r"pip install 'doctune\[vllm\]'"):
        backend.complete([Message(role="user", content="x")], CallParams())
    with pytest.raises(BackendError, match="needs `model`"):
        create_backend(ModelSpec(backend="vllm"))
