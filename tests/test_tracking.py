"""Experiment tracking: MLflow (local SQLite store), W&B (offline), TensorBoard; one tracked run per training run."""

from __future__ import annotations

import json
import sys

import pytest

from doctune.train.config import TrainConfig
from doctune.train.tracking import (
    RunInfo,
    Tracker,
    TrackingError,
    finish_trackers,
    flat_params,
    open_trackers,
    wandb_mode,
)

from wandb_log import history, run_record, summary, wait_until_closed


class _State:
    is_world_process_zero = True

    def __init__(self, step: int):
        self.global_step = step


def _log(tracker: Tracker, step: int, **logs) -> None:
    tracker.on_log(None, _State(step), None, logs=logs)


def _mlflow_client(store_dir):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{store_dir / 'mlflow' / 'mlflow.db'}")


def test_tracking_config_accepts_a_name_a_list_or_none_and_refuses_passwords_in_uris():
    assert TrainConfig().tracking == ["tensorboard"]
    assert TrainConfig(tracking="mlflow").tracking == ["mlflow"]
    assert TrainConfig(tracking="none").tracking == [] == TrainConfig(tracking=None).tracking
    assert TrainConfig(tracking=["wandb", "mlflow"]).tracking == ["wandb", "mlflow"]
    with pytest.raises(ValueError):
        TrainConfig(tracking="comet")
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_PASSWORD"):
        TrainConfig(mlflow_tracking_uri="https://me:hunter2@mlflow.example.com")
    assert TrainConfig(mlflow_tracking_uri="https://mlflow.example.com").mlflow_tracking_uri


def test_flat_params():
    flat = flat_params({"train": {"lora_r": 8, "target_modules": ["q_proj"], "note": "x" * 900}, "device": "cpu"})
    assert flat == {
        "train.lora_r": "8",
        "train.target_modules": '["q_proj"]',
        "train.note": "x" * 500,
        "device": "cpu",
    }


def test_wandb_never_goes_online_without_an_explicit_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    assert wandb_mode(None) == "offline"
    # credentials alone (a `wandb login` netrc, an API key in the environment) are not a decision to upload
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert wandb_mode(None) == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert wandb_mode(None) == "offline"
    # explicit settings: the config first, then WANDB_MODE
    assert wandb_mode("online") == "online"
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wandb_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode(None) == "disabled"
    assert wandb_mode("offline") == "offline"


def test_mlflow_run_gets_params_tags_metrics_and_files_and_a_resume_continues_it(tmp_path):
    info = RunInfo(experiment="zorblat", run_name="r1", tags={"doctune.dataset_sha256": "abc"}, store_dir=tmp_path)
    cfg = TrainConfig(tracking="mlflow", lora_r=4)
    out = tmp_path / "runs" / "r1" / "train"
    out.mkdir(parents=True)
    params = {"train": cfg.model_dump(mode="json"), "device": "cpu"}
    [first] = open_trackers(cfg, info, out, params)
    _log(first, 1, loss=3.0, learning_rate=1e-3, grad_norm=2.5, note="text is dropped", flag=True)
    _log(first, 2, loss=2.0, learning_rate=9e-4)
    finish_trackers([first], {}, [], failed=True)  # the process dies here
    client = _mlflow_client(tmp_path)
    assert client.get_run(first.run_id).info.status == "FAILED"
    assert json.loads((out / "tracking.json").read_text()) == {"mlflow": first.run_id}

    [again] = open_trackers(cfg, info, out, params)  # resumed training
    assert again.run_id == first.run_id
    _log(again, 3, loss=1.0, tokens_per_second=120.5)
    _log(again, 3, eval_eval_loss=1.5)
    plot = out / "loss.png"
    plot.write_bytes(b"\x89PNG not really")
    links = finish_trackers([again], {"final_loss": 1.0}, [plot, out / "missing.json"])

    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")] == [
        (1, 3.0),
        (2, 2.0),
        (3, 1.0),
    ]
    assert set(run.data.metrics) == {"loss", "learning_rate", "grad_norm", "tokens_per_second", "eval_eval_loss"}
    assert run.data.params["train.lora_r"] == "4" and run.data.params["device"] == "cpu"
    assert run.data.tags["doctune.dataset_sha256"] == "abc" and run.data.tags["mlflow.runName"] == "r1"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["loss.png"]
    assert list((tmp_path / "mlflow" / "artifacts").rglob("loss.png"))  # beside the store, not in the cwd
    experiment = client.get_experiment_by_name("zorblat")
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert first.run_id in links["mlflow"] and "mlflow.db" in links["mlflow"]


