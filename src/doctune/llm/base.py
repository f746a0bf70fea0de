"""The model seam: chat messages in, text out, with token counts and latency recorded.

A backend is a small class registered by name (see ``registry``). Its constructor only stores
its spec: no network call, no model load. Backend-specific settings live in its ``Options``
(pydantic, ``extra="forbid"``), validated from ``ModelSpec.options`` at construction so a typo
in the config is an error naming the key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from doctune.config import ModelSpec
from doctune.plugins import validate_options


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class CallParams(BaseModel):
    """Decoding parameters of one call; part of the cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = 0.0
    max_tokens: int = 512
    seed: int = 0


class Completion(BaseModel):
    """The outcome of one call."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str | None = None
    cached: bool = False


class BackendError(Exception):
    """A call failed. ``retryable`` says whether trying again may help (429, 5xx, timeouts); ``kind`` is
    the reason recorded when it finally fails: rate_limited, timeout, too_long or backend_error."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after_s: float | None = None,
        kind: str = "backend_error",
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.kind = kind


class LLMBackend(ABC):
    """One way of reaching a model. Subclasses set ``name`` and may override ``Options``."""

    name: ClassVar[str]
    #: whether ``complete`` honours ``json_schema`` by constraining decoding
    supports_json_schema: ClassVar[bool] = False
    #: a test double whose replies are scripted, not a model's: it may never decide an evaluation gate
    scripted: ClassVar[bool] = False

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.options = validate_options(self.Options, spec.options, f"backend '{self.name}'")

    def __reduce__(self):
        """Sent to a Ray worker as its spec: the worker creates (once per process) and loads its own."""
        if self.scripted:  # a test double travels with its queue
            return (_restore_backend, (type(self), self.__dict__))
        from doctune.execution.service import backend_for

        return (backend_for, (self.spec,))

    def default_params(self) -> CallParams:
        return CallParams(temperature=self.spec.temperature, max_tokens=self.spec.max_tokens, seed=self.spec.seed)

    @abstractmethod
    def identity(self) -> str:
        """What makes two calls to this backend interchangeable (backend, model, the weights' fingerprint). Part of
        every cache key together with the backend ``options``; may hold an endpoint URL, so it is only ever hashed."""

    def weights_bytes(self) -> int | None:
        """Size of the model's weights on disk when they are local (how ``generate.strategy: auto`` tells a small
        model); None for remote or scripted models."""
        return None

    def label(self) -> str:
        """The name recorded in artifacts and reports: ``spec.label``, else backend and model name, with the endpoint
        as ``endpoint-<hash>``; never a URL, a key or a full local path."""
        if self.spec.label:
            return self.spec.label
        where = self.spec.endpoint_label()
        return f"{self.name}:{self.spec.model or 'default'}" + (f"@{where}" if where else "")

    def cache_identity(self) -> dict[str, Any]:
        """Everything of this backend that changes a reply: its identity and every option (part of the cache key)."""
        return {"identity": self.identity(), "options": self.options.model_dump(mode="json")}

    @abstractmethod
    def complete(
        self, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None = None
    ) -> Completion:
        """Run one chat call. Raise ``BackendError`` on failure."""

    def count_tokens(self, text: str) -> int:
        """Token count of ``text``; backends with a tokenizer override this estimate."""
        return max(1, len(text) // 4)

    @property
    def context_window(self) -> int | None:
        """Largest prompt + reply in tokens, when known."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (loaded weights, HTTP clients)."""


def _restore_backend(cls: type[LLMBackend], state: dict[str, Any]) -> LLMBackend:
    backend = cls.__new__(cls)
    backend.__dict__.update(state)
    return backend
