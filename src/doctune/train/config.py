"""The ``train:`` section: fine-tuning the student with LoRA (or fully) on the curated dataset."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: the attention and MLP projections of Llama-style models (SmolLM2, Llama, Qwen, Mistral)
DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TrainConfig(BaseModel):
    """Supervised fine-tuning of the student on the train split, with eval loss on the eval splits."""

    model_config = ConfigDict(extra="forbid", validate_default=True, coerce_numbers_to_str=True)

    base_model: str | None = Field(
        None,
        description="Model to fine-tune: a local Hugging Face folder or a packaged model name (SmolLM2-135M-Instruct, "
        "gemma3-270m); none: models.student's folder when its backend is transformers, else the embedded "
        "SmolLM2-135M-Instruct.",
    )
    full_finetune: bool = Field(False, description="Train every weight instead of a LoRA adapter.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (the update is scaled by alpha / rank).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TARGET_MODULES),
        min_length=1,
        description='Module names that get LoRA adapters; ["all-linear"] targets every linear layer but the head.',
    )
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    lr_scheduler: str = Field("linear", description="transformers scheduler name: linear, cosine, constant, ...")
    warmup_steps: int = Field(0, ge=0, description="Steps of linear warm-up to the peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    num_epochs: float = Field(3.0, gt=0, description="Passes over the train split (ignored when max_steps is set).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps; overrides num_epochs.")
    per_device_batch_size: int = Field(8, ge=1, description="Examples per forward pass.")
    gradient_accumulation: int = Field(1, ge=1, description="Forward passes per optimizer step.")
    max_length: int = Field(512, ge=16, description="Longest tokenized example; longer ones are cut at the end.")
    packing: bool = Field(
        False, description="Pack several examples into sequences of max_length (best-fit decreasing, no padding)."
    )
    padding_free: bool = Field(
        True,
        description="Without packing: concatenate each batch into one sequence (no pad tokens; attention stays "
        "within each example through position ids).",
    )
    seed: int = Field(0, description="Seed of weight init, shuffling and dropout.")
    system_prompt: str | None = Field(
        None,
        description="System message of every example; none: export.system_prompt; empty: no system message "
        "(the chat template may then add its own default).",
    )
    eval_splits: list[str] = Field(
        default_factory=lambda: ["eval", "rephrased_eval"],
        description="Dataset splits whose loss is measured during training (missing or empty ones are skipped).",
    )
    eval_steps: int | None = Field(
        50, ge=1, description="Evaluate every this many steps; none: only once at the end of training."
    )
    early_stopping_patience: int | None = Field(
        None,
        ge=1,
        description="Stop when the loss on the first eval split has not improved for this many evaluations "
        "(the best checkpoint is kept); none: off.",
    )
    save_steps: int = Field(50, ge=1, description="Write a resumable checkpoint every this many steps.")
    save_total_limit: int | None = Field(2, ge=1, description="Keep at most this many checkpoints; none: all.")
    logging_steps: int = Field(
        1, ge=1, description="Log loss, learning rate, grad norm and tokens/s every this many steps."
    )
    tracking: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=lambda: ["tensorboard"],
        description="Where metrics go besides log_history.json and loss.png in the run folder: tensorboard "
        "(<run>/tensorboard), mlflow (local SQLite store <workspace>/mlflow/mlflow.db unless mlflow_tracking_uri), "
        "wandb (online with an API key, else offline); a name or a list; none or []: nowhere else.",
    )
    experiment: str | None = Field(None, description="MLflow experiment and W&B project; none: the project name.")
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (http(s)://server, sqlite:///file, databricks); none: the workspace's SQLite "
        "store. Credentials go in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN.",
    )
    wandb_mode: Literal["online", "offline"] | None = Field(
        None,
        description="online: log to the W&B server (needs WANDB_API_KEY or `wandb login`); none: WANDB_MODE, else "
        "offline (upload later with `wandb sync <run>/train/wandb/offline-run-*`). Never online unless set.",
    )
    wandb_entity: str | None = Field(None, description="W&B team or user; none: the key's default entity.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="auto: bf16 on a CUDA GPU that supports it, else fp32; bf16 on CPU is autocast, faster only "
        "with long batches on CPUs with AMX/AVX512-BF16 (see bench/train.py).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available, else CPU.")
    processes: int = Field(
        1,
        ge=1,
        description="Data-parallel training processes. Above 1, `doctune train` runs its training in that many "
        "processes through `accelerate launch` (DDP: one process per GPU, NCCL; on CPU, gloo), each on its own "
        "share of every batch: the global batch is per_device_batch_size x gradient_accumulation x processes.",
    )
    accelerate_config: str | None = Field(
        None,
        description="An `accelerate config` YAML file for the launch when processes > 1, e.g. FSDP on GPUs "
        "(examples/accelerate_fsdp.yaml); processes still sets the process count. None: plain DDP.",
    )

    @field_validator("tracking", mode="before")
    @classmethod
    def _tracking_list(cls, value: object) -> object:
        if value is None or value == "none":
            return []
        return [value] if isinstance(value, str) else value

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _no_credentials_in_uri(cls, value: str | None) -> str | None:
        if value and re.match(r"^[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@", value, re.IGNORECASE):
            raise ValueError(
                "mlflow_tracking_uri must not hold a password (it would be saved with the run): set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead"
            )
        return value

    @model_validator(mode="after")
    def _early_stopping_needs_aligned_saves(self) -> TrainConfig:
        if self.early_stopping_patience is not None:
            if self.eval_steps is None:
                raise ValueError("early_stopping_patience needs eval_steps")
            if self.save_steps % self.eval_steps:
                raise ValueError(
                    f"early_stopping_patience needs save_steps ({self.save_steps}) to be a multiple of "
                    f"eval_steps ({self.eval_steps}) so that the best checkpoint is on disk"
                )
        return self
