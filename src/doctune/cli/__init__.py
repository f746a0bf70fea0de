"""The ``doctune`` command line: parses arguments and calls library functions, nothing more.

One module per command group; importing them registers their commands on ``app``."""

import os

from doctune.cli import (  # noqa: F401  (registration)
    characters,
    converse,
    core,
    curate,
    generate,
    models,
    rank,
    review,
    search,
    serve,
    train,
)
from doctune.cli.common import app

#: usage reporting of the libraries doctune runs, switched off for every command (a value the user set wins)
TELEMETRY_OFF: dict[str, str] = {
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub, and through it transformers, datasets, sentence-transformers
    "DO_NOT_TRACK": "true",  # the cross-tool convention (huggingface_hub and MLflow both read "true")
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow >= 3.2 reports usage by default
    "WANDB_ERROR_REPORTING": "false",  # W&B's crash reports (runs stay offline unless asked: train.wandb_mode)
    "RAY_USAGE_STATS_ENABLED": "0",
    "VLLM_NO_USAGE_STATS": "1",
}


def disable_telemetry() -> None:
    """Set :data:`TELEMETRY_OFF` in the environment (before any of those libraries is imported)."""
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)


def main() -> None:
    disable_telemetry()
    app()


__all__ = ["TELEMETRY_OFF", "app", "disable_telemetry", "main"]
