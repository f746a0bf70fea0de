"""Throughput and padding accounting, and the loss-curve plot of a training run."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)


@dataclass
class TokenCounter:
    """Tokens seen by training steps: real (non-pad) tokens, padded slots, trained (label) tokens, step time."""

    real_tokens: int = 0
    slots: int = 0
    label_tokens: int = 0
    step_time_s: float = 0.0

    def add_batch(self, batch: dict[str, Any]) -> None:
        """Count one micro-batch as the model sees it (padded or flattened)."""
        input_ids = batch["input_ids"]
        self.slots += int(input_ids.numel())
        mask = batch.get("attention_mask")
        self.real_tokens += int(mask.sum()) if mask is not None else int(input_ids.numel())
        labels = batch.get("labels")
        if labels is not None:
            self.label_tokens += int((labels != -100).sum())

    @property
    def padding_share(self) -> float:
        """Share of the positions computed that are padding."""
        return 1.0 - self.real_tokens / self.slots if self.slots else 0.0

    @property
    def tokens_per_second(self) -> float:
        """Real tokens per second of training-step time (forward, backward, optimizer; not eval or saving)."""
        return self.real_tokens / self.step_time_s if self.step_time_s else 0.0


class ThroughputCallback(TrainerCallback):
    """Times every optimizer step and adds ``tokens_per_second`` and ``padding_share`` to each log entry.

    Place it before the reporting callbacks so that TensorBoard / MLflow / W&B receive the added values.
    """

    def __init__(self, counter: TokenCounter):
        self.counter = counter
        self._started: float | None = None
        self._since_log = (0, 0.0)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _synchronize(args)
        self._started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._started is not None:
            _synchronize(args)  # CUDA kernels run asynchronously: wait for the step's before reading the clock
            self.counter.step_time_s += time.perf_counter() - self._started
            self._started = None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs is None or "loss" not in logs:
            return
        tokens0, time0 = self._since_log
        tokens, elapsed = self.counter.real_tokens - tokens0, self.counter.step_time_s - time0
        self._since_log = (self.counter.real_tokens, self.counter.step_time_s)
        padding = self.counter.padding_share
        if getattr(args, "world_size", 1) > 1:  # every process logs at the same step: sum their tokens
            from doctune.train.distributed import all_reduce

            tokens, real, slots = all_reduce([tokens, self.counter.real_tokens, self.counter.slots], "sum", args.device)
            elapsed = all_reduce([elapsed], "max", args.device)[0]
            padding = 1.0 - real / slots if slots else 0.0
        extra = {"padding_share": round(padding, 4)}
        if elapsed > 0:
            extra["tokens_per_second"] = round(tokens / elapsed, 2)
        logs.update(extra)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(extra)


def _synchronize(args: Any) -> None:
    device = getattr(args, "device", None)
    if getattr(device, "type", None) == "cuda":
        import torch

        torch.cuda.synchronize(device)


def plot_losses(log_history: list[dict[str, Any]], path: Path, title: str = "training loss") -> Path | None:
    """Write train loss and every eval loss against the step as a PNG; None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list[int], list[float]]] = {}
    for entry in log_history:
        step = entry.get("step")
        for key, value in entry.items():
            if step is None or not (key == "loss" or (key.startswith("eval_") and key.endswith("loss"))):
                continue
            steps, values = series.setdefault("train" if key == "loss" else key.removeprefix("eval_"), ([], []))
            steps.append(int(step))
            values.append(float(value))
    if not series:
        log.warning("no loss was logged: no plot written")
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (steps, values) in series.items():
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
