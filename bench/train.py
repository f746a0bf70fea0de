"""Benchmark doctune's training step against a plain TRL ``SFTTrainer`` on the same model and data, in one run.

    python bench/train.py [--steps 12] [--batch 8] [--examples 64] [--max-length 256] [--bf16]

Data (seeded): ``--examples`` synthetic question/answer pairs whose lengths vary widely (as curated items do),
rendered as ``[system, user, assistant]`` conversations. Model: the embedded SmolLM2-135M-Instruct.

* baseline: ``SFTTrainer`` with TRL's defaults (``SFTConfig`` defaults: padded batches, gradient checkpointing,
  bf16 autocast where supported, completion-only loss from a conversational prompt/completion dataset); only
  steps, batch size, learning rate, max length and the LoRA adapter are set, the same as doctune's.
* doctune: :func:`doctune.train.trainer.train` with the same settings (padding-free batches, no gradient
  checkpointing, fp32 on CPU; ``--bf16`` adds a doctune run with bf16 autocast).

Both are timed the same way: real (non-pad) tokens of the training micro-batches divided by the time spent
inside optimizer steps (eval and checkpointing excluded). The padding share is padded positions / positions
computed, counted on the batches the model received.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from doctune.llm.hf import embedded_safetensors_dir  # noqa: E402
from doctune.train.config import TrainConfig  # noqa: E402
from doctune.train.data import chat_messages  # noqa: E402
from doctune.train.metrics import ThroughputCallback, TokenCounter  # noqa: E402
from doctune.train.trainer import counting_sft_trainer, train  # noqa: E402

WORDS = [
    "river",
    "valley",
    "mountain",
    "harvest",
    "seed",
    "violin",
    "goat",
    "century",
    "botanist",
    "colour",
    "slope",
    "fruit",
    "wood",
    "cinnamon",
]
SYSTEM = "You are a helpful assistant. Answer the question accurately and concisely."


def make_examples(n: int, seed: int) -> list[dict]:
    """Conversations with questions of 5-40 words and answers of 3-120 words."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        q = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))
        a = " ".join(rng.choice(WORDS) for _ in range(int(rng.paretovariate(1.2) * 3) % 120 + 3))
        out.append({"messages": chat_messages(f"Question {i}: {q}?", f"{a}.", SYSTEM)})
    return out


def run_baseline(examples: list[dict], cfg: TrainConfig, out: Path) -> TokenCounter:
    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    model_dir = embedded_safetensors_dir()
    data = datasets.Dataset.from_list(
        [{"prompt": e["messages"][:-1], "completion": e["messages"][-1:]} for e in examples]
    )
    args = SFTConfig(
        output_dir=str(out),
        max_steps=cfg.max_steps or 10,
        per_device_train_batch_size=cfg.per_device_batch_size,
        learning_rate=cfg.learning_rate,
        max_length=cfg.max_length,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    counter = TokenCounter()
    trainer = counting_sft_trainer(
        counter,
        model=AutoModelForCausalLM.from_pretrained(str(model_dir)),
        args=args,
        train_dataset=data,
        processing_class=AutoTokenizer.from_pretrained(str(model_dir)),
        peft_config=LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=cfg.target_modules),
        callbacks=[ThroughputCallback(counter)],
    )
    trainer.train()
    return counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", action="store_true", help="also time doctune with bf16 autocast")
    ns = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    examples = make_examples(ns.examples, ns.seed)
    common = {
        "max_steps": ns.steps,
        "per_device_batch_size": ns.batch,
        "max_length": ns.max_length,
        "learning_rate": 2e-4,
        "save_steps": 10**6,
        "logging_steps": 10**6,
        "tracking": "none",
        "eval_steps": None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        base = run_baseline(examples, TrainConfig(**common), Path(tmp) / "baseline")
        results = {"trl-default": (base.tokens_per_second, base.padding_share)}
        for precision in ["fp32", "bf16"] if ns.bf16 else ["fp32"]:
            cfg = TrainConfig(**common, precision=precision)
            r = train(cfg, embedded_safetensors_dir(), examples, {}, Path(tmp) / precision, progress=False)
            results[f"doctune-{precision}"] = (r.tokens_per_second, r.padding_share)

    print(f"{ns.examples} examples, {ns.steps} steps of batch {ns.batch}, max_length {ns.max_length}, LoRA")
    print(f"{'run':<14} {'tokens/s':>9} {'padding':>8}")
    for name, (tps, pad) in results.items():
        print(f"{name:<14} {tps:>9.1f} {pad:>7.1%}")
    ratio = results["doctune-fp32"][0] / results["trl-default"][0]
    print(f"speed-up doctune-fp32 / trl-default: {ratio:.2f}x")


if __name__ == "__main__":
    main()
