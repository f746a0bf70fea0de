"""Training data of any recipe: the curated ``dataset_<recipe>`` examples -> chat examples, one set per adapter.

Every :class:`~doctune.records.Example` is already a conversation: its system and user turns are the prompt and
its last assistant turn the completion (turns after it are dropped), so it goes through the same
completion-only tokenization as the QA items (:func:`doctune.train.data.tokenize_example`).

A recipe with an ``adapter_field`` (the character recipe: ``character``) trains one adapter per value of that
field: :func:`adapter_datasets` groups the examples by :meth:`Recipe.adapter_key` and gives, per adapter, its
examples by split and the registry labels that say what it is for (``recipe``, the adapter field's value, and the
fields in :data:`LABEL_FIELDS` when the adapter's examples have them, e.g. ``play``). A recipe without one trains a
single adapter on all its examples.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from doctune.config import ConfigError
from doctune.train.data import Messages

if TYPE_CHECKING:
    from doctune.recipes import Recipe
    from doctune.records import Example

log = logging.getLogger(__name__)

TRAIN_SPLIT = "train"
#: fields copied into an adapter's registry labels when its examples have them (several values are joined by ", ")
LABEL_FIELDS = ("play",)


@dataclass
class AdapterData:
    """The examples of one adapter, by split, and the labels its registry entry gets."""

    key: str | None = field(metadata={"doc": "The adapter field's value (a character), None: one adapter in all."})
    splits: dict[str, list[Example]]
    labels: dict[str, str]

    @property
    def train(self) -> list[Example]:
        return self.splits.get(TRAIN_SPLIT, [])

    def eval_splits(self) -> dict[str, list[Example]]:
        """The non-empty splits other than train, in the dataset's order."""
        return {name: rows for name, rows in self.splits.items() if name != TRAIN_SPLIT and rows}


def example_messages(example: Example) -> Messages:
    """The conversation of ``example`` up to its last assistant turn (the completion), as plain dicts."""
    last = max((i for i, m in enumerate(example.messages) if m.role == "assistant"), default=None)
    if last is None:
        raise ValueError(f"example {example.example_id} has no assistant turn to train on")
    return [{"role": m.role, "content": m.content} for m in example.messages[: last + 1]]


def examples_to_chats(examples: Iterable[Example]) -> list[dict[str, Messages]]:
    """Conversational training examples ``{"messages": [...]}`` (what the trainer takes), one per example."""
    return [{"messages": example_messages(ex)} for ex in examples]


def slug(key: str) -> str:
    """A file-name-safe form of an adapter key ("LADY MACBETH" -> "lady-macbeth")."""
    return re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-") or "adapter"


def adapter_labels(recipe: Recipe, key: str | None, examples: Sequence[Example]) -> dict[str, str]:
    """``recipe``, the adapter field's value, and the :data:`LABEL_FIELDS` values of ``examples``."""
    labels = {"recipe": recipe.name}
    if recipe.adapter_field and key is not None:
        labels[recipe.adapter_field] = key
    for name in LABEL_FIELDS:
        if name == recipe.adapter_field:
            continue
        values = sorted({str(v) for ex in examples if (v := ex.field_values().get(name)) not in (None, "")})
        if values:
            labels[name] = ", ".join(values)
    return labels


def _match_keys(wanted: Sequence[str], known: Sequence[str], what: str) -> list[str]:
    """The known keys ``wanted`` names (exact, else case-insensitive), in the order asked, without repeats."""
    by_fold = {k.casefold(): k for k in known}
    out, missing = [], []
    for name in wanted:
        key = name if name in known else by_fold.get(name.strip().casefold())
        if key is None:
            missing.append(name)
        elif key not in out:
            out.append(key)
    if missing:
        listed = ", ".join(known) or "none"
        raise ConfigError(f"no train example for {what} {', '.join(missing)}; the train split has: {listed}")
    return out


def adapter_datasets(
    recipe: Recipe, examples: Sequence[Example], keys: Sequence[str] | None = None
) -> list[AdapterData]:
    """The examples of each adapter to train, by split.

    With an ``adapter_field``: one :class:`AdapterData` per key in ``keys`` (matched case-insensitively), or per
    key present in the train split when ``keys`` is empty, sorted. Without one: a single adapter of every example
    (``keys`` must then be empty). Raises :class:`ConfigError` for a key without train examples or keys given to
    a recipe that has one adapter.
    """
    field_name = recipe.adapter_field
    if field_name is None:
        if keys:
            raise ConfigError(
                f"recipe {recipe.name!r} trains one adapter for all its examples: it takes no adapter key"
            )
        splits: dict[str, list[Example]] = {}
        for ex in examples:
            splits.setdefault(ex.split, []).append(ex)
        return [AdapterData(key=None, splits=splits, labels=adapter_labels(recipe, None, examples))]

    grouped: dict[str, dict[str, list[Example]]] = {}
    for ex in examples:
        key = recipe.adapter_key(ex) or ""
        grouped.setdefault(key, {}).setdefault(ex.split, []).append(ex)
    in_train = sorted(k for k, splits in grouped.items() if k and splits.get(TRAIN_SPLIT))
    chosen = _match_keys(keys, in_train, field_name) if keys else in_train
    out = []
    for key in chosen:
        splits = grouped[key]
        every = [ex for rows in splits.values() for ex in rows]
        out.append(AdapterData(key=key, splits=splits, labels=adapter_labels(recipe, key, every)))
    return out
