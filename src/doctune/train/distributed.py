"""Data-parallel training in several processes through Hugging Face ``accelerate`` (DDP; FSDP by an accelerate config).

With ``train.processes`` above 1, :func:`doctune.train.trainer.train` hands the run to :func:`launch_train`, which
writes the job (train config, examples, paths) into a temporary folder and runs, from the same Python::

    python -m accelerate.commands.launch --num_processes N --num_machines 1 --main_process_port 0 \\
        --multi_gpu --mixed_precision no --dynamo_backend no -m doctune.train.launched <job.json>

(``--config_file <train.accelerate_config>`` instead of ``--multi_gpu ...`` when one is set: that is how FSDP is
chosen). accelerate's torchrun launcher starts N processes; each runs ``train()`` itself
(:mod:`doctune.train.launched`). The Trainer wraps the model in DDP, NCCL on GPUs, gloo on CPU (``use_cpu`` makes
accelerate pick it), and gives each process its own share of every batch. Only the main process (rank 0) writes
files: the weights, ``train_config.json``, ``log_history.json``, ``metrics.json``, the plot, the trackers' runs and
the result the launching process reads back; the others train and exit. The launching process streams the
processes' output to its stderr and into ``launch.log`` beside the run, and turns a failed launch into one line: the
rank that failed first and its error, or the launcher's own.

accelerate's ``--cpu`` flag is not used: it starts several processes only through MPI (``mpirun``); the torchrun
launcher works on CPU as well.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doctune.train.config import TrainConfig
    from doctune.train.metrics import TokenCounter
    from doctune.train.tracking import RunInfo
    from doctune.train.trainer import TrainResult

log = logging.getLogger(__name__)

#: set in the launched processes: they train, they never launch again
LAUNCHED_ENV = "DOCTUNE_LAUNCHED"
LAUNCH_LOG = "launch.log"
RESULT_FILE = "result.json"
ENTRY_MODULE = "doctune.train.launched"


class LaunchError(RuntimeError):
    """The multi-process launch failed: the message names the failing rank and its error, or the launcher's."""


def rank() -> int:
    """This process's global rank (0 outside a launch)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """Processes of the launch this process belongs to (1 outside a launch)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Whether this process writes the run's files (rank 0, or the only process)."""
    return rank() == 0


def needs_launch(processes: int) -> bool:
    """Whether ``train()`` must start ``processes`` processes rather than train here."""
    return processes > 1 and os.environ.get(LAUNCHED_ENV) != "1" and world_size() == 1


def distributed_backend() -> str | None:
    """The initialized ``torch.distributed`` backend (gloo, nccl...); None in a single process."""
    import torch.distributed as dist

    return str(dist.get_backend()) if dist.is_available() and dist.is_initialized() else None


def all_reduce(values: Sequence[float], op: str = "sum", device: Any = None) -> list[float]:
    """``values`` summed (``op="sum"``) or maximized (``"max"``) over the processes; as they are in one process.

    Every process must call it at the same point (it is a collective)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return [float(v) for v in tensor.tolist()]


def parallelism(accelerator: Any) -> str | None:
    """How the Trainer's ``accelerator`` spreads the model: ddp, fsdp, deepspeed...; None in a single process."""
    kind = str(accelerator.distributed_type).rsplit(".", 1)[-1]
    if kind == "NO":
        return None
    if os.environ.get("ACCELERATE_USE_FSDP") == "true" and kind != "FSDP" and is_main_process():
        log.warning("the accelerate config asks for FSDP but accelerate runs %s here (FSDP needs GPUs): DDP", kind)
    return {"FSDP": "fsdp", "DEEPSPEED": "deepspeed", "MEGATRON_LM": "megatron-lm"}.get(kind, "ddp")


def batch_note(args: Any) -> str:
    """The global batch, spelled out over the processes when there are several."""
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
    if args.world_size == 1:
        return f"batch {per_step} per step"
    return (
        f"{args.world_size} processes ({distributed_backend()}): global batch {per_step * args.world_size} per step "
        f"({args.per_device_train_batch_size} x {args.gradient_accumulation_steps} accumulation x {args.world_size})"
    )


def sum_over_processes(counter: TokenCounter, device: Any) -> None:
    """Make ``counter`` the whole run's: tokens summed over the processes, step time the slowest process's."""
    summed = all_reduce([counter.real_tokens, counter.slots, counter.label_tokens], "sum", device)
    counter.real_tokens, counter.slots, counter.label_tokens = (int(v) for v in summed)
    counter.step_time_s = all_reduce([counter.step_time_s], "max", device)[0]


