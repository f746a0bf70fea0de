"""Experiment tracking of a training run: TensorBoard, MLflow and Weights & Biases.

Each tracker is a ``transformers.TrainerCallback`` that receives every log entry of the run (loss, learning rate,
grad norm, tokens/s, padding share, eval losses) plus a lifecycle driven by :func:`doctune.train.trainer.train`:

* ``start(params, resume_id)`` before training: opens (or, on ``--resume``, reopens) the run and returns its id;
  configuration errors (package missing, server unreachable) surface here, before any weight is loaded;
* ``finish(summary, files, failed)`` after the final evaluation: final metrics, the loss plot and metrics files,
  and the run's end state.

One doctune training run is one tracked run, final evaluation included (transformers' own integrations start a
second run for an evaluation after training ends). The run ids are kept in ``<output_dir>/tracking.json`` so that a
resumed training continues the same tracked run. A tracker that fails while logging is switched off with a
warning: the metrics stay in ``log_history.json`` and training goes on.

Credentials are never read from the config: W&B takes ``WANDB_API_KEY`` (or ``wandb login``), an MLflow server
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from transformers import TrainerCallback

from doctune.train.config import TrainConfig

log = logging.getLogger(__name__)

STATE_FILE = "tracking.json"
MLFLOW_DIR = "mlflow"
INSTALL_HINT = "install the tracking extra: pip install 'doctune[track]'"


@dataclass(frozen=True)
class RunInfo:
    """How the trackers name, tag and store a run (the train stage fills it from the workspace)."""

    experiment: str = "doctune"
    run_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    store_dir: Path | None = field(default=None, metadata={"doc": "home of the default MLflow store"})


class TrackingError(RuntimeError):
    """A tracker could not be opened (missing package, bad URI, unreachable server)."""


def _numeric(logs: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train.lora_r": "16", ...}``: nested mappings joined with dots, other values as JSON, at most 500 chars."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_params(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            out[name] = text[:500]
    return out


class Tracker(TrainerCallback):
    """A place metrics go. Subclasses implement :meth:`start`, :meth:`log_metrics` and :meth:`finish`."""

    name: ClassVar[str]

    def __init__(self, info: RunInfo, output_dir: Path):
        self.info = info
        self.output_dir = output_dir
        self.link: str | None = None
        self._disabled = False

    def start(self, params: Mapping[str, Any], resume_id: str | None) -> str | None:
        """Open the run; return its id (kept for a resumed training)."""
        raise NotImplementedError

    def shown(self, path: Path) -> str:
        """``path`` as recorded in links and tags: relative to the store folder (the workspace) when inside it."""
        if self.info.store_dir is not None:
            try:
                return path.resolve().relative_to(Path(self.info.store_dir).resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        raise NotImplementedError

    def finish(self, summary: Mapping[str, Any], files: Sequence[Path], failed: bool = False) -> None:
        """Record the final metrics and files and close the run."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self._disabled or not logs or not state.is_world_process_zero:
            return
        try:
            self.log_metrics(_numeric(logs), int(state.global_step))
        except Exception as exc:  # tracking must never cost the training run
            self._disabled = True
            log.warning(
                "%s tracking failed (%s); switched off for this run, metrics stay in log_history.json", self.name, exc
            )


class TensorBoardTracker(Tracker):
    """Event files under ``<output_dir>/tensorboard`` (``tensorboard --logdir <workspace>/runs``)."""

    name = "tensorboard"

    def __init__(self, info: RunInfo, output_dir: Path):
        super().__init__(info, output_dir)
        self.log_dir = output_dir / "tensorboard"
        self._writer: Any = None

    def start(self, params: Mapping[str, Any], resume_id: str | None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise TrackingError(f"tensorboard tracking needs the tensorboard package ({exc})") from exc
        self._writer = SummaryWriter(log_dir=str(self.log_dir))
        self._writer.add_text("config", "```\n" + json.dumps(dict(params), indent=2) + "\n```")
        self.link = self.shown(self.log_dir)
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(_tensorboard_tag(key), value, step)
        self._writer.flush()

    def finish(self, summary: Mapping[str, Any], files: Sequence[Path], failed: bool = False) -> None:
        if self._writer is not None:
            self._writer.close()


def _tensorboard_tag(key: str) -> str:
    """transformers' layout: ``train/loss``, ``eval/eval_loss``..."""
    if key.startswith("eval_"):
        return "eval/" + key.removeprefix("eval_")
    return "train/" + key


class MlflowTracker(Tracker):
    """An MLflow run: params, metric history per step, tags, the loss plot and metrics files as artifacts.

    Default store: SQLite at ``<store_dir>/mlflow/mlflow.db`` with artifacts beside it (MLflow 3 refuses its old
    file store by default); browse with ``mlflow ui --backend-store-uri sqlite:///<that file>``.
    """

    name = "mlflow"

    def __init__(self, info: RunInfo, output_dir: Path, tracking_uri: str | None = None):
        super().__init__(info, output_dir)
        home = (info.store_dir or output_dir) / MLFLOW_DIR
        self._artifact_root = None if tracking_uri else (home / "artifacts").resolve().as_uri()
        #: where the run is, for links: the local store's file (relative to the workspace), never a server's URL
        self.store_shown = "the configured MLflow server"
        if tracking_uri is None:
            home.mkdir(parents=True, exist_ok=True)
            tracking_uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
            self.store_shown = "sqlite:///" + self.shown(home / "mlflow.db")
        self.tracking_uri = tracking_uri
        self.run_id: str | None = None
        self._client: Any = None

    def start(self, params: Mapping[str, Any], resume_id: str | None) -> str:
        try:
            from mlflow import MlflowClient
        except ImportError as exc:
            raise TrackingError(f"mlflow tracking needs the mlflow-skinny package: {INSTALL_HINT}") from exc
        try:
            client = MlflowClient(tracking_uri=self.tracking_uri)
            experiment = client.get_experiment_by_name(self.info.experiment)
            experiment_id = (
                experiment.experiment_id
                if experiment
                else client.create_experiment(self.info.experiment, artifact_location=self._artifact_root)
            )
            run = None
            if resume_id:
                try:
                    run = client.get_run(resume_id)
                    client.update_run(resume_id, status="RUNNING")
                except Exception:
                    log.warning("mlflow run %s not found in %s: starting a new one", resume_id, self.tracking_uri)
                    run = None
            if run is None:
                tags = {"doctune.output_dir": self.shown(self.output_dir), **self.info.tags}
                run = client.create_run(experiment_id, run_name=self.info.run_name, tags=tags)
                from mlflow.entities import Param

                flat = flat_params(params)
                items = [Param(k, v) for k, v in flat.items()]
                for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
                    client.log_batch(run.info.run_id, params=items[i : i + 100])
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"mlflow store {self.tracking_uri} could not be opened: {exc}") from exc
        self._client = client
        self.run_id = run.info.run_id
        self.link = f"{self.store_shown} (experiment {self.info.experiment!r}, run {self.run_id})"
        return self.run_id

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(re.sub(r"[^0-9A-Za-z_\-. :/]", "_", k), v, now, step) for k, v in metrics.items()]
        if batch:
            self._client.log_batch(self.run_id, metrics=batch)

    def finish(self, summary: Mapping[str, Any], files: Sequence[Path], failed: bool = False) -> None:
        if self._client is None:
            return
        try:
            for path in files:
                if path.is_file():
                    self._client.log_artifact(self.run_id, str(path))
            self._client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")
        except Exception as exc:
            log.warning("mlflow: could not close run %s (%s)", self.run_id, exc)


