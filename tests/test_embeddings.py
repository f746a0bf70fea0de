"""The embedding seam: registry, options, the fake and openai backends, the cache, and the packaged MiniLM."""

from __future__ import annotations

import json
import sqlite3
from typing import ClassVar

import numpy as np
import pytest

from doctune.config import ConfigError, ModelSpec
from doctune.curate import embeddings as emb
from doctune.curate.embeddings import (
    Embedder,
    EmbeddingCache,
    EmbeddingError,
    create_embedder,
    embed_texts,
    embedder_names,
    embedding_key,
    register_embedder,
)
from doctune.testing.openai_server import ScriptedOpenAIServer, ScriptedReply

TEXTS = [
    "How do I reset my password?",
    "What is the capital of France?",
    "Steps to change a forgotten password",
    "Paris is the capital of France.",
]


class Counting(Embedder):
    """Wraps another embedder and records the batches it is asked to embed."""

    name: ClassVar[str] = "counting"

    def __init__(self, inner: Embedder):
        super().__init__(ModelSpec(backend="counting"))
        self.inner = inner
        self.batches: list[list[str]] = []

    def identity(self) -> str:
        return self.inner.identity()

    def _embed(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return self.inner.embed(texts)

    @property
    def n_embedded(self) -> int:
        return sum(len(b) for b in self.batches)


def fake(**options: object) -> Embedder:
    return create_embedder(ModelSpec(backend="fake", options=options))


def test_builtins_are_registered() -> None:
    assert {"fake", "local", "openai"} <= set(embedder_names())


def test_fake_is_deterministic_normalised_and_batch_independent() -> None:
    a, b = fake().embed(TEXTS), fake().embed(TEXTS)
    assert a.dtype == np.float32 and a.shape == (4, 256)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(fake().embed(TEXTS[:1])[0], a[0])  # a text's vector ignores its batch
    sims = a @ a.T
    assert sims[1, 3] > sims[1, 0]  # shared words make vectors closer
    assert fake(dims=64).embed(["", "!!"]).shape == (2, 64)  # texts without words still get unit rows
    np.testing.assert_allclose(np.linalg.norm(fake().embed(["", "..."]), axis=1), 1.0, rtol=1e-6)


def test_embed_of_nothing_has_the_right_shape() -> None:
    assert fake(dims=32).embed([]).shape == (0, 32)
    assert embed_texts(fake(dims=32), [], None).shape == (0, 32)


def test_cache_second_call_embeds_nothing(tmp_path) -> None:
    cache = EmbeddingCache(tmp_path / "cache" / "embeddings.sqlite")
    texts = [*TEXTS, TEXTS[0]]  # a repeated text is embedded once
    first = Counting(fake())
    v1 = embed_texts(first, texts, cache, batch_size=3)
    assert first.n_embedded == 4 and [len(b) for b in first.batches] == [3, 1]
    assert len(cache) == 4
    np.testing.assert_array_equal(v1[0], v1[4])

    second = Counting(fake())
    v2 = embed_texts(second, list(reversed(texts)), cache, batch_size=3)
    assert second.n_embedded == 0
    np.testing.assert_array_equal(v2, v1[::-1])  # rows come back in input order

    third = Counting(fake())  # a new text among cached ones: only it is embedded
    embed_texts(third, [*TEXTS, "something new"], cache)
    assert third.batches == [["something new"]]


def test_cache_persists_and_uses_wal(tmp_path) -> None:
    path = tmp_path / "embeddings.sqlite"
    embed_texts(fake(), TEXTS, EmbeddingCache(path))
    reopened = Counting(fake())
    embed_texts(reopened, TEXTS, EmbeddingCache(path))
    assert reopened.n_embedded == 0
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_cache_keys_depend_on_identity(tmp_path) -> None:
    small, large = fake(dims=64), fake(dims=128)
    assert small.identity() != large.identity()
    assert embedding_key(small.identity(), "x") != embedding_key(large.identity(), "x")
    assert embedding_key(small.identity(), "x") != embedding_key(small.identity(), "y")
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    embed_texts(small, TEXTS, cache)
    other = Counting(large)
    vectors = embed_texts(other, TEXTS, cache)
    assert other.n_embedded == len(TEXTS) and vectors.shape == (4, 128)
    assert len(cache) == 2 * len(TEXTS)


def test_unknown_embedder_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match="unknown embedder 'nope'") as info:
        create_embedder(ModelSpec(backend="nope"))
    for name in ("fake", "local", "openai"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("backend", "options"),
    [("fake", {"dimz": 3}), ("local", {"devise": "cpu"}), ("openai", {"batch": 2})],
)
def test_options_are_validated(backend: str, options: dict) -> None:
    key = next(iter(options))
    with pytest.raises(ConfigError, match=f"embedder '{backend}' options: {key}"):
        create_embedder(ModelSpec(backend=backend, model="m", options=options))
    with pytest.raises(ConfigError, match="dims"):
        fake(dims=2)  # below the minimum


