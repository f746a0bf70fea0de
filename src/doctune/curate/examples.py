"""Curation of any recipe's examples, without knowing which recipe made them.

:func:`curate_examples` takes the ``Example`` rows of ``examples_<recipe>`` and, in order:

1. drops exact duplicates: same prompt and target once whitespace is collapsed and case folded (the first one
   is kept; the reason names it);
2. drops the examples that fail :meth:`Recipe.check` (the reason lists the failed checks), except those a human
   reviewer vouched for (``vouched``: approved or edited in the ``reviews`` artifact; counted as ``kept_by_reviewer``);
3. splits the rest with :meth:`Recipe.split_examples` and sets ``Example.split``; an example the split policy
   leaves out (e.g. past a per-character cap) is dropped with reason ``not_in_split``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence, Set
from typing import TYPE_CHECKING, Any

from doctune.records import Example

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.recipes import Recipe

log = logging.getLogger(__name__)


def example_key(example: Example) -> str:
    """What makes two examples the same: their prompt messages and target, whitespace collapsed and case folded."""
    parts = [f"{m.role}:{' '.join(m.content.split()).casefold()}" for m in example.prompt_messages]
    parts.append("target:" + " ".join(example.target.split()).casefold())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _dropped(example: Example, reason: str) -> dict[str, str]:
    return {"example_id": example.example_id, "unit_id": example.unit_id, "group": example.group, "reason": reason}


def curate_examples(
    recipe: Recipe, examples: Sequence[Example], config: DoctuneConfig, vouched: Set[str] = frozenset()
) -> tuple[dict[str, list[Example]], list[dict[str, str]], dict[str, Any]]:
    """(split -> kept examples with ``split`` set, dropped examples with reasons, counts); see the module."""
    dropped: list[dict[str, str]] = []
    failed_checks: Counter[str] = Counter()
    seen: dict[str, str] = {}
    passing: list[Example] = []
    kept_by_reviewer = 0
    for ex in examples:
        key = example_key(ex)
        if key in seen:
            dropped.append(_dropped(ex, f"duplicate of {seen[key]}"))
            continue
        seen[key] = ex.example_id
        failed = recipe.check(ex)
        if failed and ex.example_id in vouched:  # the reviewer wins over the recipe's checks
            kept_by_reviewer += 1
        elif failed:
            failed_checks.update(failed)
            dropped.append(_dropped(ex, "failed checks: " + ", ".join(failed)))
            continue
        passing.append(ex)
    n_failed = sum(1 for d in dropped if d["reason"].startswith("failed"))
    n_duplicates = len(dropped) - n_failed

    splits = recipe.split_examples(passing, config)
    kept: dict[str, list[Example]] = {split: [] for split in recipe.splits}
    placed: set[str] = set()
    for split, members in splits.items():
        for ex in members:
            if ex.example_id in placed:
                raise ValueError(f"recipe {recipe.name}: split policy put {ex.example_id} in two splits")
            placed.add(ex.example_id)
            kept.setdefault(split, []).append(ex.model_copy(update={"split": split}))
    # examples the split policy leaves out (a cap on train examples) are not defects: counted, not reported
    left_out = [ex for ex in passing if ex.example_id not in placed]

    per_adapter: dict[str, dict[str, int]] = defaultdict(dict)
    for split, members in kept.items():
        for key, n in Counter(recipe.adapter_key(ex) or "all" for ex in members).items():
            per_adapter[key][split] = n
    stats: dict[str, Any] = {
        "recipe": recipe.name,
        "examples": len(examples),
        "kept": sum(len(v) for v in kept.values()),
        "duplicates": n_duplicates,
        "failed": n_failed,
        "failed_checks": dict(failed_checks),
        "kept_by_reviewer": kept_by_reviewer,
        "not_in_split": len(left_out),
        "splits": {split: len(members) for split, members in kept.items()},
        "per_adapter": {key: dict(per_adapter[key]) for key in sorted(per_adapter)},
        "groups": {split: len({ex.group for ex in members}) for split, members in kept.items()},
    }
    log.info(
        "curated %d %s examples: %s; dropped %d duplicates, %d failing checks, %d left out by the split",
        len(examples),
        recipe.name,
        ", ".join(f"{s} {n}" for s, n in stats["splits"].items()),
        n_duplicates,
        n_failed,
        len(left_out),
    )
    return kept, dropped, stats