def launch_command(cfg: TrainConfig, job: Path) -> list[str]:
    """The ``accelerate launch`` command that runs the job in ``cfg.processes`` processes."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(cfg.processes)]
    cmd += ["--num_machines", "1", "--main_process_port", "0"]  # port 0: accelerate picks a free one
    if cfg.accelerate_config:
        cmd += ["--config_file", str(Path(cfg.accelerate_config).expanduser())]
    else:
        cmd += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]  # bf16 comes from the Trainer
    return [*cmd, "-m", ENTRY_MODULE, str(job)]


def _check_launchable(cfg: TrainConfig, device: str) -> None:
    if cfg.accelerate_config and not Path(cfg.accelerate_config).expanduser().is_file():
        raise LaunchError(f"train.accelerate_config {cfg.accelerate_config!r} is not a file")
    if device == "cuda" and not cfg.accelerate_config:
        import torch

        gpus = torch.cuda.device_count()
        if cfg.processes > gpus:
            raise LaunchError(f"train.processes is {cfg.processes} but {gpus} CUDA GPU(s) are visible (one per GPU)")


def launch_train(
    cfg: TrainConfig,
    base_model: str | Path,
    train_examples: Sequence[dict[str, Any]],
    eval_sets: Mapping[str, Sequence[dict[str, Any]]],
    output_dir: Path,
    resume: bool,
    progress: bool,
    run_info: RunInfo | None,
    base_model_name: str | None,
) -> TrainResult:
    """Run :func:`doctune.train.trainer.train` in ``cfg.processes`` processes and return rank 0's result."""
    from doctune.progress import progress_target
    from doctune.train.trainer import TrainResult, resolve_device

    device, _ = resolve_device(cfg)
    _check_launchable(cfg, device)
    progress_root, progress_stage = progress_target()
    job: dict[str, Any] = {
        "train": cfg.model_dump(mode="json"),
        "base_model": str(base_model),
        "train_examples": list(train_examples),
        "eval_sets": {name: list(examples) for name, examples in eval_sets.items()},
        "output_dir": str(output_dir),
        "resume": resume,
        "progress": progress,
        "run_info": _run_info_json(run_info),
        "base_model_name": base_model_name,
        "log_level": logging.getLogger().getEffectiveLevel(),
        "progress_root": str(progress_root) if progress_root else None,
        "progress_stage": progress_stage,
    }
    env = {**os.environ, LAUNCHED_ENV: "1", "PYTHONUNBUFFERED": "1"}
    if device == "cpu":  # torchrun would give each process one thread; share the cores instead
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // cfg.processes)))
    output_dir.mkdir(parents=True, exist_ok=True)
    log_path = output_dir / LAUNCH_LOG
    with tempfile.TemporaryDirectory(prefix="doctune-launch-") as tmp:
        job_path = Path(tmp) / "job.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        cmd = launch_command(cfg, job_path)
        log.info(
            "training in %d processes on %s through accelerate%s; their output: %s",
            cfg.processes,
            device,
            f" ({cfg.accelerate_config})" if cfg.accelerate_config else " (DDP)",
            log_path,
        )
        code, tail = _run_streaming(cmd, env, log_path)
        if code != 0:
            reason = _failure_reason(Path(tmp), tail)
            raise LaunchError(f"{cfg.processes}-process training failed (exit code {code}): {reason} [{log_path}]")
        result_path = Path(tmp) / RESULT_FILE
        if not result_path.is_file():
            raise LaunchError(f"{cfg.processes}-process training ended without a result from rank 0 [{log_path}]")
        return TrainResult(**json.loads(result_path.read_text(encoding="utf-8")))


def write_result(job_path: Path, result: TrainResult) -> None:
    """Rank 0 hands its :class:`TrainResult` to the launching process."""
    tmp = job_path.parent / f"{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(result)), encoding="utf-8")
    os.replace(tmp, job_path.parent / RESULT_FILE)


def write_error(job_path: Path, exc: BaseException) -> None:
    """A rank's error, for the launching process's message (the first one written is the likeliest cause)."""
    lines = str(exc).strip().splitlines() or [""]
    text = f"{type(exc).__name__}: {lines[0]}".rstrip(": ")
    with contextlib.suppress(OSError):
        (job_path.parent / f"error-rank{rank()}.txt").write_text(text, encoding="utf-8")


def _run_info_json(info: RunInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "experiment": info.experiment,
        "run_name": info.run_name,
        "tags": dict(info.tags),
        "store_dir": str(info.store_dir) if info.store_dir is not None else None,
    }


def _run_streaming(cmd: list[str], env: Mapping[str, str], log_path: Path) -> tuple[int, str]:
    """Run ``cmd``, copying its output (stdout and stderr) to our stderr and to ``log_path``; (exit code, last 8 KB)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    tail = ""
    try:
        proc = subprocess.Popen(cmd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        raise LaunchError(f"could not start accelerate: {exc}") from exc
    assert proc.stdout is not None
    try:
        with log_path.open("ab") as out:
            while chunk := proc.stdout.read1(65536):
                out.write(chunk)
                out.flush()
                text = decoder.decode(chunk)
                sys.stderr.write(text)
                sys.stderr.flush()
                tail = (tail + text)[-8192:]
        return proc.wait(), tail
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


_ERROR_LINE = re.compile(r"^\s*(?:\[rank\d+\]:\s*)?([A-Za-z_][\w.]*(?:Error|Exception|Interrupt)\b.*)$")


def _failure_reason(job_dir: Path, tail: str) -> str:
    """The first error a rank wrote, else the launcher's last error line, else the output's last line."""
    errors = sorted(job_dir.glob("error-rank*.txt"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    if errors:
        first = errors[0]
        text = f"rank {first.stem.removeprefix('error-rank')}: {first.read_text(encoding='utf-8').strip()}"
        return text + (f" (and {len(errors) - 1} more rank(s) failed)" if len(errors) > 1 else "")
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _ERROR_LINE.match(line)
        if match and "ChildFailedError" not in line and "CalledProcessError" not in line:
            return match.group(1)
    exit_codes = [line for line in lines if line.startswith("exitcode")]
    if exit_codes:
        return f"a process ended with {exit_codes[-1]}"
    return lines[-1] if lines else "no output"
