"""The executor seam without a cluster: the local engine, how clients travel, config and errors."""

from __future__ import annotations

import pickle

import pytest

from doctune.config import ConfigError, DoctuneConfig, ModelSpec
from doctune.config_execution import ExecutionConfig
from doctune.execution import current_executor, executor_for, use_executor
from doctune.execution.local import LocalExecutor
from doctune.execution.ray_engine import RayExecutor
from doctune.jobs import Job, map_items, run_jobs
from doctune.llm.base import Completion, Message
from doctune.llm.cache import CallCache
from doctune.llm.client import LLMClient
from doctune.llm.ratelimit import RateLimiter
from doctune.llm.registry import create_backend


def test_local_engine_keeps_order_reports_failures_and_streams_results():
    seen = []

    def boom():
        raise ValueError("bad input")

    jobs = [Job("a", lambda: 1), Job("b", boom), Job("c", lambda: 3)]
    results = run_jobs(jobs, 2, progress=False, on_result=lambda i, r: seen.append(i))
    assert [r.key for r in results] == ["a", "b", "c"]
    assert [r.value for r in results] == [1, None, 3]
    assert isinstance(results[1].error, ValueError)
    assert sorted(seen) == [0, 1, 2]
    assert [r.value for r in map_items(str.upper, ["x", "y"], progress=False)] == ["X", "Y"]


def test_default_engine_is_local_and_use_executor_restores_it():
    assert isinstance(current_executor(), LocalExecutor)
    ray = executor_for(ExecutionConfig(engine="ray"))
    with use_executor(ray):
        assert current_executor() is ray
    assert isinstance(current_executor(), LocalExecutor)


def test_a_client_pickles_as_its_spec_and_cache_without_a_cluster(tmp_path):
    """Off Ray (no CallService), a pickled client reopens the same cache file and makes an equal backend."""
    spec = ModelSpec(backend="openai", model="m", base_url="http://127.0.0.1:9/v1", requests_per_minute=120)
    cache = CallCache(tmp_path / "llm.sqlite")
    cache.put("k", Completion(text="cached reply", model="m"))
    client = LLMClient(create_backend(spec), cache, limiter=RateLimiter(120))
    copy = pickle.loads(pickle.dumps(client))
    assert copy.uid == client.uid
    assert copy.backend.cache_identity() == client.backend.cache_identity()
    assert copy.cache.get("k").text == "cached reply"
    assert copy.limiter.requests_per_minute == 120
    copy.add_usage({"calls": 2, "prompt_tokens": 5})
    assert (copy.usage.calls, copy.usage.prompt_tokens) == (2, 5)


def test_a_scripted_backend_travels_with_its_queue():
    from doctune.llm.fake import FakeBackend

    backend = FakeBackend().add_replies("first")
    copy = pickle.loads(pickle.dumps(backend))
    assert copy.complete([Message(role="user", content="q")], copy.default_params()).text == "first"


def test_ray_plan_spreads_jobs_over_the_cluster():
    ex = RayExecutor(ExecutionConfig(engine="ray"))
    ex.cluster_cpus = lambda: 2  # type: ignore[method-assign]
    per_task, threads, in_flight = ex.plan(100, 8)
    assert per_task == 13 and in_flight == 4 and threads == 4  # 8 tasks, 2 running at a time, 4 threads each
    assert ex.plan(1, 8) == (1, 1, 4)
    ex.config = ExecutionConfig(engine="ray", jobs_per_task=5, max_tasks_in_flight=3)
    assert ex.plan(100, 1) == (5, 1, 3)


def test_an_unreachable_head_node_is_a_one_line_config_error():
    ex = RayExecutor(ExecutionConfig(engine="ray", address="127.0.0.1:1"))
    with pytest.raises(ConfigError) as err:
        ex._check_reachable()
    assert "no Ray head node answers" in str(err.value) and "127.0.0.1" not in str(err.value)
    assert "\n" not in str(err.value)


def test_the_cluster_address_is_never_saved_with_a_run():
    cfg = DoctuneConfig.model_validate({"execution": {"engine": "ray", "address": "ray://head.internal:10001"}})
    assert cfg.masked()["execution"]["address"] == "<ray client>"
    assert (
        DoctuneConfig.model_validate({"execution": {"address": "10.0.0.5:6379"}}).masked()["execution"]["address"]
        == "<ray cluster>"
    )
    with pytest.raises(Exception, match="engine"):
        DoctuneConfig.model_validate({"execution": {"engine": "spark"}})
