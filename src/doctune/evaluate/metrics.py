"""Answer-level metrics (token F1, embedding similarity) and bootstrap confidence intervals."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> list[str]:
    """SQuAD normalisation: lowercase, drop punctuation and articles, split on whitespace."""
    text = text.lower().translate(_PUNCT)
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 between two answers (multiset overlap of normalised tokens).

    Two empty answers score 1.0; one empty answer scores 0.0.
    """
    pred, ref = normalize_answer(prediction), normalize_answer(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def embedding_similarity(pred_vecs: np.ndarray, ref_vecs: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(n, dim)`` arrays (a zero row scores 0)."""
    a = np.asarray(pred_vecs, dtype=np.float64)
    b = np.asarray(ref_vecs, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two arrays of the same (n, dim) shape, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def _percentile_ci(
    samples: np.ndarray, values: np.ndarray, n_resamples: int, confidence: float, seed: int
) -> tuple[float, float, float]:
    """Mean of ``values`` with a percentile bootstrap interval; ``samples`` is the per-item series resampled."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if n == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    means = samples[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    # float error can put an identical-valued series' bounds a hair off its mean
    return mean, float(min(low, mean)), float(max(high, mean))


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its percentile bootstrap interval.

    Empty input gives NaNs; a single value gives a zero-width interval. Reproducible for a given ``seed``.
    """
    arr = np.asarray(values, dtype=np.float64)
    return _percentile_ci(arr, arr, n_resamples, confidence, seed)


def paired_bootstrap_diff(
    a: Sequence[float],
    b: Sequence[float],
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(mean_diff, low, high)`` of ``b - a`` over paired items (e.g. base ``a`` vs tuned ``b`` on the same
    questions): item indices are resampled jointly, so per-item difficulty cancels out."""
    arr_a = np.asarray(a, dtype=np.float64)
    arr_b = np.asarray(b, dtype=np.float64)
    if arr_a.shape != arr_b.shape:
        raise ValueError(f"paired series differ in length: {len(arr_a)} vs {len(arr_b)}")
    diff = arr_b - arr_a
    return _percentile_ci(diff, diff, n_resamples, confidence, seed)
