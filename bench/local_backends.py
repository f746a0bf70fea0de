"""Which engine should run the embedded model? llama.cpp (GGUF, Q4_1) vs transformers (safetensors, fp32).

Runs the same summarisation prompts through both, greedy, and prints prompt and generation
throughput and their ratios measured in this one run. Usage: python bench/local_backends.py [--prompts 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from doctune.config import ModelSpec
from doctune.llm import CallParams, Message, create_backend
from doctune.llm.hf import embedded_safetensors_dir

ROOT = Path(__file__).resolve().parent.parent


def prompts(n: int, chars: int = 2400) -> list[list[Message]]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").rglob("*.md"))]
    corpus = "\n\n".join(texts) or ("The quick brown fox jumps over the lazy dog. " * 400)
    return [
        [
            Message(role="system", content="You write short, factual summaries."),
            Message(
                role="user",
                content=f"Text:\n{corpus[i * chars : (i + 1) * chars]}\n\nSummarize this text in 3 sentences.",
            ),
        ]
        for i in range(n)
    ]


def measure(backend_name: str, batch: list[list[Message]], max_tokens: int) -> dict[str, float]:
    """Prompt-only calls (max_tokens=1) on every prompt first, then full calls in the same order, so
    llama.cpp's prefix cache never reuses a prompt; generation time = full call - prompt-only call."""
    backend = create_backend(ModelSpec(backend=backend_name))
    start = time.perf_counter()
    backend.complete([Message(role="user", content="Hi")], CallParams(max_tokens=1))  # load
    load_s = time.perf_counter() - start
    prompt_only = [backend.complete(msgs, CallParams(max_tokens=1)) for msgs in batch]
    full = [backend.complete(msgs, CallParams(max_tokens=max_tokens)) for msgs in batch]
    backend.close()
    prompt_tokens = sum(c.prompt_tokens for c in prompt_only)
    prompt_s = sum(c.latency_s for c in prompt_only)
    gen_tokens = sum(c.completion_tokens - 1 for c in full)
    gen_s = sum(f.latency_s - p.latency_s for f, p in zip(full, prompt_only, strict=True))
    return {
        "load_s": load_s,
        "prompt_tok_s": prompt_tokens / prompt_s,
        "gen_tok_s": gen_tokens / gen_s,
        "gen_tokens": gen_tokens,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args()
    embedded_safetensors_dir()  # one-time conversion is not part of the comparison
    batch = prompts(args.prompts)
    results = {name: measure(name, batch, args.max_tokens) for name in ("local", "transformers")}
    for name, r in results.items():
        print(
            f"{name:13s} load {r['load_s']:.2f}s  prompt {r['prompt_tok_s']:.0f} tok/s  "
            f"generation {r['gen_tok_s']:.1f} tok/s ({r['gen_tokens']:.0f} tokens)"
        )
    ll, hf = results["local"], results["transformers"]
    print(f"prompt throughput, llama.cpp / transformers: {ll['prompt_tok_s'] / hf['prompt_tok_s']:.2f}x")
    print(f"generation throughput, llama.cpp / transformers: {ll['gen_tok_s'] / hf['gen_tok_s']:.2f}x")


if __name__ == "__main__":
    main()
