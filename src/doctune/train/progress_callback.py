"""Training progress in the workspace (see :mod:`doctune.progress`): optimizer steps out of ``max_steps``."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from doctune.progress import ProgressBar, progress_bar


class WorkspaceProgressCallback(TrainerCallback):
    """Reports the optimizer steps of a run (and its last logged loss) as a progress bar whose terminal display is
    off: transformers draws its own."""

    def __init__(self, desc: str = "train"):
        self.desc = desc
        self.bar: ProgressBar | None = None
        self.loss: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._close()
        self.bar = progress_bar(total=state.max_steps, desc=self.desc, unit="step", disable=True)
        if state.global_step:  # resumed from a checkpoint
            self.bar.update(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is None:
            return
        if self.loss is not None:
            self.bar.set_postfix(loss=f"{self.loss:.4g}", refresh=False)
        if state.global_step > self.bar.n:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and isinstance(logs.get("loss"), int | float):
            self.loss = float(logs["loss"])

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            if state.global_step > self.bar.n:
                self.bar.update(state.global_step - self.bar.n)
            if state.global_step < state.max_steps:  # stopped early: the run still ended as it should
                self.bar.total = state.global_step
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
