"""Supervised fine-tuning with TRL's ``SFTTrainer``: LoRA (PEFT) or full, CPU or CUDA, resumable.

Layout of ``output_dir`` after :func:`train`::

    checkpoint-<step>/      resumable checkpoints (every ``save_steps``; the last ``save_total_limit`` kept)
    tensorboard/            TensorBoard event files (loss, learning rate, grad norm, tokens/s, eval losses)
    wandb/                  the W&B run (with ``tracking: [wandb]``; MLflow's store is the workspace's)
    tracking.json           ids of the tracked runs, continued on resume (see :mod:`doctune.train.tracking`)
    adapter/ or model/      the LoRA adapter (or the full model) with the tokenizer
    train_config.json       the resolved train config, base model, device, processes and distributed backend
    log_history.json        every logged entry of the run
    metrics.json            the :class:`TrainResult` as JSON
    loss.png                train and eval loss against the step
    launch.log              the processes' output, when ``train.processes`` > 1 (see :mod:`doctune.train.distributed`)

With ``train.processes`` > 1 the run happens in that many processes (DDP through ``accelerate``); only rank 0 writes
these files, and token counts and throughput are summed over the processes.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from doctune.train.config import TrainConfig
from doctune.train.data import to_dataset, tokenize_examples
from doctune.train.distributed import (
    batch_note,
    distributed_backend,
    is_main_process,
    needs_launch,
    parallelism,
    sum_over_processes,
)
from doctune.train.metrics import ThroughputCallback, TokenCounter, plot_losses
from doctune.train.progress_callback import WorkspaceProgressCallback
from doctune.train.tracking import RunInfo, finish_trackers, open_trackers

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run did."""

    output_dir: str
    weights_dir: str = field(metadata={"doc": "output_dir/adapter (LoRA) or output_dir/model (full fine-tune)"})
    base_model: str
    device: str
    precision: str
    steps: int
    resumed_from_step: int | None
    initial_loss: float | None
    final_loss: float | None
    eval_losses: dict[str, float]
    tokens_per_second: float
    padding_share: float
    train_tokens: int
    label_tokens: int
    train_examples: int
    dropped_examples: int
    stopped_early: bool
    loss_plot: str | None
    tracking: dict[str, str] = field(default_factory=dict, metadata={"doc": "tracker -> where its run is"})
    processes: int = field(default=1, metadata={"doc": "data-parallel processes (world size)"})
    distributed_backend: str | None = field(default=None, metadata={"doc": "gloo, nccl...; None: one process"})
    global_batch_size: int = field(default=0, metadata={"doc": "examples per optimizer step, all processes"})
    parallelism: str | None = field(default=None, metadata={"doc": "ddp, fsdp... (what accelerate ran); None: one"})


def resolve_device(cfg: TrainConfig) -> tuple[str, str]:
    """(device, precision): CUDA with bf16 when available and not overridden, else CPU with fp32."""
    import torch

    cuda = torch.cuda.is_available() if cfg.device == "auto" else cfg.device == "cuda"
    device = "cuda" if cuda else "cpu"
    if cfg.precision != "auto":
        return device, cfg.precision
    return device, "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"


def _last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None


def _first(history: Sequence[Mapping[str, Any]], key: str, last: bool = False) -> float | None:
    values = [float(e[key]) for e in history if key in e]
    return (values[-1] if last else values[0]) if values else None


def _sft_args(
    cfg: TrainConfig, output_dir: Path, device: str, precision: str, eval_split: str | None, progress: bool
) -> Any:
    """TRL's ``SFTConfig`` for ``cfg``; ``eval_split``: the first non-empty eval split (none: no evaluation)."""
    from trl import SFTConfig

    early = cfg.early_stopping_patience is not None and eval_split is not None
    return SFTConfig(
        output_dir=str(output_dir),
        seed=cfg.seed,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.per_device_batch_size,
        per_device_eval_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation,
        activation_checkpointing=False,  # TRL's default (True) costs ~30% speed; small models don't need it
        # padding-free without packing does not truncate: the examples are cut to max_length above
        max_length=cfg.max_length if cfg.packing else None,
        packing=cfg.packing,
        padding_free=cfg.padding_free or cfg.packing,
        bf16=precision == "bf16",
        fp16=False,
        use_cpu=device == "cpu",
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="steps" if eval_split and cfg.eval_steps else "no",
        eval_steps=cfg.eval_steps,
        metric_for_best_model=f"eval_{eval_split}_loss" if early else None,
        greater_is_better=False if early else None,
        load_best_model_at_end=early,
        report_to="none",  # doctune's trackers are added as callbacks, after the throughput callback
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # with several processes: every LoRA (or full) weight gets a gradient
    )


def _peft_config(cfg: TrainConfig) -> Any:
    from peft import LoraConfig

    if cfg.full_finetune:
        return None
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules[0] if cfg.target_modules == ["all-linear"] else cfg.target_modules,
        task_type="CAUSAL_LM",
    )


