"""The call cache keys on everything that changes a reply (backend options, the weights' content), and an OpenAI
backend without an endpoint never silently sends documents to the public API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from doctune.config import ConfigError, ModelSpec
from doctune.curate.embeddings import create_embedder
from doctune.llm import CallParams, Completion, LLMClient, Message, create_backend
from doctune.llm.cache import CallCache
from doctune.llm.hf import TransformersBackend
from doctune.stages import generate
from doctune.testing.openai_server import ScriptedOpenAIServer, ScriptedReply

from genutil import build_workspace

MSGS = [Message(role="user", content="Name a planet as JSON.")]
SCHEMA = {"type": "object", "properties": {"planet": {"type": "string"}}, "required": ["planet"]}


def _openai(base_url: str, **options) -> LLMClient:
    spec = ModelSpec(backend="openai", model="m", base_url=base_url, options=options)
    return create_backend(spec)


def test_changed_openai_options_are_not_served_old_replies(tmp_path):
    replies = iter(['{"planet": "Mars"}', '{"planet": "Venus"}', '{"planet": "Earth"}', '{"planet": "Jupiter"}'])
    with ScriptedOpenAIServer(lambda payload: ScriptedReply(content=next(replies))) as server:
        cache = CallCache(tmp_path / "llm.sqlite")

        def ask(**options) -> str:
            return LLMClient(_openai(server.base_url, **options), cache).chat(MSGS, CallParams(), SCHEMA).text

        assert ask(response_format="json_schema") == '{"planet": "Mars"}'
        assert ask(response_format="json_schema") == '{"planet": "Mars"}'  # same call: from the cache
        assert ask(response_format="json_object") == '{"planet": "Venus"}'  # another request format: asked again
        assert ask(response_format="json_object", extra_body={"top_k": 5}) == '{"planet": "Earth"}'
        assert ask(response_format="json_object", extra_body={"top_k": 50}) == '{"planet": "Jupiter"}'
        assert len(server.requests) == 4
        assert server.requests[1]["response_format"] == {"type": "json_object"} and server.requests[3]["top_k"] == 50


def _weights(folder: Path, payload: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    path = folder / "model.safetensors"
    path.write_bytes(payload)
    return path


def test_changed_transformers_weights_are_not_served_old_replies(tmp_path, monkeypatch):
    calls: list[str] = []

    def complete(self, messages, params, json_schema=None):
        calls.append(self.spec.model)
        return Completion(text=f"reply {len(calls)}", model=self.label())

    monkeypatch.setattr(TransformersBackend, "complete", complete)
    folder = tmp_path / "student"
    weights = _weights(folder, b"A" * 4096)
    cache = CallCache(tmp_path / "llm.sqlite")

    def ask() -> str:
        return LLMClient(create_backend(ModelSpec(backend="transformers", model=str(folder))), cache).chat(MSGS).text

    assert ask() == "reply 1"
    assert ask() == "reply 1" and len(calls) == 1  # unchanged weights: cached
    stat = weights.stat()
    weights.write_bytes(b"B" * 4096)  # fine-tuned in place: same path, same size, same modification time
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert ask() == "reply 2"
    weights.write_bytes(b"B" * 4096)  # rewritten with the same bytes: a new modification time
    assert ask() == "reply 3"


def test_local_gguf_replaced_in_place_changes_identity(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 2000)
    spec = ModelSpec(backend="local", model=str(gguf))
    before = create_backend(spec).identity()
    stat = gguf.stat()
    gguf.write_bytes(b"GGUF" + b"\1" * 2000)  # same size, e.g. another fine-tune quantized the same way
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert create_backend(spec).identity() != before  # the next run's backend sees other weights
    assert create_backend(spec).label() == "llama.cpp:model.gguf"  # artifacts get the file name, never the path


@pytest.mark.parametrize("key", [None, "not-needed", ""])
def test_openai_without_endpoint_needs_a_real_key_before_any_request(tmp_path, monkeypatch, key):
    import openai

    monkeypatch.setattr(openai, "OpenAI", lambda *a, **k: pytest.fail("an OpenAI client was created"))
    if key is None:
        monkeypatch.delenv("DOCTUNE_TEST_KEY", raising=False)
    else:
        monkeypatch.setenv("DOCTUNE_TEST_KEY", key)
    spec = {"backend": "openai", "model": "gpt-4o-mini", "api_key_env": "DOCTUNE_TEST_KEY"}
    with pytest.raises(ConfigError, match="needs `base_url`"):
        create_backend(ModelSpec(**spec))
    with pytest.raises(ConfigError, match="needs `base_url`"):
        create_embedder(ModelSpec(**{**spec, "model": "text-embedding-3-small"}))
    cfg, ws = build_workspace(tmp_path, {"models.generator": spec})
    with pytest.raises(ConfigError, match="nothing was sent"):
        generate.run_qa(cfg, ws, progress=False)
    # an explicit endpoint, or a real key for the public API, is accepted (still without any request)
    create_backend(ModelSpec(**{**spec, "base_url": "http://127.0.0.1:9/v1"}))
    monkeypatch.setenv("DOCTUNE_TEST_KEY", "sk-proj-a-real-looking-key")
    create_backend(ModelSpec(**spec))
