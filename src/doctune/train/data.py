"""Training examples: curated items -> chat messages -> token ids with completion-only labels.

An example is ``{"messages": [system?, user (question), assistant (answer)]}``, the same records as the chat
JSONL export, or a multi-turn conversation (a brainstorming dialogue). :func:`tokenize_example` renders it with the
base model's chat template and builds ``labels`` where every prompt token (system, user turns and the assistant
headers) is ``-100`` and only the assistant turns' tokens plus their end-of-turn tokens are trained; whatever the template writes after the end-of-turn token (SmolLM2: a newline) is
masked too.

Why not TRL's masking: ``assistant_only_loss`` needs ``{% generation %}`` markers that SmolLM2's template lacks
(TRL 1.16 has no patched template for it and refuses); ``completion_only_loss`` with prompt/completion data is
correct up to the end-of-turn token but also trains the newline after it. The labels built here are passed to
``SFTTrainer`` as a pre-tokenized dataset, which TRL uses as is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from doctune.records import DatasetItem

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
Messages = list[dict[str, str]]


def chat_messages(question: str, answer: str, system_prompt: str | None) -> Messages:
    """``[system?, user, assistant]``; no system message when ``system_prompt`` is empty or None."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def items_to_examples(items: Iterable[DatasetItem], system_prompt: str | None) -> list[dict[str, Messages]]:
    """Conversational examples ``{"messages": [...]}``, one per item, in order."""
    return [{"messages": chat_messages(item.question, item.answer, system_prompt)} for item in items]


def read_chat_jsonl(path: str | Path) -> list[dict[str, Messages]]:
    """Examples from a chat JSONL export (``export/chat/<split>.jsonl``); other keys of a line are dropped."""
    out = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record.get("messages"), list):
                raise ValueError(f"{path}:{n}: no 'messages' list")
            out.append({"messages": record["messages"]})
    return out


def _chat_ids(tokenizer: Any, messages: Messages, add_generation_prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=add_generation_prompt
    )
    return list(encoded["input_ids"])


def end_of_turn_id(tokenizer: Any) -> int | None:
    """The token that ends an assistant turn: the tokenizer's EOS (``<|im_end|>`` for ChatML templates)."""
    return tokenizer.eos_token_id


def tokenize_example(messages: Messages, tokenizer: Any, max_length: int | None = None) -> dict[str, list[int]] | None:
    """``input_ids`` and completion-only ``labels`` of one conversation whose last message is the assistant's.

    Every assistant turn is trained (a multi-turn dialogue trains the assistant persona's turns only; a one-turn
    example its answer): for each assistant message, the conversation up to it, rendered with the generation
    prompt, must be a prefix of the rendered conversation (a ``ValueError`` says so otherwise); the turn's tokens up
    to and including its first end-of-turn token are labelled, everything else (system, user turns, assistant
    headers, what the template writes after an end-of-turn token) is ``-100``. ``max_length`` cuts the sequence at
    the end; ``None`` is returned when no trained token is left.
    """
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("the last message of a training example must be the assistant's")
    full_ids = _chat_ids(tokenizer, messages, add_generation_prompt=False)
    labels = [IGNORE_INDEX] * len(full_ids)
    eot = end_of_turn_id(tokenizer)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt_ids = _chat_ids(tokenizer, messages[:i], add_generation_prompt=True)
        upto_ids = full_ids if i == len(messages) - 1 else _chat_ids(tokenizer, messages[: i + 1], False)
        if full_ids[: len(prompt_ids)] != prompt_ids or full_ids[: len(upto_ids)] != upto_ids:
            raise ValueError(
                "the chat template does not render the prompt as a prefix of the whole conversation; "
                "completion-only labels cannot be built"
            )
        turn = full_ids[len(prompt_ids) : len(upto_ids)]
        trained = turn.index(eot) + 1 if eot is not None and eot in turn else len(turn)
        labels[len(prompt_ids) : len(prompt_ids) + trained] = turn[:trained]
    if max_length is not None:
        full_ids, labels = full_ids[:max_length], labels[:max_length]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": full_ids, "labels": labels}


def tokenize_examples(
    examples: Sequence[dict[str, Messages]], tokenizer: Any, max_length: int | None
) -> tuple[list[dict[str, list[int]]], int]:
    """Tokenized examples (see :func:`tokenize_example`) and how many were dropped for having no trained token."""
    out = []
    for example in examples:
        tokenized = tokenize_example(example["messages"], tokenizer, max_length)
        if tokenized is not None:
            out.append(tokenized)
    dropped = len(examples) - len(out)
    if dropped:
        log.warning("%d example(s) dropped: the prompt alone fills max_length=%s", dropped, max_length)
    return out, dropped


def to_dataset(tokenized: Sequence[dict[str, list[int]]]) -> Any:
    """A ``datasets.Dataset`` with ``input_ids`` and ``labels`` columns (what ``SFTTrainer`` takes pre-tokenized)."""
    import datasets

    return datasets.Dataset.from_dict(
        {"input_ids": [t["input_ids"] for t in tokenized], "labels": [t["labels"] for t in tokenized]}
    )
