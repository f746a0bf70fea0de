"""A scripted backend for tests: queued replies, every request recorded."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from doctune.config import ModelSpec
from doctune.llm.base import BackendError, CallParams, Completion, LLMBackend, Message
from doctune.llm.registry import register_backend

Reply = str | BackendError | Callable[[list[Message]], str]


@register_backend
class FakeBackend(LLMBackend):
    """Replies come from a queue (strings, exceptions to raise, or callables of the messages);
    when the queue is empty, ``default_reply`` is used, or an error is raised if there is none."""

    name: ClassVar[str] = "fake"
    supports_json_schema: ClassVar[bool] = False

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        replies: list[str] = Field(default_factory=list, description="Replies returned in order.")
        default_reply: str | None = Field(None, description="Reply once the queue is empty.")
        echo: bool = Field(False, description="Reply with the last user message (after the queue and default).")

    def __init__(self, spec: ModelSpec | None = None):
        super().__init__(spec or ModelSpec(backend="fake"))
        self.queue: deque[Reply] = deque(self.options.replies)
        self.requests: list[dict[str, Any]] = []

    def add_replies(self, *replies: Reply) -> FakeBackend:
        self.queue.extend(replies)
        return self

    def identity(self) -> str:
        return f"fake:{self.spec.model or 'fake'}"

    def complete(
        self, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None = None
    ) -> Completion:
        self.requests.append({"messages": messages, "params": params, "json_schema": json_schema})
        if self.queue:
            reply = self.queue.popleft()
        elif self.options.default_reply is not None:
            reply = self.options.default_reply
        elif self.options.echo:
            reply = next(m.content for m in reversed(messages) if m.role == "user")
        else:
            raise BackendError("fake backend: no reply queued")
        if isinstance(reply, BackendError):
            raise reply
        text = reply(messages) if callable(reply) else reply
        prompt_chars = sum(len(m.content) for m in messages)
        return Completion(
            text=text,
            model=self.identity(),
            prompt_tokens=prompt_chars // 4,
            completion_tokens=len(text) // 4,
            finish_reason="stop",
        )