def wandb_mode(configured: str | None) -> str:
    """The W&B mode: the config's (``train.wandb_mode``), else ``WANDB_MODE``, else offline. A W&B run never goes
    online because a key happens to be set up: going online is an explicit setting."""
    if configured:
        return configured
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    log.warning(
        "W&B logs offline (upload later with `wandb sync`); set train.wandb_mode: online (or WANDB_MODE=online) "
        "to log to the W&B server"
    )
    return "offline"


class WandbTracker(Tracker):
    """A Weights & Biases run under ``<output_dir>/wandb`` (online, or offline to ``wandb sync`` later)."""

    name = "wandb"

    def __init__(self, info: RunInfo, output_dir: Path, mode: str | None = None, entity: str | None = None):
        super().__init__(info, output_dir)
        self.mode = mode
        self.entity = entity
        self._run: Any = None

    def start(self, params: Mapping[str, Any], resume_id: str | None) -> str:
        try:
            import wandb
        except ImportError as exc:
            raise TrackingError(f"wandb tracking needs the wandb package: {INSTALL_HINT}") from exc
        mode = wandb_mode(self.mode)
        try:
            self._run = wandb.init(
                project=self.info.experiment,
                entity=self.entity,
                name=self.info.run_name,
                id=resume_id,
                resume="allow",
                dir=str(self.output_dir),
                config={**params, "tags": dict(self.info.tags)},
                mode=mode,
                reinit="create_new",
                settings=wandb.Settings(console="off", silent=True),
            )
        except Exception as exc:
            raise TrackingError(f"wandb run could not be started ({mode}): {exc}") from exc
        self.link = self.shown(self.output_dir / "wandb") if self._run.offline else self._run.url
        return self._run.id

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log(dict(metrics), step=step)

    def finish(self, summary: Mapping[str, Any], files: Sequence[Path], failed: bool = False) -> None:
        if self._run is None:
            return
        try:
            self._run.summary.update({k: v for k, v in summary.items() if v is not None})
            for path in files:  # files in the run's folder are uploaded when it ends (or by `wandb sync`)
                if path.is_file():
                    shutil.copy2(path, Path(self._run.dir) / path.name)
            self._run.finish(exit_code=1 if failed else 0)
        except Exception as exc:
            log.warning("wandb: could not close run %s (%s)", self._run.id, exc)


def open_trackers(cfg: TrainConfig, info: RunInfo, output_dir: Path, params: Mapping[str, Any]) -> list[Tracker]:
    """Start every tracker of ``cfg.tracking``; a run in ``output_dir`` (being resumed) keeps its tracked runs."""
    state_path = output_dir / STATE_FILE
    previous = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {}
    trackers: list[Tracker] = []
    for name in cfg.tracking:
        if name == "tensorboard":
            trackers.append(TensorBoardTracker(info, output_dir))
        elif name == "mlflow":
            trackers.append(MlflowTracker(info, output_dir, cfg.mlflow_tracking_uri))
        elif name == "wandb":
            trackers.append(WandbTracker(info, output_dir, cfg.wandb_mode, cfg.wandb_entity))
    ids = {}
    for i, tracker in enumerate(trackers):
        try:
            run_id = tracker.start(params, previous.get(tracker.name))
        except BaseException:
            finish_trackers(trackers[:i], {}, [], failed=True)  # close the ones already open
            raise
        if run_id:
            ids[tracker.name] = run_id
        log.info("tracking in %s: %s", tracker.name, tracker.link)
    state_path.write_text(json.dumps(ids, indent=2), encoding="utf-8")
    return trackers


def finish_trackers(
    trackers: Sequence[Tracker], summary: Mapping[str, Any], files: Sequence[Path], failed: bool = False
) -> dict[str, str]:
    """Close every tracker; return ``{tracker: where its run is}``."""
    for tracker in trackers:
        tracker.finish(summary, files, failed)
    return {t.name: t.link for t in trackers if t.link}
