"""k-means clusters of item embeddings, with k chosen by silhouette and the elbow both computed and plotted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class KSelection:
    ks: list[int]
    inertias: list[float]
    silhouettes: list[float]
    elbow_k: int
    best_k: int


@dataclass
class Clustering:
    labels: np.ndarray  # cluster per row
    selection: KSelection | None  # None when there were too few items to choose k


def elbow_point(ks: list[int], inertias: list[float]) -> int:
    """The k farthest from the straight line between the first and last (k, inertia) points."""
    if len(ks) < 3:
        return ks[0]
    x = np.array(ks, dtype=float)
    y = np.array(inertias, dtype=float)
    x_n = (x - x[0]) / (x[-1] - x[0])
    y_n = (y - y[-1]) / (y[0] - y[-1]) if y[0] != y[-1] else np.zeros_like(y)
    distance = np.abs(x_n + y_n - 1) / np.sqrt(2)  # line from (0, 1) to (1, 0)
    return ks[int(np.argmax(distance))]


def cluster_vectors(vectors: np.ndarray, min_k: int, max_k: int, seed: int = 0) -> Clustering:
    """k-means for each k in range; the k with the best silhouette wins (the elbow is recorded beside it)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(vectors)
    # silhouette favours many tiny clusters on small sets: allow at most one cluster per three items
    ks = [k for k in range(min_k, max_k + 1) if k < n and k <= max(min_k, n // 3)]
    if not ks:
        return Clustering(labels=np.zeros(n, dtype=int), selection=None)
    inertias: list[float] = []
    silhouettes: list[float] = []
    fits = {}
    for k in ks:
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(vectors)
        fits[k] = model.labels_
        inertias.append(float(model.inertia_))
        distinct = len(set(model.labels_.tolist()))
        silhouettes.append(float(silhouette_score(vectors, model.labels_)) if 1 < distinct < n else -1.0)
    best_k = ks[int(np.argmax(silhouettes))]
    selection = KSelection(ks, inertias, silhouettes, elbow_point(ks, inertias), best_k)
    log.info("k-means: best silhouette at k=%d, elbow at k=%d", best_k, selection.elbow_k)
    return Clustering(labels=np.asarray(fits[best_k]), selection=selection)


def plot_k_selection(selection: KSelection, path: Path) -> Path:
    """Inertia (elbow) and silhouette against k, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(selection.ks, selection.inertias, marker="o")
    left.axvline(selection.elbow_k, color="tab:orange", linestyle="--", label=f"elbow k={selection.elbow_k}")
    left.set(title="Elbow: k-means inertia", xlabel="k", ylabel="inertia")
    left.legend()
    right.plot(selection.ks, selection.silhouettes, marker="o", color="tab:green")
    right.axvline(selection.best_k, color="tab:red", linestyle="--", label=f"chosen k={selection.best_k}")
    right.set(title="Silhouette score", xlabel="k", ylabel="silhouette")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
