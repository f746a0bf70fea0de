"""Benchmark doctune's chunker against semchunk on the same corpus, in the same run.

    python bench/chunk.py [--min-chars 400] [--max-chars 1500] [--repeat 3]

Corpus: every ``*.md`` / ``*.txt`` file under ``examples/``; when those hold fewer than 500k characters, also the
``*.md`` files of ``../shared/corpus`` (if that folder exists); when there is still nothing, the repository's own
markdown and Python files. Each file is chunked as its own document.

semchunk runs as ``semchunk.chunkerify(len, chunk_size=max_chars)``: characters as tokens, the same upper bound.
Its token-count memo is global and would carry over between repeats, so it is cleared before every repeat.
Times are the best of ``--repeat`` runs (``time.perf_counter``); the ratio compares the two in this run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from doctune.chunking import chunk_text  # noqa: E402
from doctune.config import ChunkConfig  # noqa: E402

EXAMPLES = REPO / "examples"
SHARED_CORPUS = REPO.parent / "shared" / "corpus"
SMALL_CORPUS_CHARS = 500_000

Spans = list[tuple[int, int]]


def load_corpus() -> list[tuple[str, str]]:
    """``(name, text)`` of every document of the benchmark corpus (see the module docstring)."""
    files = sorted(p for p in EXAMPLES.rglob("*") if p.is_file() and p.suffix.lower() in (".md", ".txt"))
    docs = [(str(p.relative_to(REPO)), p.read_text(encoding="utf-8", errors="replace")) for p in files]
    if sum(len(t) for _, t in docs) < SMALL_CORPUS_CHARS and SHARED_CORPUS.is_dir():
        docs += [(str(p), p.read_text(encoding="utf-8", errors="replace")) for p in sorted(SHARED_CORPUS.glob("*.md"))]
    if not docs:
        own = sorted([*REPO.glob("*.md"), *(REPO / "src").rglob("*.py")])
        docs = [(str(p.relative_to(REPO)), p.read_text(encoding="utf-8")) for p in own]
    return [(name, text) for name, text in docs if text.strip()]


def run_doctune(texts: list[str], cfg: ChunkConfig) -> list[Spans]:
    return [[(c.start, c.end) for c in chunk_text(t, cfg)] for t in texts]


def make_semchunk(max_chars: int) -> Callable[[list[str]], list[Spans]]:
    import semchunk

    def run(texts: list[str]) -> list[Spans]:
        memo = getattr(getattr(semchunk, "semchunk", None), "_memoized_token_counters", None)
        if memo is not None:
            memo.clear()  # no token counts carried over from an earlier repeat
        chunker = semchunk.chunkerify(len, chunk_size=max_chars)
        return [chunker(t, offsets=True)[1] for t in texts]

    return run


def best_time(fn: Callable[[], list[Spans]], repeat: int) -> tuple[float, list[Spans]]:
    best, result = float("inf"), []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def describe(name: str, seconds: float, n_chars: int, spans: list[Spans], min_chars: int, max_chars: int) -> str:
    sizes = [e - s for doc in spans for s, e in doc]
    n = len(sizes)
    short = sum(size < min_chars for size in sizes)
    # Short chunks that are not the last of their document (the last one may be short by nature).
    short_inner = sum(e - s < min_chars for doc in spans for s, e in doc[:-1])
    over = sum(size > max_chars for size in sizes)
    mean = statistics.fmean(sizes) if sizes else 0.0
    return (
        f"{name:<9} {seconds * 1000:9.1f} ms  {n_chars / seconds / 1e6:7.2f} M chars/s  {n:6d} chunks  "
        f"mean {mean:6.0f}  below min {short / max(n, 1):6.1%} ({short}; {short_inner} not last in doc)  "
        f"over max {over}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-chars", type=int, default=400)
    parser.add_argument("--max-chars", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cfg = ChunkConfig(min_chars=args.min_chars, max_chars=args.max_chars)

    corpus = load_corpus()
    texts = [t for _, t in corpus]
    n_chars = sum(len(t) for t in texts)
    print(f"corpus: {len(texts)} documents, {n_chars:,} chars")
    for name, text in corpus:
        print(f"  {len(text):9,d}  {name}")
    print(f"min_chars={cfg.min_chars} max_chars={cfg.max_chars} repeat={args.repeat} (best of)")

    t_doc, doc_spans = best_time(lambda: run_doctune(texts, cfg), args.repeat)
    semchunk_run = make_semchunk(cfg.max_chars)
    t_sem, sem_spans = best_time(lambda: semchunk_run(texts), args.repeat)

    print(describe("doctune", t_doc, n_chars, doc_spans, cfg.min_chars, cfg.max_chars))
    print(describe("semchunk", t_sem, n_chars, sem_spans, cfg.min_chars, cfg.max_chars))
    print(f"speed ratio doctune/semchunk: {t_sem / t_doc:.2f}x (chars/s of doctune divided by chars/s of semchunk)")
    n_doc, n_sem = sum(map(len, doc_spans)), sum(map(len, sem_spans))
    print(f"chunk count ratio doctune/semchunk: {n_doc / max(n_sem, 1):.2f}")


if __name__ == "__main__":
    main()
