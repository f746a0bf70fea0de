"""Near-duplicate search (exact and IVF paths) and the choice of the item kept in each duplicate group."""

from __future__ import annotations

import random

import numpy as np
import pytest

from doctune.curate import dedup as dd
from doctune.curate.dedup import choose_keepers, dedup, near_duplicate_pairs
from doctune.records import Citation, QAItem

EXACT = 10**9  # ann_min_items that keeps the exact path
ANN = 2  # ann_min_items that forces the IVF path


def planted(n: int, dim: int, pairs: int, cosine: float, seed: int = 0) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """Random unit vectors where ``pairs`` rows are noisy copies (cosine ~``cosine``) of others."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    chosen = rng.permutation(n)[: 2 * pairs]
    a, b = chosen[:pairs], chosen[pairs:]
    v[b] = v[a] + rng.standard_normal((pairs, dim)).astype(np.float32) * np.sqrt(1 / cosine**2 - 1) / np.sqrt(dim)
    v[b] /= np.linalg.norm(v[b], axis=1, keepdims=True)
    return v, {(int(min(x, y)), int(max(x, y))) for x, y in zip(a, b, strict=True)}


def by_matrix(v: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    sims = v @ v.T
    i, j = np.nonzero(np.triu(sims >= threshold, 1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


def item(item_id: str, verified: bool = True, criteria: str = "criteria", n_citations: int = 1) -> QAItem:
    cites = [
        Citation(quote="q", doc_id="d", chunk_id="c", char_start=0, char_end=1, method="exact", score=100.0)
        for _ in range(n_citations)
    ]
    return QAItem(
        item_id=item_id,
        kind="qa",
        unit_id="c",
        doc_ids=["d"],
        chunk_ids=["c"],
        k=1,
        question=f"question {item_id}?",
        answer="answer",
        evaluation_criteria=criteria,
        difficulty=1,
        category="factual",
        citations=cites,
        citations_verified=verified,
        model="fake",
    )


def test_exact_path_matches_the_full_matrix(monkeypatch) -> None:
    monkeypatch.setattr(dd, "_BLOCK", 64)  # several tiles, diagonal and off-diagonal
    v, _ = planted(300, 24, 20, 0.95, seed=1)
    pairs = near_duplicate_pairs(v, 0.9, EXACT)
    assert {(i, j) for i, j, _ in pairs} == by_matrix(v, 0.9)
    assert all(i < j for i, j, _ in pairs) and pairs == sorted(pairs)
    for i, j, s in pairs:
        assert s == pytest.approx(float(v[i] @ v[j]), abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ann_and_exact_agree_on_planted_pairs(seed: int) -> None:
    v, truth = planted(4000, 384, 60, 0.97, seed=seed)
    exact = near_duplicate_pairs(v, 0.9, EXACT)
    ann = near_duplicate_pairs(v, 0.9, ANN)
    assert {(i, j) for i, j, _ in exact} == truth
    assert {(i, j) for i, j, _ in ann} == truth
    for (_, _, s_exact), (_, _, s_ann) in zip(exact, ann, strict=True):
        assert s_ann == pytest.approx(s_exact, abs=1e-5)


def test_ann_recall_at_the_default_threshold() -> None:
    v, _ = planted(6000, 384, 150, 0.95, seed=3)
    ann = {(i, j) for i, j, _ in near_duplicate_pairs(v, 0.92, ANN)}
    exact = {(i, j) for i, j, _ in near_duplicate_pairs(v, 0.92, EXACT)}
    assert ann <= exact  # similarities are exact: no false pairs
    assert len(ann) >= 0.98 * len(exact)


def test_ann_is_deterministic_and_handles_small_inputs() -> None:
    v, _ = planted(500, 32, 25, 0.95, seed=4)
    assert near_duplicate_pairs(v, 0.9, ANN) == near_duplicate_pairs(v, 0.9, ANN)
    assert near_duplicate_pairs(np.zeros((0, 8), np.float32), 0.9, ANN) == []
    assert near_duplicate_pairs(v[:1], 0.9, ANN) == []
    assert [(i, j) for i, j, _ in near_duplicate_pairs(v[[0, 0]], 0.9, ANN)] == [(0, 1)]


def test_unnormalised_vectors_are_compared_by_cosine() -> None:
    v = np.array([[1.0, 0.0], [10.0, 0.5], [0.0, 3.0]], dtype=np.float32)
    for ann_min in (EXACT, ANN):
        assert [(i, j) for i, j, _ in near_duplicate_pairs(v, 0.99, ann_min)] == [(0, 1)]


def test_ann_caps_partners_but_keeps_a_group_whole() -> None:
    rng = np.random.default_rng(5)
    base = rng.standard_normal(64).astype(np.float32)
    v = np.vstack([base + 0.01 * rng.standard_normal((40, 64)).astype(np.float32), rng.standard_normal((200, 64))])
    pairs = near_duplicate_pairs(v, 0.9, ANN, k=3)
    assert len(pairs) < 40 * 39 // 2  # capped
    items = [item(f"i{n:03d}") for n in range(len(v))]
    keep, dropped = dedup(items, v, 0.9, ANN)
    assert len(dropped) == 39 and keep[0] == 0 and len(keep) == 201


def test_verified_beats_longer_criteria() -> None:
    items = [
        item("a", verified=False, criteria="a much longer set of criteria"),
        item("b", verified=True, criteria="c"),
    ]
    v = np.array([[1.0, 0.0], [1.0, 0.01]], dtype=np.float32)
    keep, dropped = choose_keepers(items, v, [(0, 1, 0.99)])
    assert keep == [1]
    assert [(d.item_id, d.duplicate_of, d.similarity) for d in dropped] == [("a", "b", 0.99)]


def test_longer_criteria_then_more_citations_then_smaller_id() -> None:
    v = np.ones((2, 2), dtype=np.float32)
    longer = [item("a", criteria="short"), item("b", criteria="longer criteria")]
    assert choose_keepers(longer, v, [(0, 1, 1.0)])[0] == [1]
    cited = [item("a", n_citations=1), item("b", n_citations=3)]
    assert choose_keepers(cited, v, [(0, 1, 1.0)])[0] == [1]
    tie = [item("z"), item("y")]
    assert choose_keepers(tie, v, [(0, 1, 1.0)])[0] == [1]


def test_chain_collapses_into_one_group_and_dropped_items_name_their_keeper() -> None:
    angles = np.radians([0.0, 18.0, 36.0, 90.0])  # a~b (0.95), b~c (0.95), a!~c (0.81); d apart
    v = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    items = [item("a", criteria="the longest criteria"), item("b"), item("c"), item("d")]
    for ann_min in (EXACT, ANN):
        pairs = near_duplicate_pairs(v, 0.9, ann_min)
        assert [(i, j) for i, j, _ in pairs] == [(0, 1), (1, 2)]
        keep, dropped = dedup(items, v, 0.9, ann_min)
        assert keep == [0, 3]
        assert [(d.item_id, d.duplicate_of) for d in dropped] == [("b", "a"), ("c", "a")]
        assert dropped[0].similarity == pytest.approx(np.cos(np.radians(18)), abs=1e-5)  # from the pair
        assert dropped[1].similarity == pytest.approx(np.cos(np.radians(36)), abs=1e-5)  # computed: not a pair


def test_choice_is_stable_under_shuffling() -> None:
    v, _ = planted(300, 32, 40, 0.96, seed=6)
    rng = random.Random(0)
    items = [
        item(f"id{n:03d}", verified=rng.random() < 0.7, criteria="x" * rng.randint(1, 4), n_citations=rng.randint(1, 3))
        for n in range(len(v))
    ]

    def outcome(order: list[int]) -> tuple[set[str], dict[str, tuple[str, float]]]:
        keep, dropped = dedup([items[i] for i in order], v[order], 0.9, EXACT)
        kept_ids = {items[order[i]].item_id for i in keep}
        return kept_ids, {d.item_id: (d.duplicate_of, round(d.similarity, 5)) for d in dropped}

    reference = outcome(list(range(len(v))))
    assert len(reference[1]) >= 40
    for seed in range(3):
        order = list(range(len(v)))
        random.Random(seed).shuffle(order)
        assert outcome(order) == reference


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match="2 items but 3 vectors"):
        choose_keepers([item("a"), item("b")], np.ones((3, 2)), [])
