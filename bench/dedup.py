"""Benchmark doctune's approximate near-duplicate search against exact brute force, on the same data, in one run.

    python bench/dedup.py [--n 100000] [--pairs 2000] [--dim 384] [--threshold 0.9] [--cosine 0.95] [--repeat 3]

Data (seeded): ``n`` random unit vectors; for ``pairs`` of them, a second row is replaced by a copy plus Gaussian
noise scaled so that the pair's cosine is about ``--cosine``. Random pairs are far below the threshold, so every
pair reported that was not planted is a false positive.

Both methods are doctune's own ``near_duplicate_pairs``: the ANN path (IVF self-join, forced with
``ann_min_items=2``) and the exact path (block matrix products over the upper triangle). The ANN time is the median
of ``--repeat`` runs; faiss is imported before timing. Exact brute force runs once, on all rows, when a timed sample
predicts it finishes within ``--max-exact-s``; otherwise it is timed on ``--sample`` random query rows against all
vectors (the same tiles) and extrapolated linearly to the n^2/2 pairs of the full run, and the output says so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from doctune.curate.dedup import _BLOCK, _hits, near_duplicate_pairs  # noqa: E402

PairSet = set[tuple[int, int]]


def make_data(n: int, pairs: int, dim: int, cosine: float, seed: int) -> tuple[np.ndarray, PairSet]:
    """Random unit vectors with ``pairs`` planted near-duplicate pairs (and the set of those pairs)."""
    if 2 * pairs > n:
        raise SystemExit(f"--pairs {pairs} needs --n >= {2 * pairs}")
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    chosen = rng.permutation(n)[: 2 * pairs]
    a, b = chosen[:pairs], chosen[pairs:]
    scale = np.sqrt(1.0 / cosine**2 - 1.0) / np.sqrt(dim)  # |noise| = tan(angle): cos(x, x + noise) ~ cosine
    v[b] = v[a] + rng.standard_normal((pairs, dim), dtype=np.float32) * np.float32(scale)
    v[b] /= np.linalg.norm(v[b], axis=1, keepdims=True)
    return v, {(int(min(x, y)), int(max(x, y))) for x, y in zip(a, b, strict=True)}


def exact_for_rows(v: np.ndarray, rows: np.ndarray, threshold: float) -> PairSet:
    """Every pair >= threshold that involves one of ``rows`` (the same tiles and filter as the exact path)."""
    found: PairSet = set()
    for i0 in range(0, len(rows), _BLOCK):
        q = rows[i0 : i0 + _BLOCK]
        block = v[q]
        for j0 in range(0, len(v), _BLOCK):
            r, c, _ = _hits(block @ v[j0 : j0 + _BLOCK].T, threshold)
            for i, j in zip(q[r].tolist(), (c + j0).tolist(), strict=True):
                if i != j:
                    found.add((min(i, j), max(i, j)))
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--pairs", type=int, default=2_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--cosine", type=float, default=0.95, help="planted pairs' cosine (about)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nprobe", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3, help="ANN runs; the median is reported")
    ap.add_argument("--max-exact-s", type=float, default=180.0, help="predicted exact time above which it is sampled")
    ap.add_argument("--sample", type=int, default=8192, help="query rows timed when exact is sampled")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import faiss  # imported before timing: a one-off cost, not part of the search

    v, planted = make_data(args.n, args.pairs, args.dim, args.cosine, args.seed)
    n = len(v)
    planted_cos = np.array([float(v[i] @ v[j]) for i, j in sorted(planted)])
    print(
        f"data: {n:,} x {args.dim} unit vectors, {len(planted):,} planted pairs (cosine {planted_cos.min():.3f}"
        f"..{planted_cos.max():.3f}, median {np.median(planted_cos):.3f}); threshold {args.threshold}"
    )
    print(
        f"machine: {faiss.omp_get_max_threads()} threads for faiss; numpy {np.__version__}, faiss {faiss.__version__}"
    )
    reachable = {p for p, c in zip(sorted(planted), planted_cos, strict=True) if c >= args.threshold}

    ann_times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        ann = near_duplicate_pairs(v, args.threshold, ann_min_items=2, k=args.k, nprobe=args.nprobe, seed=args.seed)
        ann_times.append(time.perf_counter() - t)
    ann_s = statistics.median(ann_times)
    ann_set = {(i, j) for i, j, _ in ann}
    print(
        f"ANN (IVF self-join, nprobe={args.nprobe}, k={args.k}): {ann_s:.2f} s (median of {args.repeat}: "
        + ", ".join(f"{x:.2f}" for x in ann_times)
        + f"), {len(ann_set):,} pairs"
    )
    print(
        f"  recall of planted pairs: {len(ann_set & reachable) / max(1, len(reachable)):.4f} "
        f"({len(ann_set & reachable):,}/{len(reachable):,} at or above the threshold)"
    )
    print(f"  false positives (reported, not planted): {len(ann_set - planted):,}")

    probe = np.random.default_rng(args.seed + 1).choice(n, min(n, 2048), replace=False)
    t = time.perf_counter()
    exact_for_rows(v, probe, args.threshold)
    predicted = (time.perf_counter() - t) * (n / 2) / len(probe)
    if predicted <= args.max_exact_s:
        t = time.perf_counter()
        exact = {(i, j) for i, j, _ in near_duplicate_pairs(v, args.threshold, ann_min_items=n + 1)}
        exact_s = time.perf_counter() - t
        print(
            f"exact brute force (all {n:,} rows, {_BLOCK}-row tiles, upper triangle): {exact_s:.2f} s, "
            f"{len(exact):,} pairs"
        )
        agree_rows, agree_exact = ann_set, exact
    else:
        rows = np.sort(np.random.default_rng(args.seed + 2).choice(n, min(n, args.sample), replace=False))
        t = time.perf_counter()
        exact = exact_for_rows(v, rows, args.threshold)
        measured = time.perf_counter() - t
        exact_s = measured * (n / 2) / len(rows)
        print(
            f"exact brute force: predicted {predicted:.0f} s > --max-exact-s, so SAMPLED: {len(rows):,} random "
            f"query rows x all {n:,} vectors took {measured:.2f} s; EXTRAPOLATED linearly to the n^2/2 pairs of a "
            f"full run: {exact_s:.1f} s"
        )
        row_set = set(rows.tolist())
        agree_rows = {p for p in ann_set if p[0] in row_set or p[1] in row_set}
        agree_exact = exact
    print(
        f"  ANN recall against exact (pairs involving the timed rows): "
        f"{len(agree_rows & agree_exact) / max(1, len(agree_exact)):.4f}; "
        f"ANN pairs exact did not find: {len(agree_rows - agree_exact)}"
    )
    ratio = ann_s / exact_s
    print(
        f"ratio ANN / exact = {ratio:.4f} (1/{1 / ratio:.1f}); goal <= 1/20: {'met' if ratio <= 1 / 20 else 'MISSED'}"
    )
    recall = len(ann_set & reachable) / max(1, len(reachable))
    print(f"planted recall {recall:.4f}; goal >= 0.99: {'met' if recall >= 0.99 else 'MISSED'}")


if __name__ == "__main__":
    main()