def test_constructors_do_no_io(tmp_path) -> None:
    missing = tmp_path / "no-such-model"
    local = create_embedder(ModelSpec(backend="local", model=str(missing)))  # nothing is checked yet
    with pytest.raises(ConfigError, match="not found"):
        local.embed(["x"])
    remote = create_embedder(ModelSpec(backend="openai", model="m", base_url="http://127.0.0.1:9/v1"))
    assert remote.identity().startswith("openai:http://127.0.0.1:9/v1:m:")  # hashed into cache keys only
    assert remote.label().startswith("openai:m@endpoint-")  # what artifacts record: no URL
    with pytest.raises(ConfigError, match="needs `model`"):
        create_embedder(ModelSpec(backend="openai"))


def test_plugins_register_by_name() -> None:
    @register_embedder
    class Ones(Embedder):
        name: ClassVar[str] = "ones-test"

        def identity(self) -> str:
            return "ones"

        def _embed(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 4))

    try:
        vectors = create_embedder(ModelSpec(backend="ones-test")).embed(["a", "b"])
        np.testing.assert_allclose(vectors, 0.5)  # normalised by the base class
        assert vectors.dtype == np.float32
    finally:
        emb.EMBEDDERS.unregister("ones-test")


def _embedding_reply(payload: dict) -> ScriptedReply:
    """Vectors [len(text), 1, 0] in reverse order with their indices, as some servers do."""
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0]}
        for i, t in enumerate(payload["input"])
    ]
    body = {
        "object": "list",
        "data": data[::-1],
        "model": payload["model"],
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
    return ScriptedReply(raw_body=json.dumps(body).encode())


def test_openai_embedder_batches_and_orders() -> None:
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    with ScriptedOpenAIServer(_embedding_reply) as server:
        spec = ModelSpec(backend="openai", model="embed-m", base_url=server.base_url, options={"request_batch_size": 2})
        embedder = create_embedder(spec)
        vectors = embedder.embed(texts)
        embedder.close()
    assert [r["input"] for r in server.requests] == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]
    assert all(r["model"] == "embed-m" for r in server.requests)
    expected = np.array([[len(t), 1.0, 0.0] for t in texts])
    np.testing.assert_allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True), rtol=1e-6)


def test_openai_embedder_reports_errors() -> None:
    with ScriptedOpenAIServer(lambda payload: ScriptedReply(status=400)) as server:
        spec = ModelSpec(backend="openai", model="m", base_url=server.base_url, max_retries=0)
        with pytest.raises(EmbeddingError, match="embedding request failed"):
            create_embedder(spec).embed(["x"])


@pytest.mark.slow
def test_packaged_minilm_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = create_embedder(ModelSpec())  # the default: backend local, the packaged all-MiniLM-L6-v2
    assert "all-MiniLM-L6-v2" in embedder.identity()
    v = embedder.embed(
        [
            "How do I reset my password?",
            "What are the steps to change my password?",
            "The cathedral was built in the twelfth century.",
        ]
    )
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
    embedder.close()
