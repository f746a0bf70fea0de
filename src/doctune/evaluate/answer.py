"""Asking a model the evaluation questions: same system prompt, greedy decoding, concurrent calls."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from doctune.execution import current_executor
from doctune.llm.base import CallParams, Message
from doctune.llm.client import LLMClient
from doctune.records import DatasetItem

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer the question accurately and concisely."


class AnswerResult(list[str]):
    """The answers in item order (a ``list[str]``; a failed call leaves ``""``), with ``errors``:
    one ``{"item_id", "error"}`` dict per failed call."""

    def __init__(self, answers: Sequence[str] = (), errors: list[dict[str, Any]] | None = None):
        super().__init__(answers)
        self.errors: list[dict[str, Any]] = errors or []


def answer_messages(item: DatasetItem, system_prompt: str) -> list[Message]:
    """The conversation that asks ``item``'s question."""
    messages = [Message(role="system", content=system_prompt)] if system_prompt else []
    return [*messages, Message(role="user", content=item.question)]


def answer_items(
    client: LLMClient,
    items: Sequence[DatasetItem],
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    max_tokens: int = 256,
    max_concurrency: int | None = None,
    progress: bool = False,
    desc: str = "answer",
) -> AnswerResult:
    """Ask ``client``'s model every item's question with greedy decoding (temperature 0).

    Calls run concurrently (``max_concurrency``, default the backend spec's) and go through the client's
    cache. A failed call gives an empty answer and an entry in ``result.errors``; it never stops the others.
    """
    params = CallParams(temperature=0.0, max_tokens=max_tokens, seed=client.backend.spec.seed)
    concurrency = max_concurrency or client.backend.spec.max_concurrency
    conversations = [answer_messages(item, system_prompt) for item in items]
    replies = current_executor().chat_many(client, conversations, params, concurrency, desc, progress)
    answers: list[str] = []
    errors: list[dict[str, Any]] = []
    for item, reply in zip(items, replies, strict=True):
        if isinstance(reply, BaseException):
            errors.append({"item_id": item.item_id, "error": f"{type(reply).__name__}: {reply}"})
            answers.append("")
        else:
            answers.append(reply.text.strip())
    if errors:
        log.warning("%s: %d of %d questions got no answer (first: %s)", desc, len(errors), len(items), errors[0])
    return AnswerResult(answers, errors)
