"""A scripted backend for tests: queued replies, named scripts, every request recorded."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from doctune.config import ModelSpec
from doctune.llm.base import BackendError, CallParams, Completion, LLMBackend, Message
from doctune.llm.registry import register_backend

ReplyValue = str | Completion
Reply = ReplyValue | BackendError | Callable[[list[Message]], ReplyValue]


@register_backend
class FakeBackend(LLMBackend):
    """Replies come, in order of preference, from: the queue (strings, ``Completion`` objects,
    exceptions to raise, or callables of the messages); the script registered under ``model``
    (see ``register_script``); ``default_reply``; the last user message when ``echo``. Otherwise
    the call fails."""

    name: ClassVar[str] = "fake"
    supports_json_schema: ClassVar[bool] = False
    scripted: ClassVar[bool] = True
    scripts: ClassVar[dict[str, Callable[[list[Message]], Reply]]] = {}

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        replies: list[str] = Field(default_factory=list, description="Replies returned in order.")
        default_reply: str | None = Field(None, description="Reply once the queue is empty.")
        echo: bool = Field(False, description="Reply with the last user message (after the queue and default).")

    def __init__(self, spec: ModelSpec | None = None):
        super().__init__(spec or ModelSpec(backend="fake"))
        self.queue: deque[Reply] = deque(self.options.replies)
        self.requests: list[dict[str, Any]] = []

    @classmethod
    def register_script(cls, name: str, script: Callable[[list[Message]], Reply]) -> None:
        """Make ``{backend: fake, model: name}`` answer every call with ``script(messages)``."""
        cls.scripts[name] = script

    def add_replies(self, *replies: Reply) -> FakeBackend:
        self.queue.extend(replies)
        return self

    def identity(self) -> str:
        return f"fake:{self.spec.model or 'fake'}"

    def _next_reply(self, messages: list[Message]) -> Reply:
        if self.queue:
            return self.queue.popleft()
        if self.spec.model in self.scripts:
            return self.scripts[self.spec.model](messages)
        if self.options.default_reply is not None:
            return self.options.default_reply
        if self.options.echo:
            return next(m.content for m in reversed(messages) if m.role == "user")
        raise BackendError("fake backend: no reply queued")

    def complete(
        self, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None = None
    ) -> Completion:
        self.requests.append({"messages": messages, "params": params, "json_schema": json_schema})
        reply = self._next_reply(messages)
        if callable(reply):
            reply = reply(messages)
        if isinstance(reply, BackendError):
            raise reply
        if isinstance(reply, Completion):
            return reply
        prompt_chars = sum(len(m.content) for m in messages)
        return Completion(
            text=reply,
            model=self.label(),
            prompt_tokens=prompt_chars // 4,
            completion_tokens=len(reply) // 4,
            finish_reason="stop",
        )