def train(
    cfg: TrainConfig,
    base_model: str | Path,
    train_examples: Sequence[dict[str, Any]],
    eval_sets: Mapping[str, Sequence[dict[str, Any]]],
    output_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
    run_info: RunInfo | None = None,
    base_model_name: str | None = None,
) -> TrainResult:
    """Fine-tune ``base_model`` (a local HF folder) on conversational examples ``{"messages": [...]}``.

    ``base_model_name`` is what the run's files and the saved adapter call the base model (default: the folder's
    name); no file the run writes holds an absolute path.

    ``eval_sets`` maps a split name to its examples; empty ones are skipped. With ``resume`` the run continues
    from the last checkpoint in ``output_dir`` when there is one (from step 0 otherwise). ``callbacks`` are extra
    ``transformers.TrainerCallback`` objects (tests use one to interrupt a run). ``run_info`` names and tags the
    tracked runs (default: experiment ``doctune``, MLflow store in ``output_dir``).

    With ``cfg.processes`` > 1 it launches that many processes, each calling this function (see
    :mod:`doctune.train.distributed`), waits for them and returns the main process's result.
    """
    from transformers import AutoTokenizer

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if needs_launch(cfg.processes):
        if callbacks:
            raise ValueError("callbacks cannot reach launched processes: train with train.processes 1")
        from doctune.train.distributed import launch_train

        return launch_train(
            cfg, base_model, train_examples, eval_sets, output_dir, resume, progress, run_info, base_model_name
        )
    main = is_main_process()
    device, precision = resolve_device(cfg)
    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    train_tok, dropped = tokenize_examples(train_examples, tokenizer, cfg.max_length)
    if not train_tok:
        raise ValueError("no training example left after tokenization")
    eval_ds = {}
    for name, examples in eval_sets.items():
        tokenized, _ = tokenize_examples(examples, tokenizer, cfg.max_length)
        if tokenized:
            eval_ds[name] = to_dataset(tokenized)
    args = _sft_args(cfg, output_dir, device, precision, next(iter(eval_ds), None), progress)
    base_name = base_model_name or Path(base_model).name
    resolved = {"train": cfg.model_dump(mode="json"), "base_model": base_name, "device": device}
    # args.world_size sets the processes up (joins the process group in a launched run): the backend is then known
    resolved.update(precision=precision, processes=args.world_size, distributed_backend=distributed_backend())
    if main:
        (output_dir / "train_config.json").write_text(json.dumps(resolved, indent=2), encoding="utf-8")
    info = run_info or RunInfo(run_name=output_dir.name)
    params = {**resolved, "train_examples": len(train_tok), "eval_examples": {k: len(v) for k, v in eval_ds.items()}}
    trackers = open_trackers(cfg, info, output_dir, params) if main else []
    try:
        train_set = (train_tok, dropped)
        progress_bar = [WorkspaceProgressCallback(f"train {info.run_name or output_dir.name}")] if main else []
        every_callback = [*trackers, *progress_bar, *callbacks]
        result = _fit(
            cfg, base_model, tokenizer, args, train_set, eval_ds, output_dir, resume, progress, every_callback
        )
        result.base_model = base_name
        if main:
            _rename_base(Path(result.weights_dir), Path(base_model), base_name)
    except BaseException:
        finish_trackers(trackers, {}, [], failed=True)
        raise
    if not main:
        return result
    summary = {"final_loss": result.final_loss, "steps": result.steps, "tokens_per_second": result.tokens_per_second}
    summary.update({f"final_eval_{k}_loss": v for k, v in result.eval_losses.items()})
    files = [output_dir / "loss.png", output_dir / "metrics.json", output_dir / "train_config.json"]
    result.tracking = finish_trackers(trackers, summary, files)
    _write_metrics(result, output_dir)
    return result


def _write_metrics(result: TrainResult, output_dir: Path) -> None:
    """``metrics.json``: the result, its paths relative to ``output_dir``."""
    data = asdict(result)
    for key in ("output_dir", "weights_dir", "loss_plot"):
        if data[key]:
            data[key] = Path(data[key]).relative_to(output_dir).as_posix() if key != "output_dir" else "."
    (output_dir / "metrics.json").write_text(json.dumps(data, indent=2), encoding="utf-8")


def _rename_base(weights_dir: Path, base_model: Path, base_name: str) -> None:
    """Name the base model ``base_name`` instead of its local folder in the saved weights' metadata (PEFT's
    ``adapter_config.json`` and model card, a full model's ``config.json``): the weights are meant to be exported."""
    folder = str(base_model)
    for name in ("adapter_config.json", "README.md", "config.json"):
        path = weights_dir / name
        if path.is_file() and folder in (text := path.read_text(encoding="utf-8")):
            path.write_text(text.replace(json.dumps(folder)[1:-1], base_name).replace(folder, base_name), "utf-8")


