"""Write the synthetic Mastodon account of the personal demo (examples/personal.yaml) and print its ceiling.

    .venv/bin/python scripts/synthetic_account.py --out examples/personal/ --seed 0

Writes the account export zip, feed.json, feed_unseen.json and truth.json (the preference process, every feed
post's like probability and label); the same seed gives byte-identical files. The process is described in
src/doctune/testing/synthetic_account.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from doctune.testing.synthetic_account import generate_account


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("examples/personal"), help="Folder to write into.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of every random draw.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = generate_account(args.out, seed=args.seed)
    except OSError as exc:
        print(f"error: synthetic_account: {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for name, path in summary.files.items():
        print(f"{name}: {path} ({path.stat().st_size / 1024:.0f} KiB)")
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
