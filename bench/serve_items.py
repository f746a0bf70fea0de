"""Benchmark the workbench's item index: a filtered page of 100k items, served through the app.

    python bench/serve_items.py [--n 100000] [--requests 20] [--target-ms 200]

Writes ``n`` synthetic QA items (``qa``) and a curated ``dataset`` (train / eval / mirror splits, clusters) into a
temporary workspace with the real ``write_artifact``, builds the app, warms the item index once (that build is
timed and reported: it reads the artifacts and scores every item with the verifier's answer support), then times
``--requests`` filtered page requests of each kind through ``TestClient``: the JSON ``/api/items`` and the HTML
``/browse``, with several filters and a full-text search. Prints the median and p95 per kind and their ratio to the
target (below 1.0 is within it).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from doctune.config import DoctuneConfig  # noqa: E402
from doctune.records import Citation, DatasetItem, QAItem  # noqa: E402
from doctune.workspace import Workspace  # noqa: E402

WORDS = [
    "river",
    "sea",
    "mountain",
    "valley",
    "city",
    "bridge",
    "forest",
    "harbour",
    "castle",
    "island",
    "lake",
    "desert",
    "glacier",
    "canyon",
    "meadow",
    "village",
    "tower",
    "market",
    "temple",
    "garden",
    "storm",
    "winter",
    "summer",
    "north",
    "south",
    "east",
    "west",
    "ancient",
    "modern",
]
CATEGORIES = ("factual", "numeric", "definition", "procedure", "comparison")


def make_items(n: int, seed: int) -> list[QAItem]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        a, b, c, d = rng.sample(WORDS, 4)
        quote = f"The {a} near the {b} has {rng.randint(2, 900)} {c}s and a {d}."
        doc = f"doc{i % 200:03d}"
        chunk = f"{doc}-{i % 37:04d}"
        cite = Citation(quote=quote, doc_id=doc, chunk_id=chunk, char_start=0, char_end=len(quote), method="exact",
                        score=1.0)  # fmt: skip
        items.append(
            QAItem(
                item_id=f"item{i:07d}",
                kind="qa",
                unit_id=chunk,
                doc_ids=[doc],
                chunk_ids=[chunk],
                k=1,
                question=f"What does the {a} near the {b} have?",
                answer=f"It has {c}s and a {d}." if rng.random() < 0.7 else f"It has {rng.choice(WORDS)} plenty.",
                evaluation_criteria=f"Names the {c}s.",
                difficulty=rng.randint(1, 5),
                category=rng.choice(CATEGORIES),
                citations=[cite],
                citations_verified=True,
                model="bench",
            )
        )
    return items


def make_dataset(items: list[QAItem], seed: int) -> list[DatasetItem]:
    rng = random.Random(seed + 1)
    rows = []
    for item in items:
        cluster = rng.randint(0, 19)
        split = "eval" if rng.random() < 0.2 else "train"
        base = dict(item.model_dump(), source="qa", cluster=cluster, cluster_label=f"topic {cluster}")
        rows.append(DatasetItem(**base, split=split))
        if split == "train" and rng.random() < 0.02:
            rows.append(DatasetItem(**base, split="mirror"))
    return rows


def timed(client, url: str, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        reply = client.get(url)
        out.append((time.perf_counter() - start) * 1000)
        if reply.status_code != 200:
            raise SystemExit(f"{url}: HTTP {reply.status_code}: {reply.text[:300]}")
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=20, help="timed requests per URL")
    ap.add_argument("--target-ms", type=float, default=200.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from doctune.serve.app import create_app
    from doctune.serve.items import item_index

    with tempfile.TemporaryDirectory() as tmp:
        cfg = DoctuneConfig.model_validate({"workspace": tmp})
        ws = Workspace(tmp)
        start = time.perf_counter()
        items = make_items(args.n, args.seed)
        ws.start_run("generate qa", cfg).write_artifact("qa", items, QAItem)
        dataset = make_dataset(items, args.seed)
        ws.start_run("curate split", cfg).write_artifact("dataset", dataset, DatasetItem, inputs=["qa"])
        print(f"wrote {len(items):,} items and {len(dataset):,} dataset rows in {time.perf_counter() - start:.1f}s")

        app = create_app(ws, cfg)
        client = TestClient(app)
        start = time.perf_counter()
        index = item_index(app.state.ctx)
        print(f"index build (cold, once per artifact change): {time.perf_counter() - start:.2f}s "
              f"for {len(index.frame):,} items")  # fmt: skip
        urls = {
            "api": "/api/items?split=train&difficulty=3&q=river&page=5",
            "api by uncertainty": "/api/items?split=eval&category=numeric&order=uncertainty&page=2&per_page=100",
            "html": "/browse?split=train&difficulty=3&q=river&page=5",
            "html by uncertainty": "/browse?cluster=7&grounded=unknown&q=harbour&order=uncertainty&page=3",
        }
        total = client.get("/api/items?split=train&difficulty=3&q=river").json()["total"]
        print(f"filter split=train difficulty=3 q=river: {total:,} of {len(index.frame):,} items")
        print(f"{'request':<22}{'median ms':>11}{'p95 ms':>9}{'median/target':>15}{'p95/target':>12}")
        for name, url in urls.items():
            timed(client, url, 2)  # warm: templates compiled, caches filled
            ms = timed(client, url, args.requests)
            med, tail = statistics.median(ms), p95(ms)
            print(f"{name:<22}{med:>11.1f}{tail:>9.1f}{med / args.target_ms:>15.3f}{tail / args.target_ms:>12.3f}")


if __name__ == "__main__":
    main()
