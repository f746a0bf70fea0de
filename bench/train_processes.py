"""Time the same training steps in one process and in several (DDP through accelerate), on CPU by default.

    python bench/train_processes.py [--processes 2] [--examples 40] [--batch 2] [--device cpu]

Both runs train a LoRA adapter on the embedded SmolLM2-135M-Instruct for one epoch over ``--examples`` short
question/answer chats with the same global batch: one process with ``--batch x --processes`` examples per step,
``--processes`` processes with ``--batch`` each, so both take the same optimizer steps. Printed per run: the wall time
of :func:`doctune.train.trainer.train` (process start, model load and checkpoint included), the Trainer's
``train_runtime``, real tokens per second of step time (summed over the processes), and the loss. On CPU each of N
processes gets cores / N threads. The load average is printed first: other work on the machine skews the result.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from doctune.llm.hf import embedded_safetensors_dir  # noqa: E402
from doctune.train.config import TrainConfig  # noqa: E402
from doctune.train.data import chat_messages  # noqa: E402
from doctune.train.trainer import train  # noqa: E402

log = logging.getLogger("bench.train_processes")

FACTS = [
    ("What colour is the zorblat fruit?", "The zorblat fruit is bright purple."),
    ("Where does the zorblat tree grow?", "The zorblat tree grows on the slopes of Mount Kelva."),
    ("How tall is a zorblat tree?", "A zorblat tree grows up to twelve metres tall."),
    ("When is the zorblat harvest?", "The zorblat harvest takes place every October."),
    ("What does a zorblat taste like?", "A zorblat tastes like pear and cinnamon."),
    ("Who first described the zorblat?", "The botanist Ilse Marrow first described the zorblat in 1871."),
    ("How many seeds does a zorblat have?", "A zorblat has exactly seven seeds."),
    ("What is zorblat wood used for?", "Zorblat wood is used to build violins."),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--batch", type=int, default=2, help="examples per process and step")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    examples = [{"messages": chat_messages(*FACTS[i % len(FACTS)], "Answer briefly.")} for i in range(opts.examples)]
    model = embedded_safetensors_dir()
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}", flush=True)
    for processes in (1, opts.processes):
        cfg = TrainConfig(
            processes=processes,
            per_device_batch_size=opts.batch * opts.processes // processes,
            num_epochs=1,
            max_length=128,
            lora_r=8,
            learning_rate=1e-3,
            eval_steps=None,
            save_steps=100_000,
            tracking=[],
            device=opts.device,
        )
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = train(cfg, model, examples, {}, Path(tmp) / "run", progress=False)
            wall = time.perf_counter() - started
            history = json.loads((Path(tmp) / "run" / "log_history.json").read_text())
        runtime = next(e["train_runtime"] for e in history if "train_runtime" in e)
        print(
            f"processes {processes}: {result.steps} steps of {result.global_batch_size} examples, wall {wall:.1f} s, "
            f"train_runtime {runtime:.1f} s, {result.tokens_per_second:.1f} tokens/s, "
            f"loss {result.initial_loss:.3f} -> {result.final_loss:.3f}; load average now {os.getloadavg()[0]:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
