"""Fine-tuning the student on the curated dataset (TRL ``SFTTrainer`` + PEFT LoRA)."""

from doctune.train.config import TrainConfig

__all__ = ["TrainConfig"]
