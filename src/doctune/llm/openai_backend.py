"""Any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, OpenRouter, hosted APIs)."""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from doctune.config import ConfigError, ModelSpec
from doctune.llm.base import BackendError, CallParams, Completion, LLMBackend, Message
from doctune.llm.registry import register_backend


@register_backend
class OpenAIBackend(LLMBackend):
    name: ClassVar[str] = "openai"
    supports_json_schema: ClassVar[bool] = True

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        response_format: Literal["json_schema", "json_object_schema", "json_object", "none"] = Field(
            "json_schema",
            description=(
                "How a JSON schema is sent: OpenAI/vLLM `json_schema`; llama.cpp server "
                "`json_object_schema` ({type: json_object, schema}); `json_object`; or `none` (parse only)."
            ),
        )
        extra_body: dict[str, Any] = Field(default_factory=dict, description="Extra fields sent with every request.")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        if not spec.model:
            raise ConfigError("backend 'openai' needs `model`")
        require_endpoint_or_key(spec, "backend 'openai'")
        self._client = None  # created on first call: no network in the constructor

    def identity(self) -> str:
        return f"openai:{self.spec.base_url or 'api.openai.com'}:{self.spec.model}"

    def _redact(self, text: str) -> str:
        """``text`` without the endpoint URL or its host (SDK errors may quote them)."""
        return redact_endpoint(text, self.spec)

    def _sdk(self):
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                base_url=self.spec.base_url,
                api_key=self.spec.resolved_api_key() or "not-needed",
                timeout=self.spec.timeout_s,
                max_retries=0,  # LLMClient retries, honouring Retry-After
            )
        return self._client

    def _response_format(self, json_schema: dict[str, Any] | None) -> dict[str, Any] | None:
        mode = self.options.response_format
        if json_schema is None or mode == "none":
            return None
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "reply", "schema": json_schema}}
        if mode == "json_object_schema":
            return {"type": "json_object", "schema": json_schema}
        return {"type": "json_object"}

    def request_fields(
        self, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The chat-completion request's fields (without ``extra_body``), as sent by the SDK or in a raw body."""
        fields: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [m.model_dump() for m in messages],
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
        }
        if (fmt := self._response_format(json_schema)) is not None:
            fields["response_format"] = fmt
        return fields

    def request_body(
        self, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The JSON body of a ``/chat/completions`` request (for batch engines that post it themselves)."""
        return {**self.request_fields(messages, params, json_schema), **self.options.extra_body}

    def chat_url(self) -> str:
        return (self.spec.base_url or "https://api.openai.com/v1").rstrip("/") + "/chat/completions"

    def completion_from_body(self, body: dict[str, Any], latency_s: float) -> Completion:
        """A ``/chat/completions`` reply body (JSON) as a ``Completion``; ``BackendError`` when it has no answer."""
        if "error" in body and not body.get("choices"):
            message = body["error"].get("message") if isinstance(body["error"], dict) else body["error"]
            raise BackendError(self._redact(f"error reply: {message}"), retryable=True)
        choices = body.get("choices") or []
        if not choices:
            raise BackendError("reply has no choices", retryable=True)
        message = choices[0].get("message") or {}
        if message.get("refusal"):
            raise BackendError(f"refused: {message['refusal']}", kind="refused")
        usage = body.get("usage") or {}
        return Completion(
            text=message.get("content") or "",
            model=body.get("model") or self.spec.model or "",
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            latency_s=latency_s,
            finish_reason=choices[0].get("finish_reason"),
        )

    def complete(
        self, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None = None
    ) -> Completion:
        import openai

        kwargs = self.request_fields(messages, params, json_schema)
        if self.options.extra_body:
            kwargs["extra_body"] = self.options.extra_body
        start = time.perf_counter()
        try:
            resp = self._sdk().chat.completions.create(**kwargs)
        except openai.RateLimitError as exc:
            raise BackendError(
                self._redact(f"rate limited: {exc}"),
                retryable=True,
                retry_after_s=_retry_after(exc),
                kind="rate_limited",
            ) from None
        except openai.APIStatusError as exc:
            retryable = exc.status_code >= 500 or exc.status_code in (408, 409)
            raise BackendError(
                self._redact(f"HTTP {exc.status_code}: {exc.message}"),
                retryable=retryable,
                retry_after_s=_retry_after(exc),
            ) from None
        except openai.APITimeoutError:
            raise BackendError(f"timeout after {self.spec.timeout_s}s", retryable=True, kind="timeout") from None
        except openai.APIConnectionError as exc:
            raise BackendError(self._redact(f"connection failed: {exc}"), retryable=True) from None
        except (openai.APIError, ValueError) as exc:  # e.g. a reply body that is not valid JSON
            raise BackendError(
                self._redact(f"bad reply from server: {type(exc).__name__}: {exc}"), retryable=True
            ) from None
        latency = time.perf_counter() - start
        if not resp.choices:
            raise BackendError("reply has no choices", retryable=True)
        choice = resp.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        if refusal:
            raise BackendError(f"refused: {refusal}", kind="refused")
        usage = resp.usage
        return Completion(
            text=choice.message.content or "",
            model=resp.model or self.spec.model or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_s=latency,
            finish_reason=choice.finish_reason,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def require_endpoint_or_key(spec: ModelSpec, owner: str) -> None:
    """Refuse, before any request, a spec that would silently send documents to the public OpenAI API: without
    ``base_url`` the SDK goes to api.openai.com, so a real key (``api_key`` or ``api_key_env``) must be configured."""
    if spec.base_url:
        return
    key = spec.resolved_api_key()
    if not key or key.strip().lower() in PLACEHOLDER_KEYS:
        where = f" ({spec.api_key_env} is not set)" if spec.api_key_env and not key else ""
        raise ConfigError(
            f"{owner} needs `base_url` (your endpoint, e.g. http://127.0.0.1:8000/v1 for vLLM) or, for the public "
            f"OpenAI API, a real key in `api_key_env`{where}: nothing was sent"
        )


#: keys that mean "no key" (local servers accept anything); never enough to reach the public API
PLACEHOLDER_KEYS = frozenset({"", "not-needed", "none", "dummy", "sk-no-key-required", "empty", "ollama", "x"})


def redact_endpoint(text: str, spec: ModelSpec) -> str:
    """``text`` with ``spec.base_url`` (and its host) replaced by the endpoint label."""
    if not spec.base_url:
        return text
    label = f"<{spec.endpoint_label()}>"
    text = text.replace(spec.base_url, label)
    host = urlsplit(spec.base_url).netloc
    return text.replace(host, label) if host else text


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
