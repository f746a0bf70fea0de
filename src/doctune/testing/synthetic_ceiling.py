"""The ceiling of the synthetic account's preference process (``synthetic_account``): the expected AUC of the
Bayes-optimal scorer, computed exactly from the like probabilities, and the realised AUC on drawn labels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Ceiling:
    """The best possible AUC (exact, from p) and the realised AUC of ranking by p on the drawn labels."""

    auc_star: float
    auc_realised: float
    n: int
    positives: int
    expected_positives: float


def normal_cdf(x: np.ndarray | float) -> np.ndarray:
    return 0.5 * np.array([math.erfc(-v / math.sqrt(2.0)) for v in np.atleast_1d(np.asarray(x, dtype=float))])


def best_possible_auc(p: Any) -> float:
    """Expected AUC of ranking by p when label i ~ Bernoulli(p_i): the probability-weighted share of (positive,
    negative) pairs i != j that p orders correctly, ties counting one half. O(n log n); nan without pairs."""
    p = np.asarray(p, dtype=float)
    q = 1.0 - p
    values, inverse = np.unique(p, return_inverse=True)
    sum_p = np.bincount(inverse, weights=p, minlength=len(values))
    sum_q = np.bincount(inverse, weights=q, minlength=len(values))
    sum_pq = np.bincount(inverse, weights=p * q, minlength=len(values))
    q_below = np.concatenate([[0.0], np.cumsum(sum_q)[:-1]])  # sum of q_j over p_j < value
    numerator = float(np.sum(sum_p * q_below) + 0.5 * np.sum(sum_p * sum_q - sum_pq))
    denominator = float(p.sum() * q.sum() - np.sum(p * q))
    return numerator / denominator if denominator > 0 else float("nan")


def realised_auc(labels: Any, scores: Any) -> float:
    """ROC AUC of scores on 0/1 labels (Mann-Whitney U with average ranks for ties); nan with one class only."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _values, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0  # 1-based ranks averaged over each tie group
    ranks = average_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ceiling(p: Any, labels: Any) -> Ceiling:
    p = np.asarray(p, dtype=float)
    y = np.asarray(labels, dtype=bool)
    return Ceiling(best_possible_auc(p), realised_auc(y, p), len(p), int(y.sum()), float(p.sum()))


def calibrate_threshold(u: np.ndarray, sigma: float, rate: float) -> float:
    """t such that mean(Phi((u - t) / sigma)) == rate (bisection; the mean falls as t grows)."""
    lo, hi = float(u.min() - 10 * sigma), float(u.max() + 10 * sigma)
    for _ in range(100):
        mid = (lo + hi) / 2
        if normal_cdf((u - mid) / sigma).mean() > rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
