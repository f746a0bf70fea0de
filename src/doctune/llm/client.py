"""``LLMClient``: a backend plus the call cache, retries, structured output and usage accounting.

Stages talk to this, never to a backend directly, so every call is cached by content hash and
counted the same way whatever the backend.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from doctune.llm.base import BackendError, CallParams, Completion, LLMBackend, Message
from doctune.llm.cache import CallCache, call_key
from doctune.llm.ratelimit import RateLimiter

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)


class StructuredOutputError(Exception):
    """The model did not produce a valid object within the allowed attempts. ``reason`` is
    ``refused`` (it declined), ``truncated`` (cut at the token limit) or ``invalid``."""

    def __init__(self, message: str, last_reply: str | None = None, reason: str = "invalid"):
        super().__init__(message)
        self.last_reply = last_reply
        self.reason = reason


_REFUSAL = re.compile(
    r"^\W*(i('m| am) sorry|i can(no|')t|i cannot|i('m| am) (not able|unable)|as an ai)", re.IGNORECASE
)


def looks_like_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text.strip()))


@dataclass
class UsageStats:
    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["latency_s"] = round(d["latency_s"], 3)
        return d


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def extract_json(text: str) -> Any:
    """Parse a JSON value from a reply, tolerating code fences and prose around one object."""
    stripped = _FENCE.sub("", text.strip()).strip()
    try:  # strict=False: raw newlines inside strings (grammar-constrained output copies them verbatim)
        return json.loads(stripped, strict=False)
    except json.JSONDecodeError:
        pass
    start = stripped.find("{")
    end = stripped.rfind("}")
    if start != -1 and end > start:
        return json.loads(stripped[start : end + 1], strict=False)
    raise json.JSONDecodeError("no JSON object found", stripped, 0)


@lru_cache(maxsize=512)
def json_schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema, computed once per class (it is part of every structured call)."""
    return model.model_json_schema()


class LLMClient:
    """Calls one backend through the cache. Thread-safe."""

    def __init__(
        self,
        backend: LLMBackend,
        cache: CallCache | None = None,
        *,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        sleep=time.sleep,
        limiter: RateLimiter | None = None,
    ):
        self.backend = backend
        self.cache = cache
        self.limiter = limiter
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.usage = UsageStats()
        self._sleep = sleep
        self._lock = threading.Lock()
        self.uid = uuid.uuid4().hex  # names this client's copies on Ray workers (their usage comes back to it)

    def __reduce__(self):
        """Sent to a Ray worker: backend by spec, cache and limiter through the driver (doctune.execution.service)."""
        from doctune.execution.service import rebuild_client, register_client

        register_client(self)
        state = {
            "backend": self.backend,
            "cache": self.cache,
            "max_retries": self.max_retries,
            "backoff_s": self.backoff_s,
            "limiter": self.limiter,
        }
        return (rebuild_client, (self.uid, state))

    @classmethod
    def from_state(cls, uid: str, state: dict[str, Any]) -> LLMClient:
        client = cls(**state)
        client.uid = uid
        return client

    def add_usage(self, counts: dict[str, Any]) -> None:
        """Add usage counted elsewhere (a Ray worker's copy of this client)."""
        with self._lock:
            for name, value in counts.items():
                setattr(self.usage, name, getattr(self.usage, name) + value)

    def chat(
        self, messages: list[Message], params: CallParams | None = None, json_schema: dict[str, Any] | None = None
    ) -> Completion:
        """One call, from the cache when the same call was made before."""
        params = params or self.backend.default_params()
        key = call_key(self.backend.cache_identity(), messages, params, json_schema)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            with self._lock:
                self.usage.cache_hits += 1
            return hit
        completion = self._call_with_retries(messages, params, json_schema)
        if self.cache is not None:
            self.cache.put(key, completion)
        with self._lock:
            self.usage.calls += 1
            self.usage.prompt_tokens += completion.prompt_tokens
            self.usage.completion_tokens += completion.completion_tokens
            self.usage.latency_s += completion.latency_s
        return completion

    def chat_batch(self, conversations: list[list[Message]], params: CallParams | None = None) -> list[Completion]:
        """Many calls, each from the cache when made before; the rest in one ``backend.complete_batch`` (offline
        batch inference, e.g. vLLM), each stored as soon as the batch returns."""
        params = params or self.backend.default_params()
        identity = self.backend.cache_identity()
        keys = [call_key(identity, conv, params, None) for conv in conversations]
        out: list[Completion | None] = [self.cache.get(k) if self.cache is not None else None for k in keys]
        todo = [i for i, hit in enumerate(out) if hit is None]
        self.add_usage({"cache_hits": len(keys) - len(todo)})
        if todo:
            done = self.backend.complete_batch([conversations[i] for i in todo], params)  # type: ignore[attr-defined]
            for i, completion in zip(todo, done, strict=True):
                if self.cache is not None:
                    self.cache.put(keys[i], completion)
                out[i] = completion
                self.add_usage(
                    {
                        "calls": 1,
                        "prompt_tokens": completion.prompt_tokens,
                        "completion_tokens": completion.completion_tokens,
                        "latency_s": completion.latency_s,
                    }
                )
        return [c for c in out if c is not None]

    def _call_with_retries(
        self, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None
    ) -> Completion:
        attempt = 0
        while True:
            if self.limiter is not None:
                self.limiter.acquire()
            try:
                return self.backend.complete(messages, params, json_schema)
            except BackendError as exc:
                attempt += 1
                if not exc.retryable or attempt > self.max_retries:
                    with self._lock:
                        self.usage.failures += 1
                    raise
                delay = exc.retry_after_s if exc.retry_after_s is not None else self.backoff_s * 2 ** (attempt - 1)
                log.warning("%s: %s; retry %d/%d in %.1fs", self.backend.name, exc, attempt, self.max_retries, delay)
                self._sleep(delay)

    def chat_structured(
        self,
        messages: list[Message],
        response_model: type[T],
        params: CallParams | None = None,
        max_attempts: int = 3,
    ) -> T:
        """Ask for a JSON object matching ``response_model``; on an invalid reply, show the model its
        error and ask again, up to ``max_attempts`` replies in all."""
        schema = json_schema_of(response_model)
        convo = list(messages)
        last_reply: str | None = None
        reason = "invalid"
        for _ in range(max_attempts):
            completion = self.chat(convo, params, schema if self.backend.supports_json_schema else None)
            last_reply = completion.text
            if looks_like_refusal(completion.text):
                reason = "refused"
                break
            try:
                return response_model.model_validate(extract_json(completion.text))
            except (json.JSONDecodeError, ValidationError) as exc:
                problem = _describe_problem(exc, completion)
                reason = "truncated" if completion.finish_reason == "length" else "invalid"
                log.info("invalid structured reply (%s); asking again", problem)
                convo = [
                    *messages,
                    Message(role="assistant", content=completion.text),
                    Message(
                        role="user", content=f"That reply was invalid: {problem}. Reply with the JSON object only."
                    ),
                ]
        what = (
            "the model refused"
            if reason == "refused"
            else f"no valid {response_model.__name__} after {max_attempts} attempts"
        )
        raise StructuredOutputError(what, last_reply, reason)


def _describe_problem(exc: Exception, completion: Completion) -> str:
    if completion.finish_reason == "length":
        return "the reply was cut off at the token limit; be shorter"
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'root'}: {e['msg']}" for e in exc.errors()[:5])
    return f"not valid JSON ({exc})"
