"""Precision/recall of the grounding verifiers on the labelled pairs in src/doctune/data/grounding_pairs.jsonl.

Usage: ``python bench/grounding.py [--every N] [--limit N] [--no-llm] [--errors]``. The LLM verifier runs the embedded model
(backend ``local``) through a call cache in the temp dir (``doctune-grounding-bench``), so reruns are free.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from doctune.config import ModelSpec
from doctune.data import grounding_pairs
from doctune.grounding import DeterministicVerifier, GroundingVerifier, LLMVerifier, measure
from doctune.llm import LLMClient, create_backend
from doctune.llm.cache import CallCache

ROOT = Path(__file__).resolve().parents[1]


def line(result: dict, seconds: float) -> str:
    return (
        f"{result['verifier']:<13} n={result['n']} precision={result['precision']:.3f} recall={result['recall']:.3f} "
        f"f1={result['f1']:.3f} accuracy={result['accuracy']:.3f} "
        f"tp={result['tp']} fp={result['fp']} tn={result['tn']} fn={result['fn']} "
        f"reasons={json.dumps(result['reasons'], sort_keys=True)} ({seconds:.1f}s)"
    )


def run(verifier: GroundingVerifier, pairs: list[dict], show_errors: bool) -> None:
    start = time.perf_counter()
    result = measure(verifier, pairs)
    print(line(result, time.perf_counter() - start), flush=True)
    if show_errors:
        for error in result["errors"]:
            print(f"    wrong: {error['id']} label={error['label']} reasons={error['reasons']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    parser.add_argument("--every", type=int, default=1, help="only every Nth pair (a mix of both labels)")
    parser.add_argument("--no-llm", action="store_true", help="skip the LLM verifier")
    parser.add_argument("--errors", action="store_true", help="list the misjudged pairs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pairs = list(grounding_pairs())
    pairs = pairs[:: max(1, args.every)]
    pairs = pairs[: args.limit] if args.limit else pairs
    run(DeterministicVerifier(), pairs, args.errors)
    if not args.no_llm:
        cache_dir = Path(tempfile.gettempdir()) / "doctune-grounding-bench"
        cache_dir.mkdir(parents=True, exist_ok=True)
        client = LLMClient(create_backend(ModelSpec(backend="local")), CallCache(cache_dir / "calls.sqlite"))
        run(LLMVerifier(client), pairs, args.errors)


if __name__ == "__main__":
    main()