def test_wandb_offline_run_gets_config_history_summary_and_a_resume_keeps_its_id(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    info = RunInfo(experiment="zorblat", run_name="r1", tags={"doctune.dataset_sha256": "abc"})
    cfg = TrainConfig(tracking="wandb", wandb_mode="offline", lora_r=4)
    params = {"train": cfg.model_dump(mode="json")}
    [first] = open_trackers(cfg, info, tmp_path, params)
    _log(first, 1, loss=3.0, learning_rate=1e-3)
    _log(first, 2, loss=2.0, learning_rate=9e-4)
    finish_trackers([first], {}, [], failed=True)
    [again] = open_trackers(cfg, info, tmp_path, params)
    _log(again, 3, loss=1.0, eval_eval_loss=1.5)
    links = finish_trackers([again], {"final_loss": 1.0, "missing": None}, [])

    logs = [wait_until_closed(p) for p in sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))]
    assert len(logs) == 2 and all(p.name == f"run-{first._run.id}.wandb" for p in logs)
    rows = [row for path in logs for row in history(path)]
    assert [(r["_step"], r["loss"]) for r in rows] == [(1, 3.0), (2, 2.0), (3, 1.0)]
    assert rows[-1]["eval_eval_loss"] == 1.5
    run = run_record(logs[0])
    assert run.project == "zorblat" and run.display_name == "r1"
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["train"]["lora_r"] == 4 and config["tags"] == {"doctune.dataset_sha256": "abc"}
    assert summary(logs[1])["final_loss"] == 1.0
    assert links["wandb"] == str(tmp_path / "wandb")  # offline: no URL, the folder to `wandb sync`


def test_a_missing_package_or_unreachable_server_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(TrackingError, match=r"doctune\[track\]"):
        open_trackers(TrainConfig(tracking="wandb"), RunInfo(), tmp_path, {})
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    cfg = TrainConfig(tracking=["tensorboard", "mlflow"], mlflow_tracking_uri="http://127.0.0.1:9")
    with pytest.raises(TrackingError, match="http://127.0.0.1:9 could not be opened"):
        open_trackers(cfg, RunInfo(), tmp_path, {})
    assert not (tmp_path / "tracking.json").exists()


class _Broken(Tracker):
    name = "broken"

    def log_metrics(self, metrics, step):
        raise ConnectionError("server went away")


def test_a_tracker_that_fails_while_logging_is_switched_off_and_training_goes_on(tmp_path, caplog):
    tracker = _Broken(RunInfo(), tmp_path)
    _log(tracker, 1, loss=1.0)
    _log(tracker, 2, loss=0.5)  # no second attempt
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "server went away" in warnings[0] and "switched off" in warnings[0]


