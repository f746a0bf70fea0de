"""Benchmark a 4-way conversation against a single-character chat on the same base: peak memory and s/turn.

    python bench/converse.py [--config examples/characters.yaml] [--turns 8] [--max-tokens 32]

Needs a workspace with character adapters (``doctune run examples/characters.yaml`` makes one). Each side runs in
its own process, so its peak resident memory (``ru_maxrss``) is its own:

* single: a chat with HAMLET (the user's lines scripted), ``--turns`` replies of HAMLET's adapter;
* four: HAMLET, OPHELIA, MACBETH and LADY MACBETH, ``--turns`` turns round robin, each its own adapter over the
  one loaded base (PEFT ``set_adapter`` per turn).

Both with the same switches (retrieval and logit bias as configured), seed and reply length. The issue's bound:
the four-way peak memory at most 1.3x the single chat's. Seconds per turn: the mean latency of the model turns
(generation only; loading excluded), and the ratio four / single.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FOUR = ["HAMLET", "OPHELIA", "MACBETH", "LADY MACBETH"]
USER_LINES = [
    "Good morrow, my lord. How fares the court?",
    "What think you of the king?",
    "Is it true the ghost was seen upon the platform?",
    "Will you go to England?",
    "What do you read, my lord?",
    "Do you love Ophelia?",
    "Why are you in black?",
    "Farewell, my lord.",
]


def child(mode: str, config_path: str, turns: int, max_tokens: int) -> dict:
    from doctune.config_io import load_config
    from doctune.stages import converse
    from doctune.workspace import Workspace

    cfg = load_config(Path(config_path), [f"converse.max_tokens={max_tokens}", "converse.stop_on_repeat=false"])
    ws = Workspace(Path(cfg.workspace))
    start = time.perf_counter()
    if mode == "single":
        lines = iter(USER_LINES * 4)
        result = converse.run_conversation(
            cfg, ws, ["HAMLET"], turns=2 * turns, join=True, read_line=lambda _: next(lines), write=None
        )
    else:
        result = converse.run_conversation(cfg, ws, FOUR, turns=turns, write=None)
    wall = time.perf_counter() - start
    from doctune.converse.log import read_conversation

    record = read_conversation(ws.root, result.stats["id"])
    model_turns = [t for t in record.turns if not t.user]
    latency = [t.latency_s for t in model_turns]
    tokens = sum(t.completion_tokens for t in model_turns)
    return {
        "mode": mode,
        "turns": len(model_turns),
        "adapters": sorted({t.adapter for t in model_turns if t.adapter}),
        "s_per_turn": sum(latency) / max(len(latency), 1),
        "tokens_per_s": tokens / max(sum(latency), 1e-9),
        "wall_s": wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "examples" / "characters.yaml"))
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--child", choices=["single", "four"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.config, args.turns, args.max_tokens)))
        return
    rows = {}
    for mode in ("single", "four"):
        cmd = [sys.executable, __file__, "--child", mode, "--config", args.config, "--turns", str(args.turns)]
        cmd += ["--max-tokens", str(args.max_tokens)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if out.returncode != 0:
            sys.exit(f"bench/converse.py: the {mode} run failed:\n{out.stderr[-2000:]}")
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'run':<8} {'turns':>5} {'adapters':>8} {'s/turn':>8} {'tok/s':>7} {'peak MiB':>9}")
    for mode, r in rows.items():
        print(
            f"{mode:<8} {r['turns']:>5} {len(r['adapters']):>8} {r['s_per_turn']:>8.2f} {r['tokens_per_s']:>7.1f} "
            f"{r['peak_rss_mib']:>9.0f}"
        )
    memory = rows["four"]["peak_rss_mib"] / rows["single"]["peak_rss_mib"]
    speed = rows["four"]["s_per_turn"] / rows["single"]["s_per_turn"]
    verdict = "within" if memory <= 1.3 else "OVER"
    print(f"peak memory four / single: {memory:.2f}x ({verdict} the 1.3x bound); s/turn four / single: {speed:.2f}x")


if __name__ == "__main__":
    main()
