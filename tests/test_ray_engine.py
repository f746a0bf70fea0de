"""The Ray engine on a real local Ray cluster (started here, 2 CPUs): same artifacts as the local engine, a
killed worker repeats no finished call, Ray Data LLM's HTTP processor answers like the local path."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from doctune.config import DoctuneConfig
from doctune.evaluate.answer import answer_items
from doctune.execution import executor_for, use_executor
from doctune.llm.base import CallParams, Message
from doctune.llm.cache import call_key
from doctune.llm.roles import open_client
from doctune.records import Chunk, DatasetItem, Document, QAItem, Summary, UnitOutcome
from doctune.stages import chunk, generate, ingest
from doctune.testing.fixed_latency import FixedLatencyEndpoint
from doctune.workspace import Workspace

VOLATILE = {"model", "latency_s", "created_at", "generated_at", "duration_s"}  # timing and model fields


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A real Ray head node on this machine (`ray start --head`), stopped after the module."""
    ray_cli = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    # a private test cluster on 127.0.0.1: no token (Ray's token auth is for clusters reachable by others)
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(
        [ray_cli, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
         "--include-dashboard=false", "--object-store-memory=150000000", "--disable-usage-stats"],
        check=True, env=env, capture_output=True, timeout=180,
    )  # fmt: skip
    try:
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        ray.shutdown()
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def _write_corpus(folder: Path, n_docs: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        paragraphs = [
            f"Station {i * 10 + j} records the river level every {j + 1} hours. Its gauge was installed in "
            f"{1900 + i + j}. Readings from it are sent to the office in town {j}."
            for j in range(3)
        ]
        (folder / f"gauges_{i}.md").write_text(f"# Gauges {i}\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")  # reported, never fatal, on both engines
    return folder


def _config(ws: Path, base_url: str, engine: str, address: str = "auto", **execution) -> DoctuneConfig:
    return DoctuneConfig.model_validate(
        {
            "workspace": str(ws),
            "chunk": {"min_chars": 100, "max_chars": 220},
            "generate": {"llm_verifier": False},
            "execution": {"engine": engine, "address": address, **execution},
            "models": {"generator": {"backend": "openai", "model": "m", "base_url": base_url, "max_concurrency": 2}},
        }
    )


def _pipeline(cfg: DoctuneConfig, corpus: Path) -> Workspace:
    ws = Workspace(Path(cfg.workspace))
    with use_executor(executor_for(cfg.execution)) as executor:
        try:
            ingest.run(cfg, ws, [str(corpus)], progress=False)
            chunk.run(cfg, ws, progress=False)
            docs = ws.read_rows("documents", Document, cfg)
            summaries = [Summary(doc_id=d.doc_id, summary=d.title, n_pieces=1, model="none") for d in docs]
            ws.start_run("summarize", cfg).write_artifact("summaries", summaries, Summary, inputs=["documents"])
            generate.run(cfg, ws, "qa", progress=False)
        finally:
            executor.close()
    return ws


def _rows(ws: Workspace, cfg: DoctuneConfig, name: str, row_type, key: str) -> list[dict]:
    rows = [{k: v for k, v in r.model_dump(mode="json").items() if k not in VOLATILE} for r in ws.read_rows(name, row_type, cfg)]  # fmt: skip
    return sorted(rows, key=lambda r: json.dumps(r[key]) + json.dumps(r, sort_keys=True))


def _artifacts(ws: Workspace, cfg: DoctuneConfig) -> dict[str, list[dict]]:
    return {
        "documents": _rows(ws, cfg, "documents", Document, "doc_id"),
        "chunks": _rows(ws, cfg, "chunks", Chunk, "chunk_id"),
        "qa": _rows(ws, cfg, "qa", QAItem, "item_id"),
        "qa_outcomes": _rows(ws, cfg, "qa_outcomes", UnitOutcome, "unit_id"),
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return _write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus):
    """The local engine's artifacts and error list for the corpus."""
    tmp = tmp_path_factory.mktemp("local")
    with FixedLatencyEndpoint(0.02, tmp / "requests.jsonl") as endpoint:
        cfg = _config(tmp / "ws", endpoint.base_url, "local")
        ws = _pipeline(cfg, corpus)
        return _artifacts(ws, cfg)


def test_ray_engine_gives_the_local_engines_artifacts(ray_cluster, corpus, reference, tmp_path):
    with FixedLatencyEndpoint(0.02, tmp_path / "requests.jsonl") as endpoint:
        cfg = _config(tmp_path / "ws", endpoint.base_url, "ray", ray_cluster)
        ws = _pipeline(cfg, corpus)
        calls = len(endpoint.requests())
    got = _artifacts(ws, cfg)
    assert got["qa"], "the fixed-latency endpoint's items are grounded: some must be kept"
    assert {k: len(v) for k, v in got.items()} == {k: len(v) for k, v in reference.items()}
    for name in got:
        assert got[name] == reference[name], name
    assert calls == len(got["qa_outcomes"])  # one call per chunk, none repeated
    run_record = json.dumps(sorted(p.read_text() for p in Path(cfg.workspace).rglob("*.json")))
    assert ray_cluster not in run_record  # the cluster's address is never saved


def _cache_keys(ws_dir: Path) -> set[str]:
    with sqlite3.connect(ws_dir / "cache" / "llm.sqlite") as conn:
        return {row[0] for row in conn.execute("SELECT key FROM calls")}


def _request_key(cfg: DoctuneConfig, body: dict) -> str:
    from doctune.llm.registry import create_backend

    backend = create_backend(cfg.models.generator)
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
    params = CallParams(temperature=body["temperature"], max_tokens=body["max_tokens"], seed=body["seed"])
    return call_key(backend.cache_identity(), [Message(**m) for m in body["messages"]], params, schema)


def _kill_a_worker_after(endpoint: FixedLatencyEndpoint, n_requests: int, killed: dict, ws_dir: Path) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and len(endpoint.requests()) < n_requests:
        time.sleep(0.05)
    while time.time() < deadline:
        for proc in psutil.process_iter(["cmdline"]):
            if "ray::_run_batch" in " ".join(proc.info["cmdline"] or []):
                proc.send_signal(signal.SIGKILL)
                killed["at"] = len(endpoint.requests())
                killed["finished"] = _cache_keys(ws_dir)  # every call finished by now (and maybe a few more)
                return
        time.sleep(0.05)


@pytest.mark.parametrize("retries", [0, 3])
def test_killed_worker_then_resume_repeats_no_finished_call(ray_cluster, corpus, reference, tmp_path, retries):
    """retries 0: the killed task's units fail and are reported, a rerun (resume) completes them; retries 3: Ray
    runs the task again by itself. Either way no call finished before the kill is made again."""
    with FixedLatencyEndpoint(0.4, tmp_path / "requests.jsonl") as endpoint:
        cfg = _config(tmp_path / "ws", endpoint.base_url, "ray", ray_cluster, task_retries=retries, jobs_per_task=3)
        killed: dict = {}
        killer = threading.Thread(target=_kill_a_worker_after, args=(endpoint, 4, killed, tmp_path / "ws"), daemon=True)
        killer.start()
        ws = _pipeline(cfg, corpus)
        killer.join(timeout=5)
        assert "at" in killed, "no worker was running a task to kill"
        finished_before = killed["finished"]
        assert finished_before, "the kill came after some calls had finished"
        first = _artifacts(ws, cfg)
        failed = [o for o in first["qa_outcomes"] if o["status"] == "error"]
        if retries == 0:
            assert failed and all("died" in o["detail"].lower() or "crash" in o["detail"].lower() for o in failed)
            ws = _pipeline(cfg, corpus)  # resume: the same command again
        else:
            assert not failed
        requests = endpoint.requests()
    after_kill = [_request_key(cfg, body) for body in requests[killed["at"] :]]
    repeated = [k for k in after_kill if k in finished_before]
    assert not repeated, f"{len(repeated)} finished calls were made again"
    assert _artifacts(ws, cfg) == reference  # nothing lost, nothing duplicated


def test_ray_data_http_processor_answers_like_the_local_path(ray_cluster, tmp_path):
    items = [
        DatasetItem(
            item_id=f"i{n}",
            kind="qa",
            unit_id="u",
            doc_ids=["d"],
            chunk_ids=["c"],
            k=1,
            question=f"What is item {n}?",
            answer="x",
            evaluation_criteria="",
            difficulty=1,
            category="factual",
            citations=[],
            citations_verified=False,
            model="m",
            source="qa",
            split="eval",
        )
        for n in range(12)
    ]
    with FixedLatencyEndpoint(0.05, tmp_path / "requests.jsonl") as endpoint:
        local_cfg = _config(tmp_path / "local", endpoint.base_url, "local")
        local = answer_items(open_client(local_cfg, Workspace(tmp_path / "local"), "generator"), items)
        ray_cfg = _config(tmp_path / "ray", endpoint.base_url, "ray", ray_cluster, http_batch_size=4)
        with use_executor(executor_for(ray_cfg.execution)) as executor:
            try:
                client = open_client(ray_cfg, Workspace(tmp_path / "ray"), "generator")
                via_ray = answer_items(client, items)
                assert client.usage.calls == 12 and client.usage.cache_hits == 0
                again = answer_items(client, items)  # a rerun: all from the cache, no request
                assert client.usage.cache_hits == 12
            finally:
                executor.close()
        assert len(endpoint.requests()) == 24  # 12 local + 12 through Ray Data, none for the rerun
    assert list(via_ray) == list(local) == list(again)
    assert all(a.startswith("Reply ") for a in via_ray) and not via_ray.errors


def test_a_job_that_cannot_travel_runs_on_the_driver(ray_cluster):
    """A job holding something Ray cannot pickle (a lock) still runs, here; the others go to workers."""
    from doctune.config_execution import ExecutionConfig
    from doctune.jobs import Job, run_jobs

    lock = threading.Lock()

    def guarded() -> int:
        with lock:
            return os.getpid()

    with use_executor(executor_for(ExecutionConfig(engine="ray", address=ray_cluster))) as executor:
        try:
            results = run_jobs([Job("here", guarded), Job("there", os.getpid)], 2, progress=False)
        finally:
            executor.close()
    assert results[0].value == os.getpid() and results[0].error is None
    assert results[1].value not in (None, os.getpid())  # ran in a Ray worker process
