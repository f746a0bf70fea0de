"""The time-based split of the personal recipes: train on older, evaluate on newer.

Items are ordered by ``created_at`` (ISO 8601 UTC strings compare in time order); the newest ``eval_share`` go to
``eval``. Items sharing the timestamp at the cut all go to ``eval``, so that no eval item is older than a train item.
Items without a date cannot be placed in time: they train (a log line counts them).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from doctune.records import Example

log = logging.getLogger(__name__)
T = TypeVar("T")


def time_cut(dates: Sequence[str], eval_share: float) -> str | None:
    """The oldest ``created_at`` that goes to eval (None: nothing does, e.g. fewer than two dated items)."""
    dated = sorted(d for d in dates if d)
    if len(dated) < 2:
        return None
    n_eval = min(len(dated) - 1, max(1, math.ceil(len(dated) * eval_share)))
    cut = dated[len(dated) - n_eval]
    if cut == dated[0]:  # every item shares the oldest date: nothing can be held out without breaking the order
        return None
    return cut


def split_by_time(items: Sequence[T], created_at: Callable[[T], str], eval_share: float) -> dict[str, list[T]]:
    """``{"train": [...], "eval": [...]}``, each oldest first (see the module docstring)."""
    cut = time_cut([created_at(i) for i in items], eval_share)
    out: dict[str, list[T]] = {"train": [], "eval": []}
    undated = 0
    for item in sorted(items, key=lambda i: created_at(i) or ""):
        date = created_at(item)
        undated += not date
        out["eval" if cut is not None and date and date >= cut else "train"].append(item)
    if undated:
        log.info("time split: %d items without a date train", undated)
    return out


def example_date(example: Example) -> str:
    return str(example.field_values().get("created_at", ""))


def split_examples_by_time(examples: Sequence[Example], eval_share: float) -> dict[str, list[Example]]:
    """The time split of recipe examples by their ``created_at`` field."""
    out = split_by_time(examples, example_date, eval_share)
    log.info(
        "time split: %d train, %d eval (eval from %s)",
        len(out["train"]),
        len(out["eval"]),
        example_date(out["eval"][0]) if out["eval"] else "-",
    )
    return out
