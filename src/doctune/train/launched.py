"""What each process of a multi-process training runs: ``python -m doctune.train.launched <job.json>``.

:func:`doctune.train.distributed.launch_train` writes the job and starts this module in every process through
``accelerate launch``. Each process calls :func:`doctune.train.trainer.train` on the whole job (the Trainer shards the
batches); rank 0 hands its result back, every rank that fails leaves its error for the launching process.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from doctune.train.distributed import rank, world_size, write_error, write_result

log = logging.getLogger("doctune.train.launched")  # also when run as __main__


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        raise SystemExit("usage: python -m doctune.train.launched JOB_JSON (started by doctune's launcher)")
    job_path = Path(args[0])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    this, world = rank(), world_size()
    logging.basicConfig(level=job["log_level"], format=f"[rank {this}/{world}] %(levelname)s %(name)s: %(message)s")
    try:
        from doctune.progress import set_progress_root
        from doctune.train.config import TrainConfig
        from doctune.train.tracking import RunInfo
        from doctune.train.trainer import train

        if this == 0 and job["progress_root"]:
            set_progress_root(Path(job["progress_root"]), job["progress_stage"])
        if world == 1:
            log.warning("launched as a single process: check the distributed_type of train.accelerate_config")
        info = job["run_info"]
        if info is not None:
            store = info.pop("store_dir")
            info = RunInfo(**info, store_dir=Path(store) if store else None)
        result = train(
            TrainConfig.model_validate(job["train"]),
            job["base_model"],
            job["train_examples"],
            job["eval_sets"],
            job["output_dir"],
            resume=job["resume"],
            progress=job["progress"],
            run_info=info,
            base_model_name=job["base_model_name"],
        )
    except BaseException as exc:
        write_error(job_path, exc)
        raise
    log.info("rank %d of %d done: %d steps", this, world, result.steps)
    if this == 0:
        write_result(job_path, result)


if __name__ == "__main__":
    main()
