"""The character recipe's split policy: whole scenes held out, chosen so that every character keeps enough of them.

:func:`choose_heldout_scenes` is a seeded greedy choice over scene -> speeches-per-character counts:

1. every character should end with at least ``min_heldout`` held-out speeches, but never more than half of its
   speeches (``total // 2``), so that at least half stay in training; a character with fewer than
   ``2 * min_heldout`` speeches is therefore held to ``total // 2`` (a log warning says so);
2. while some character is short of its target, hold out the scene that helps most: each speech a short character
   still needs counts as a share of its target (in the second pass weighted up for the characters that need the
   most), each speech nobody needs costs its share of its character's speeches (``SURPLUS_WEIGHT``); a scene is
   only taken when no character goes past half its speeches; ``seed`` orders the scenes and breaks ties;
3. a pruning pass then gives back to training every held-out scene (largest first) that no target needs;
4. of the two passes, the one with the smaller total shortfall wins (then the fewer held-out speeches); a
   character left short keeps as many held-out speeches as it got, and a log warning names it.

Held-out scenes form the ``eval`` split whole: a scene is never in both splits. :func:`cap_evenly` thins a
character's training examples to an evenly spaced subset (``character.max_train_per_character``).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

#: how much a held-out speech nobody needs costs, against one a needy character needs (both as shares)
SURPLUS_WEIGHT = 1.0


@dataclass
class HeldoutChoice:
    """The held-out scenes and, per character, its speeches: total, held out, the target it was held to."""

    scenes: list[str]
    totals: dict[str, int]
    heldout: dict[str, int]
    targets: dict[str, int]
    short: list[str] = field(default_factory=list)


def choose_heldout_scenes(counts: Mapping[str, Mapping[str, int]], min_heldout: int, seed: int = 0) -> HeldoutChoice:
    """Scenes to hold out (see the module docstring); ``counts``: scene -> character -> its speeches there."""
    totals: Counter[str] = Counter()
    for per_char in counts.values():
        totals.update({c: n for c, n in per_char.items() if n > 0})
    caps = {c: n // 2 for c, n in totals.items()}
    targets = {c: min(min_heldout, caps[c]) for c in totals}
    for c in sorted(totals):
        if targets[c] < min_heldout:
            log.warning(
                "character %s has %d speeches: holding out at most %d (character.min_heldout is %d), "
                "so that half stay in training",
                c,
                totals[c],
                targets[c],
                min_heldout,
            )
    order = sorted(counts)
    random.Random(seed).shuffle(order)
    runs = [_greedy(counts, order, totals, caps, targets, need_weighted) for need_weighted in (False, True)]
    held, got = min(runs, key=lambda run: (sum(max(0, targets[c] - run[1][c]) for c in totals), sum(run[1].values())))
    short = sorted(c for c in totals if got[c] < min_heldout)
    for c in short:
        log.warning(
            "character %s: %d held-out speeches of %d (character.min_heldout is %d; held-out scenes are whole)",
            c,
            got[c],
            totals[c],
            min_heldout,
        )
    return HeldoutChoice(
        scenes=[s for s in order if s in held],
        totals=dict(totals),
        heldout={c: got[c] for c in totals},
        targets=targets,
        short=short,
    )


def _greedy(
    counts: Mapping[str, Mapping[str, int]],
    order: list[str],
    totals: Mapping[str, int],
    caps: Mapping[str, int],
    targets: Mapping[str, int],
    need_weighted: bool,
) -> tuple[set[str], Counter[str]]:
    """One greedy pass, then the pruning pass; returns the held-out scenes and the speeches held out."""
    rank = {scene: i for i, scene in enumerate(order)}
    held: set[str] = set()
    got: Counter[str] = Counter()
    while True:
        deficit = {c: targets[c] - got[c] for c in totals if got[c] < targets[c]}
        if not deficit:
            break

        def score(scene: str, deficit: dict[str, int] = deficit) -> tuple[float, int]:
            gain = loss = 0.0
            for c, n in counts[scene].items():
                useful = min(n, deficit.get(c, 0))
                weight = (1 + deficit[c] / targets[c]) / 2 if need_weighted and useful else 1.0
                gain += weight * useful / targets[c] if useful else 0.0
                loss += (n - useful) / totals[c] if n else 0.0
            return round(gain - SURPLUS_WEIGHT * loss, 9), -rank[scene]

        candidates = [
            s
            for s in order
            if s not in held
            and any(counts[s].get(c, 0) > 0 for c in deficit)
            and all(got[c] + n <= caps[c] for c, n in counts[s].items())
        ]
        if not candidates:
            break
        best = max(candidates, key=score)
        held.add(best)
        got.update(counts[best])
    # pruning: drop a held-out scene (largest first) when no character falls below its target (or what it had)
    for scene in sorted(held, key=lambda s: (-sum(counts[s].values()), rank[s])):
        after = got.copy()
        after.subtract(counts[scene])
        if all(after[c] >= min(targets[c], got[c]) for c in totals):
            held.discard(scene)
            got = after
    return held, got


def cap_evenly(items: Sequence[T], cap: int | None) -> list[T]:
    """At most ``cap`` of ``items``, evenly spaced over the sequence (all of them when ``cap`` is None)."""
    if cap is None or len(items) <= cap:
        return list(items)
    n = len(items)
    return [items[(2 * i + 1) * n // (2 * cap)] for i in range(cap)]