@pytest.mark.slow
def test_real_training_tracks_one_run_per_tracker_across_a_kill_and_resume(tmp_path, monkeypatch):
    """SmolLM2 trains 6 LoRA steps, dies after step 4, resumes from checkpoint 3: each tracker holds one run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import TrainerCallback

    from doctune.llm.hf import embedded_safetensors_dir
    from doctune.train.data import chat_messages
    from doctune.train.trainer import train

    class Killed(Exception):
        pass

    class KillAfter(TrainerCallback):  # after the trackers: they have logged step 4 when it fires
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.global_step == 4:
                raise Killed

    monkeypatch.delenv("WANDB_MODE", raising=False)
    facts = [
        (f"What is fact number {i} about the zorblat?", f"Fact {i}: the zorblat has {i + 2} seeds.") for i in range(8)
    ]
    examples = [{"messages": chat_messages(q, a, "Answer briefly.")} for q, a in facts]
    cfg = TrainConfig(
        tracking=["tensorboard", "mlflow", "wandb"],
        wandb_mode="offline",
        max_steps=6,
        save_steps=3,
        eval_steps=3,
        per_device_batch_size=4,
        learning_rate=1e-3,
        lora_r=4,
        max_length=96,
    )
    info = RunInfo(experiment="zorblat", run_name="run-1", tags={"doctune.dataset_sha256": "abc"}, store_dir=tmp_path)
    out = tmp_path / "run-1" / "train"
    model = embedded_safetensors_dir()
    with pytest.raises(Killed):
        train(cfg, model, examples, {"eval": examples[:2]}, out, progress=False, callbacks=[KillAfter()], run_info=info)
    result = train(cfg, model, examples, {"eval": examples[:2]}, out, resume=True, progress=False, run_info=info)
    assert result.resumed_from_step == 3 and result.steps == 6
    assert set(result.tracking) == {"tensorboard", "mlflow", "wandb"}
    assert json.loads((out / "metrics.json").read_text())["tracking"] == result.tracking

    client = _mlflow_client(tmp_path)
    [run] = client.search_runs([client.get_experiment_by_name("zorblat").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run-1"
    loss_steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
    assert loss_steps == [1, 2, 3, 4, 4, 5, 6]  # step 4 ran twice: before the kill and after resuming from step 3
    for key in ("learning_rate", "grad_norm", "tokens_per_second", "eval_eval_loss"):
        assert client.get_metric_history(run.info.run_id, key), key
    assert run.data.metrics["eval_eval_loss"] == pytest.approx(result.eval_losses["eval"])
    assert run.data.params["train.lora_r"] == "4" and run.data.params["device"] == "cpu"
    assert run.data.tags["doctune.dataset_sha256"] == "abc"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"loss.png", "metrics.json", "train_config.json"}

    logs = [wait_until_closed(p) for p in sorted((out / "wandb").glob("offline-run-*/run-*.wandb"))]
    assert len(logs) == 2 and logs[0].name == logs[1].name  # the resumed process logged to the same run id
    rows = [row for path in logs for row in history(path)]
    assert {r["_step"] for r in rows if "loss" in r} == set(range(1, 7))
    assert any("eval_eval_loss" in r for r in rows) and all(r["tokens_per_second"] > 0 for r in rows if "loss" in r)
    assert summary(logs[1])["final_loss"] == pytest.approx(result.final_loss)
    assert (logs[1].parent / "files" / "loss.png").exists()  # uploaded with the run

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {s.step for s in events.Scalars("train/loss")} == set(range(1, 7))
    assert [s.step for s in events.Scalars("eval/eval_loss")][-1] == 6


def test_train_command_reports_an_unreachable_tracking_server_and_trains_nothing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from doctune.cli import app
    from doctune.config import DoctuneConfig
    from doctune.records import DatasetItem
    from doctune.workspace import Workspace
    from test_train import FACTS, _item

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.chdir(tmp_path)  # no doctune.yaml here
    ws = Workspace(tmp_path / "ws")
    items = [_item(i, q, a, "train") for i, (q, a) in enumerate(FACTS[:4])]
    ws.start_run("curate", DoctuneConfig()).write_artifact("dataset", items, DatasetItem)
    args = ["--workspace", str(ws.root), "train", "--set", "train.tracking=[tensorboard, mlflow]"]
    args += ["--set", "train.mlflow_tracking_uri=http://127.0.0.1:9"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 1
    assert "train: mlflow store http://127.0.0.1:9 could not be opened" in " ".join(result.output.split())
    assert "training_runs" not in ws.manifest() and not list((ws.root / "runs").rglob("adapter"))
