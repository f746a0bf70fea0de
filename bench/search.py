"""Benchmark ``doctune search`` over 100k synthetic posts: index build, warm in-process queries, cold CLI.

    python bench/search.py [--n 100000] [--queries 20] [--embed-n 10000] [--max-embed-s 300] [--keep DIR]

Data (seeded): ``n`` posts written as a real ``posts`` artifact in a temporary workspace: sentences from a
topic vocabulary with rare tokens (codes, names), 1 in 10 with media alt text, 1 in 25 with a content warning,
1 in 50 in Japanese, every kind (post, reply, boost, like, bookmark, feed), dates over three years.

Measured in one run:

* the keyword index build (FTS5 + trigram table) over all ``n`` posts, and a second build (nothing changed: skipped);
* warm in-process queries (the index open, one untimed query first): median and p95 ms over ``--queries`` queries
  (words, phrases, prefixes, filters), and the ratio to the 100 ms target;
* the cold CLI: ``doctune search`` run once as a subprocess (interpreter start, imports, index open), wall time.

Embeddings with the real all-MiniLM-L6-v2 on this CPU: the rate is measured on 256 posts first; when embedding
all ``n`` is predicted to take more than ``--max-embed-s``, the hybrid figures (build, warm, cold CLI) are measured
on a workspace of the first ``--embed-n`` posts instead, and the output says so.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from doctune.config import DoctuneConfig  # noqa: E402
from doctune.records import Post  # noqa: E402
from doctune.stages.search import build_index, close_searchers, search  # noqa: E402
from doctune.workspace import Workspace  # noqa: E402

TARGET_MS = 100.0
TOPICS = {
    "cats": ["cat", "kitten", "purr", "litter", "vet", "whiskers", "nap", "sofa", "mouse"],
    "code": ["python", "rust", "compiler", "bug", "release", "merge", "review", "test", "refactor", "deploy"],
    "food": ["bread", "soup", "lentil", "croissant", "café", "recipe", "oven", "garlic", "tomato", "pasta"],
    "travel": ["train", "station", "Lyon", "airport", "delay", "ticket", "hostel", "map", "border", "ferry"],
    "music": ["concert", "guitar", "album", "vinyl", "chorus", "drummer", "festival", "playlist", "bass"],
    "politics": ["election", "vote", "council", "budget", "minister", "policy", "debate", "campaign"],
    "nature": ["heron", "river", "mountain", "ridge", "snow", "forest", "moss", "fox", "hike", "trail"],
}
FILLER = [
    "the",
    "a",
    "and",
    "of",
    "to",
    "in",
    "on",
    "with",
    "for",
    "at",
    "it",
    "was",
    "is",
    "this",
    "that",
    "today",
    "again",
    "finally",
    "really",
]
JAPANESE = ["東京タワーに行った", "京都の紅葉はとても美しい", "新しいカメラを買った", "雨の日は本を読む"]
KINDS = ["post"] * 5 + ["reply"] * 3 + ["boost", "like", "bookmark", "feed", "feed"]
QUERIES = [
    ("kitten vet", {}),
    ("compiler bug", {}),
    ('"lentil soup"', {}),
    ("train delay Lyon", {}),
    ("mountain", {"kind": "post"}),
    ("heron river", {"since": "2023-06-01"}),
    ("guitar*", {}),
    ("election budget", {"until": "2023-01-01"}),
    ("ZX-4417", {}),
    ("cafe croissant", {}),
    ("東京タワー", {}),
    ("紅葉", {}),
    ("release merge review", {"kind": ["reply", "post"]}),
    ("fox forest", {"mine": True}),
    ("(snow AND", {}),
    ("vinyl album festival", {}),
    ("minister", {"kind": "feed"}),
    ("refactor deploy", {}),
    ("moss trail hike", {}),
    ("garlic pasta tomato oven", {}),
]


def make_posts(n: int, seed: int) -> list[Post]:
    rng = random.Random(seed)
    names = list(TOPICS)
    posts = []
    for i in range(n):
        topic = TOPICS[rng.choice(names)]
        words = [rng.choice(topic) if rng.random() < 0.45 else rng.choice(FILLER) for _ in range(rng.randint(6, 40))]
        if rng.random() < 0.05:
            words.insert(rng.randrange(len(words)), f"ZX-{rng.randint(1000, 9999)}")
        text = " ".join(words).capitalize() + "."
        if i % 50 == 7:
            text = rng.choice(JAPANESE) + "。" + text
        kind = rng.choice(KINDS)
        day = rng.randrange(3 * 365)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1640995200 + day * 86400 + rng.randrange(86400)))
        posts.append(
            Post(
                post_id=f"mastodon:https://example.social/users/me/statuses/{i}",
                platform="mastodon",
                kind=kind,
                author="@me@example.social" if kind != "feed" else f"@user{rng.randrange(500)}@other.town",
                is_mine=kind != "feed",
                created_at=created,
                text=text,
                resolved=True,
                content_warning="spoilers" if i % 25 == 3 else "",
                media_alt=[f"A photo of a {rng.choice(TOPICS['nature'])} near the {rng.choice(TOPICS['nature'])}"]
                if i % 10 == 1
                else [],
                url=f"https://example.social/@me/{i}",
                source_file="outbox.json",
                locator=f"orderedItems[{i}]",
            )
        )
    return posts


def workspace(root: Path, posts: list[Post], embed: bool) -> tuple[DoctuneConfig, Workspace, float]:
    cfg = DoctuneConfig.model_validate({"workspace": str(root), "search": {"embed": embed}})
    ws = Workspace(root)
    t0 = time.perf_counter()
    ws.start_run("ingest", cfg).write_artifact("posts", posts, Post)
    return cfg, ws, time.perf_counter() - t0


def warm(cfg: DoctuneConfig, ws: Workspace, keyword_only: bool) -> tuple[float, float, int]:
    """(median ms, p95 ms, hits) of the query set, after one untimed query."""
    search(cfg, ws, "warm up", keyword_only=keyword_only)
    times, hits = [], 0
    for query, filters in QUERIES:
        t0 = time.perf_counter()
        hits += len(search(cfg, ws, query, keyword_only=keyword_only, **filters))
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, hits


def cold_cli(root: Path, query: str, keyword_only: bool) -> float:
    cmd = [str(Path(sys.executable).parent / "doctune"), "-q", "--workspace", str(root), "search", query, "--json"]
    cmd += ["--keyword-only"] if keyword_only else []
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"cold CLI failed: {done.stderr.strip()}")
    return wall


def report(label: str, median: float, p95: float, hits: int) -> None:
    print(
        f"  warm {label}: median {median:.1f} ms, p95 {p95:.1f} ms over {len(QUERIES)} queries ({hits} hits); "
        f"median/target {median / TARGET_MS:.2f}x, p95/target {p95 / TARGET_MS:.2f}x (target {TARGET_MS:.0f} ms)"
    )


def stand_in_hybrid(cfg: DoctuneConfig, ws: Workspace, real_index: Path, n: int) -> None:
    """Hybrid over all ``n`` posts without embedding them all: the real vectors of the embedded posts, repeated to
    ``n`` rows, stand in (a query's latency does not depend on which unit vectors it is compared with); the query
    itself is embedded by the real model, BM25 runs on the real ``n``-post index, then the fusion."""
    import numpy as np

    from doctune.stages.search import index_root, posts_sha256

    real = next(real_index.glob("vectors-*.npy"))
    ident = real.stem.rsplit("-", 1)[1]
    vectors = np.load(real)
    tiled = np.resize(vectors, (n, vectors.shape[1])).astype(np.float32)
    target = index_root(cfg, ws) / f"vectors-{posts_sha256(ws)[:16]}-{ident}.npy"
    np.save(target, tiled)
    close_searchers()
    hybrid_cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"embed": True})})
    print(f"hybrid over all {n:,} posts, the {vectors.shape[0]:,} real vectors repeated as stand-ins:")
    report(f"hybrid, {n:,} posts (stand-in vectors)", *warm(hybrid_cfg, ws, keyword_only=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=20, help="queries timed (the first N of the built-in set)")
    ap.add_argument("--embed-n", type=int, default=10_000, help="posts embedded when all n would take too long")
    ap.add_argument("--max-embed-s", type=float, default=300.0, help="predicted embedding time above which --embed-n")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="write the workspaces here and keep them (default: a temp folder)")
    args = ap.parse_args()
    del QUERIES[args.queries :]

    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        t0 = time.perf_counter()
        posts = make_posts(args.n, args.seed)
        print(f"{args.n:,} synthetic posts made in {time.perf_counter() - t0:.1f} s")
        cpus, load = os.cpu_count(), os.getloadavg()[0]
        print(f"machine: {cpus} CPUs, load average {load:.1f} at start (other processes slow every figure below)")
        root = base / "keyword"
        cfg, ws, t_write = workspace(root, posts, embed=False)
        print(f"posts artifact written in {t_write:.1f} s ({ws.artifact_path('posts').stat().st_size / 1e6:.1f} MB)")

        print(f"keyword only (FTS5 BM25), {args.n:,} posts:")
        t0 = time.perf_counter()
        built = build_index(cfg, ws)
        size = (root / "index" / "search.sqlite").stat().st_size / 1e6
        print(f"  index build {time.perf_counter() - t0:.1f} s ({size:.0f} MB; {built.counts['cjk_posts']} CJK posts)")
        t0 = time.perf_counter()
        assert not build_index(cfg, ws).stats["rebuilt"]
        print(f"  rebuild with unchanged posts: skipped in {(time.perf_counter() - t0) * 1000:.0f} ms")
        report("keyword", *warm(cfg, ws, keyword_only=True))
        cold_kw = cold_cli(root, "kitten vet", keyword_only=True)
        print(f"  cold CLI `doctune search --keyword-only` (one subprocess, wall): {cold_kw:.2f} s")

        from doctune.curate.embeddings import ModelSpec, create_embedder

        embedder = create_embedder(ModelSpec())
        sample = [p.text for p in posts[:256]]
        embedder.embed(sample[:8])  # the model load is not part of the rate
        t0 = time.perf_counter()
        embedder.embed(sample)
        rate = len(sample) / (time.perf_counter() - t0)
        predicted = args.n / rate
        n_embed = args.n if predicted <= args.max_embed_s else min(args.embed_n, args.n)
        why = (
            f"all {args.n:,} (predicted {predicted:.0f} s)"
            if n_embed == args.n
            else f"the first {n_embed:,} only: all {args.n:,} would take ~{predicted:.0f} s > {args.max_embed_s:.0f} s"
        )
        print(f"hybrid (BM25 + all-MiniLM-L6-v2 on CPU, {rate:.0f} posts/s): {why}")
        close_searchers()
        root_h = base / "hybrid"
        cfg_h, ws_h, _ = workspace(root_h, posts[:n_embed], embed=True)
        t0 = time.perf_counter()
        built = build_index(cfg_h, ws_h, progress=True)
        print(f"  index + vectors build {time.perf_counter() - t0:.1f} s ({built.counts['embedded now']:,} embedded)")
        t0 = time.perf_counter()
        again = build_index(cfg_h, ws_h)
        print(
            f"  second build: {again.counts['embedded now']} embedded, {(time.perf_counter() - t0) * 1000:.0f} ms "
            "(vectors keyed by the posts' sha256)"
        )
        report(f"hybrid, {n_embed:,} posts", *warm(cfg_h, ws_h, keyword_only=False))
        cold_h = cold_cli(root_h, "kitten vet", keyword_only=False)
        print(f"  cold CLI `doctune search` hybrid (one subprocess, wall, model load included): {cold_h:.2f} s")
        if n_embed < args.n:
            stand_in_hybrid(cfg, ws, root_h / cfg_h.search.index_dir, args.n)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        close_searchers()
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