def _fit(
    cfg: TrainConfig,
    base_model: str | Path,
    tokenizer: Any,
    args: Any,
    train_set: tuple[list[dict[str, Any]], int],
    eval_ds: dict[str, Any],
    output_dir: Path,
    resume: bool,
    progress: bool,
    callbacks: Sequence[Any],
) -> TrainResult:
    """Load the model, train (from the last checkpoint with ``resume``), evaluate, save; write the run's files."""
    import torch
    from transformers import AutoModelForCausalLM, EarlyStoppingCallback, PrinterCallback

    train_tok, dropped = train_set
    # TRL 1.16 / PEFT 0.21 still read transformers 5's deprecated alias; the warning is theirs, not the user's
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    dtype = torch.float32  # bf16 runs as autocast over fp32 master weights
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=dtype)
    counter = TokenCounter()
    all_callbacks: list[Any] = [ThroughputCallback(counter)]  # first: trackers then see tokens/s in each entry
    if args.load_best_model_at_end:
        all_callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = counting_sft_trainer(
        counter,
        model=model,
        args=args,
        train_dataset=to_dataset(train_tok),
        eval_dataset=eval_ds or None,
        processing_class=tokenizer,
        peft_config=_peft_config(cfg),
        callbacks=[*all_callbacks, *callbacks],
    )
    if not progress:
        trainer.remove_callback(PrinterCallback)  # it prints every log entry when progress bars are off
    checkpoint = _last_checkpoint(output_dir) if resume else None
    resumed_from = None
    if checkpoint is not None:
        resumed_from = int(Path(checkpoint).name.split("-")[-1])
        log.info("resuming from %s (step %d)", checkpoint, resumed_from)
    elif resume:
        log.info("no checkpoint in %s: training from step 0", output_dir)
    log.info(
        "training %s on %s (%s, %s): %d examples, %s; %s",
        "all weights" if cfg.full_finetune else f"a LoRA adapter (r={cfg.lora_r})",
        args.device,
        "bf16" if args.bf16 else "fp32",
        Path(base_model).name,
        len(train_tok),
        ", ".join(f"{k}: {len(v)}" for k, v in eval_ds.items()) or "no eval split",
        batch_note(args),
    )
    trainer.train(resume_from_checkpoint=checkpoint)
    sum_over_processes(counter, args.device)

    eval_losses: dict[str, float] = {}
    if eval_ds:
        metrics = trainer.evaluate()
        eval_losses = {name: float(metrics[f"eval_{name}_loss"]) for name in eval_ds if f"eval_{name}_loss" in metrics}
    weights_dir = output_dir / ("model" if cfg.full_finetune else "adapter")
    trainer.save_model(str(weights_dir))  # every process calls it (FSDP gathers the weights); rank 0 writes
    main = is_main_process()
    history = trainer.state.log_history
    plot = None
    if main:
        tokenizer.save_pretrained(str(weights_dir))
        log.info("saved the %s to %s", weights_dir.name, weights_dir)
        (output_dir / "log_history.json").write_text(json.dumps(history, indent=2), encoding="utf-8")
        plot = plot_losses(history, output_dir / "loss.png", title=f"{Path(base_model).name} fine-tuning")
    result = TrainResult(
        output_dir=str(output_dir),
        weights_dir=str(weights_dir),
        base_model=Path(base_model).name,
        device=args.device.type,
        precision="bf16" if args.bf16 else "fp32",
        steps=trainer.state.global_step,
        resumed_from_step=resumed_from,
        initial_loss=_first(history, "loss"),
        final_loss=_first(history, "loss", last=True),
        eval_losses=eval_losses,
        tokens_per_second=round(counter.tokens_per_second, 2),
        padding_share=round(counter.padding_share, 4),
        train_tokens=counter.real_tokens,
        label_tokens=counter.label_tokens,
        train_examples=len(train_tok),
        dropped_examples=dropped,
        stopped_early=bool(args.load_best_model_at_end) and trainer.state.global_step < trainer.state.max_steps,
        loss_plot=str(plot) if plot else None,
        processes=args.world_size,
        distributed_backend=distributed_backend(),
        global_batch_size=args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        parallelism=parallelism(trainer.accelerator),
    )
    if main:
        _write_metrics(result, output_dir)
    log.info(
        "trained %d steps: loss %s -> %s, %.1f tokens/s, padding %.1f%%",
        result.steps,
        result.initial_loss,
        result.final_loss,
        result.tokens_per_second,
        100 * result.padding_share,
    )
    return result


def counting_sft_trainer(counter: TokenCounter, **kwargs: Any) -> Any:
    """An ``SFTTrainer(**kwargs)`` that adds every training micro-batch to ``counter``."""
    from trl import SFTTrainer

    class CountingSFTTrainer(SFTTrainer):
        """``SFTTrainer`` that counts the tokens of every training micro-batch (see :class:`TokenCounter`)."""

        def __init__(self, *args: Any, counter: TokenCounter, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.token_counter = counter

        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            self.token_counter.add_batch(inputs)
            return super().training_step(model, inputs, *args, **kwargs)

    return CountingSFTTrainer(counter=counter, **kwargs)
