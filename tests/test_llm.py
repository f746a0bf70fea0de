from __future__ import annotations

import pytest
from pydantic import BaseModel

from doctune.config import ConfigError, ModelSpec
from doctune.llm import (
    BackendError,
    CallParams,
    LLMClient,
    Message,
    StructuredOutputError,
    backend_names,
    create_backend,
)
from doctune.llm.cache import CallCache
from doctune.llm.client import extract_json
from doctune.llm.fake import FakeBackend

MSGS = [Message(role="system", content="be brief"), Message(role="user", content="hi")]


class Answer(BaseModel):
    answer: str
    confidence: int


def test_registry_has_builtins_and_rejects_unknown():
    assert {"fake", "local", "openai", "transformers"} <= set(backend_names())
    with pytest.raises(ConfigError, match="unknown backend 'nope'"):
        create_backend(ModelSpec(backend="nope"))


def test_backend_options_are_validated_with_extra_forbid():
    with pytest.raises(ConfigError, match="n_ctxx"):
        create_backend(ModelSpec(backend="local", options={"n_ctxx": 10}))
    with pytest.raises(ConfigError, match="needs `model`"):
        create_backend(ModelSpec(backend="openai"))


def test_constructors_do_no_io():
    # an unreachable endpoint and a missing model file: constructing must still succeed
    create_backend(ModelSpec(backend="openai", model="m", base_url="http://127.0.0.1:9/v1"))
    create_backend(ModelSpec(backend="local", model="/nonexistent/model.gguf"))
    create_backend(ModelSpec(backend="transformers", model="/nonexistent/folder"))


def test_fake_backend_queue_records_requests_and_errors():
    fake = FakeBackend()
    fake.add_replies("one", lambda msgs: msgs[-1].content.upper(), BackendError("boom"))
    params = CallParams()
    assert fake.complete(MSGS, params).text == "one"
    assert fake.complete(MSGS, params).text == "HI"
    with pytest.raises(BackendError, match="boom"):
        fake.complete(MSGS, params)
    with pytest.raises(BackendError, match="no reply queued"):
        fake.complete(MSGS, params)
    assert len(fake.requests) == 4
    assert fake.requests[0]["messages"] == MSGS


def test_fake_backend_from_config_options():
    fake = create_backend(ModelSpec(backend="fake", options={"replies": ["a"], "default_reply": "d"}))
    assert [fake.complete(MSGS, CallParams()).text for _ in range(3)] == ["a", "d", "d"]


def test_cache_hit_makes_no_call(tmp_path):
    fake = FakeBackend().add_replies("first", "second")
    client = LLMClient(fake, CallCache(tmp_path / "c.sqlite"))
    assert client.chat(MSGS).text == "first"
    again = client.chat(MSGS)
    assert again.text == "first" and again.cached
    assert len(fake.requests) == 1
    assert client.usage.calls == 1 and client.usage.cache_hits == 1
    # different params -> different key -> a real call
    assert client.chat(MSGS, CallParams(max_tokens=7)).text == "second"
    # a fresh client on the same cache file (a resumed run) repeats nothing
    fake2 = FakeBackend()
    client2 = LLMClient(fake2, CallCache(tmp_path / "c.sqlite"))
    assert client2.chat(MSGS).text == "first"
    assert fake2.requests == []


def test_retry_honours_retry_after_then_gives_up():
    slept: list[float] = []
    fake = FakeBackend().add_replies(
        BackendError("429", retryable=True, retry_after_s=3.0), BackendError("503", retryable=True), "ok"
    )
    client = LLMClient(fake, None, max_retries=3, backoff_s=0.5, sleep=slept.append)
    assert client.chat(MSGS).text == "ok"
    assert slept == [3.0, 1.0]
    fatal = FakeBackend().add_replies(BackendError("401 bad key", retryable=False), "never")
    client = LLMClient(fatal, None, sleep=slept.append)
    with pytest.raises(BackendError, match="401"):
        client.chat(MSGS)
    assert client.usage.failures == 1


def test_structured_valid_repaired_and_failed():
    fake = FakeBackend().add_replies('```json\n{"answer": "x", "confidence": 3}\n```')
    assert LLMClient(fake).chat_structured(MSGS, Answer) == Answer(answer="x", confidence=3)

    fake = FakeBackend().add_replies('{"answer": "x"}', 'Sure! {"answer": "y", "confidence": 1} hope it helps')
    assert LLMClient(fake).chat_structured(MSGS, Answer).answer == "y"
    # the second request showed the model its first reply and the validation error
    second = fake.requests[1]["messages"]
    assert second[-2].content == '{"answer": "x"}'
    assert "confidence" in second[-1].content

    fake = FakeBackend().add_replies("no json", "still none", "nope")
    with pytest.raises(StructuredOutputError) as info:
        LLMClient(fake).chat_structured(MSGS, Answer)
    assert info.value.last_reply == "nope"


def test_schema_sent_only_to_backends_that_constrain():
    fake = FakeBackend().add_replies('{"answer": "x", "confidence": 3}')
    LLMClient(fake).chat_structured(MSGS, Answer)
    assert fake.requests[0]["json_schema"] is None


def test_extract_json_edge_cases():
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('text {"a": {"b": 2}} more') == {"a": {"b": 2}}
    with pytest.raises(ValueError):
        extract_json("nothing here")
