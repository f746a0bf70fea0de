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


def _eval_items(n: int):
    from doctune.records import DatasetItem

    return [
        DatasetItem(item_id=f"i{k}", kind="qa", unit_id="u", doc_ids=["d"], chunk_ids=["c"], k=1,
                    question=f"question number {k}", answer="x", evaluation_criteria="", difficulty=1,
                    category="factual", citations=[], citations_verified=False, model="m", source="qa", split="eval")
        for k in range(n)
    ]  # fmt: skip


def test_evaluation_answers_are_one_offline_batch_and_cached(fake_vllm, tmp_path):
    """Local engine: answer_items sends every uncached question in one LLM.chat; a rerun makes no call."""
    from doctune.evaluate.answer import answer_items
    from doctune.llm.cache import CallCache

    client = LLMClient(create_backend(ModelSpec(backend="vllm", model="m")), CallCache(tmp_path / "c.sqlite"))
    answers = answer_items(client, _eval_items(5))
    assert answers == [f"question number {k}"[::-1] for k in range(5)]
    (llm,) = FakeLLM.instances
    assert len(llm.calls) == 1 and len(llm.calls[0]["conversations"]) == 5
    assert answer_items(client, _eval_items(5)) == answers and len(llm.calls) == 1
    assert (client.usage.calls, client.usage.cache_hits) == (5, 5)


def test_ray_engine_sends_vllm_calls_to_ray_data_llm_vllm_processor(monkeypatch, tmp_path):
    """Engine ray + backend vllm: Ray Data LLM's vLLM engine processor gets the backend's engine options, the
    adapter by name from its folder, the sampling parameters; its rows become cached completions."""
    import ray
    import ray.data.llm as ray_llm

    from doctune.config_execution import ExecutionConfig
    from doctune.evaluate.answer import answer_items
    from doctune.execution import use_executor
    from doctune.execution.ray_engine import RayExecutor
    from doctune.llm.cache import CallCache

    seen: dict = {}

    class FakeProcessor:
        def __init__(self, preprocess, postprocess):
            self.pre, self.post = preprocess, postprocess

        def __call__(self, rows):
            return self

        def iter_rows(self):
            for row in seen["rows"]:
                req = self.pre(row)
                seen.setdefault("requests", []).append(req)
                text = req["messages"][-1]["content"].upper()
                yield self.post({**req, "generated_text": text, "num_input_tokens": 7, "num_generated_tokens": 3})

    monkeypatch.setattr(ray_llm, "vLLMEngineProcessorConfig", lambda **kw: seen.setdefault("config", kw))
    monkeypatch.setattr(
        ray_llm, "build_processor", lambda cfg, preprocess, postprocess: FakeProcessor(preprocess, postprocess)
    )
    monkeypatch.setattr(ray.data, "from_items", lambda rows: seen.__setitem__("rows", rows) or rows)
    adapter = tmp_path / "runs" / "doc-adapter"
    spec = ModelSpec(backend="vllm", model="Qwen/Qwen2.5-7B-Instruct",
                     options={"lora": str(adapter), "tensor_parallel_size": 2, "max_model_len": 4096})  # fmt: skip
    client = LLMClient(create_backend(spec), CallCache(tmp_path / "c.sqlite"))
    executor = RayExecutor(ExecutionConfig(engine="ray", vllm_replicas=3))
    monkeypatch.setattr(executor, "_ensure_started", lambda: None)
    with use_executor(executor):
        answers = answer_items(client, _eval_items(4))
        again = answer_items(client, _eval_items(4))
    assert answers == again == [f"QUESTION NUMBER {k}" for k in range(4)]
    cfg = seen["config"]
    assert cfg["model_source"] == "Qwen/Qwen2.5-7B-Instruct" and cfg["concurrency"] == 3
    assert cfg["engine_kwargs"]["tensor_parallel_size"] == 2 and cfg["engine_kwargs"]["enable_lora"] is True
    assert cfg["engine_kwargs"]["max_model_len"] == 4096
    assert cfg["dynamic_lora_loading_path"] == str(tmp_path / "runs")
    assert len(seen["requests"]) == 4  # the rerun came from the cache
    assert all(r["model"] == "doc-adapter" and r["sampling_params"]["temperature"] == 0.0 for r in seen["requests"])
    assert (client.usage.calls, client.usage.cache_hits, client.usage.completion_tokens) == (4, 4, 12)
