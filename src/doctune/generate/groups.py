"""Choosing chunk groups for multi-chunk questions within a budget.

All combinations of k chunks explode (C(100, 3) = 161,700), so the number of groups is capped by
``max_groups``. When every combination fits the budget they are all used; otherwise groups are
sampled: half (``neighbour_share``) from each seed chunk's nearest neighbours by cosine similarity of the
chunks' embeddings (related passages; ``generate multihop`` embeds them with ``models.embedder``, through the
workspace's embedding cache), the rest from distant chunks (connections across the document).
Combinations are only ever counted, never enumerated beyond the budget.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import Callable, Sequence

import numpy as np

from doctune.config import MultihopConfig
from doctune.records import Chunk

log = logging.getLogger(__name__)
#: texts -> one unit-length vector per text (``generate multihop`` passes the configured ``models.embedder``)
Embed = Callable[[Sequence[str]], np.ndarray]


def count_combinations(pool_sizes: Sequence[int], min_k: int, max_k: int) -> int:
    return sum(math.comb(n, k) for n in pool_sizes for k in range(min_k, max_k + 1))


def select_groups(chunks: list[Chunk], cfg: MultihopConfig, embed: Embed) -> list[list[Chunk]]:
    """Groups of ``min_chunks``..``max_chunks`` chunks, at most ``max_groups`` of them, each group's chunks
    in document order. Deterministic for a given seed and embedding. ``embed`` is called only when groups are
    sampled (once per pool, with the pool's chunk texts)."""
    pools = [chunks] if cfg.cross_document else _by_document(chunks)
    pools = [p for p in pools if len(p) >= cfg.min_chunks]
    total = count_combinations([len(p) for p in pools], cfg.min_chunks, cfg.max_chunks)
    use_all = cfg.strategy == "all" or (cfg.strategy == "auto" and total <= cfg.max_groups)
    if use_all and total <= cfg.max_groups:
        groups = [
            list(combo)
            for pool in pools
            for k in range(cfg.min_chunks, cfg.max_chunks + 1)
            for combo in itertools.combinations(pool, k)
        ]
    elif use_all:  # "all" asked for, but over budget: a uniform sample of the combinations
        groups = _sample_all(pools, cfg)
    else:
        groups = _sample(pools, cfg, embed)
    log.info("multihop: %d groups from %d possible combinations (budget %d)", len(groups), total, cfg.max_groups)
    return groups


def _by_document(chunks: list[Chunk]) -> list[list[Chunk]]:
    pools: dict[str, list[Chunk]] = {}
    for c in chunks:
        pools.setdefault(c.doc_id, []).append(c)
    return list(pools.values())


def _sample_all(pools: list[list[Chunk]], cfg: MultihopConfig) -> list[list[Chunk]]:
    """Uniformly random distinct combinations when "all" is asked for but exceeds the budget."""
    rng = random.Random(cfg.seed)
    seen: set[tuple[str, ...]] = set()
    out: list[list[Chunk]] = []
    for _ in range(cfg.max_groups * 20):
        if len(out) >= cfg.max_groups:
            break
        pool = rng.choice(pools)
        k = rng.randint(cfg.min_chunks, min(cfg.max_chunks, len(pool)))
        group = sorted(rng.sample(range(len(pool)), k))
        key = tuple(pool[i].chunk_id for i in group)
        if key not in seen:
            seen.add(key)
            out.append([pool[i] for i in group])
    return out


def _sample(pools: list[list[Chunk]], cfg: MultihopConfig, embed: Embed) -> list[list[Chunk]]:
    rng = random.Random(cfg.seed)
    sizes = [len(p) for p in pools]
    budgets = _split_budget(cfg.max_groups, sizes)
    out: list[list[Chunk]] = []
    for pool, budget in zip(pools, budgets, strict=True):
        if budget == 0:
            continue
        vectors = embed([c.text for c in pool])
        n_near = round(budget * cfg.neighbour_share)
        seen: set[tuple[int, ...]] = set()
        picked: list[tuple[int, ...]] = []
        seeds = list(range(len(pool)))
        rng.shuffle(seeds)
        for want, near in ((n_near, True), (budget - n_near, False)):
            made = 0
            for attempt in range(want * 20):
                if made >= want:
                    break
                seed = seeds[attempt % len(seeds)]
                k = rng.randint(cfg.min_chunks, min(cfg.max_chunks, len(pool)))
                sims = vectors @ vectors[seed]
                sims[seed] = np.inf if not near else -np.inf
                order = np.argsort(-sims) if near else np.argsort(sims)
                candidates = [int(i) for i in order if int(i) != seed]
                if near:
                    members = candidates[: k - 1]
                else:  # random members from the least similar half
                    far = candidates[: max(k - 1, len(candidates) // 2)]
                    members = rng.sample(far, k - 1)
                key = tuple(sorted([seed, *members]))
                if key not in seen:
                    seen.add(key)
                    picked.append(key)
                    made += 1
        out.extend([pool[i] for i in key] for key in picked)
    return out


def _split_budget(budget: int, sizes: list[int]) -> list[int]:
    """Budget per pool, proportional to pool size, summing to at most ``budget``."""
    total = sum(sizes)
    if total == 0:
        return [0] * len(sizes)
    shares = [budget * s / total for s in sizes]
    out = [int(x) for x in shares]
    for i in sorted(range(len(sizes)), key=lambda i: shares[i] - out[i], reverse=True)[: budget - sum(out)]:
        out[i] += 1
    return out
