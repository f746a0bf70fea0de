"""The Ray executor: a stage's jobs go to Ray workers in batches; results and rows stay with the driver.

Each Ray task takes a batch of jobs (cloudpickled callables: the stage's function and its inputs, with any
``LLMClient`` travelling as its spec plus the driver's call cache, see :mod:`doctune.execution.service`), runs
them on a few threads and returns their results together with the LLM usage counted. The driver writes every
artifact, in the jobs' order, exactly as with the local engine, so the artifacts do not depend on the engine.

A task whose worker dies is run again by Ray (``execution.task_retries``); the calls it had finished come from
the cache. A task that still fails marks its jobs as failed, with the reason, and the stage goes on.
"""

from __future__ import annotations

import logging
import math
import pickle
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from doctune.config import ConfigError
from doctune.config_execution import ExecutionConfig
from doctune.execution import Executor, service
from doctune.jobs import Job, JobResult, run_one, show_usage
from doctune.llm.client import LLMClient
from doctune.progress import progress_bar

log = logging.getLogger(__name__)


class RemoteJobError(RuntimeError):
    """A job's exception that could not travel back from its worker (it is described instead)."""


def _run_batch(batch: list[tuple[int, Job]], threads: int) -> tuple[list[tuple[int, JobResult]], dict]:
    """The body of one Ray task: the batch's jobs on ``threads`` threads, then the usage they counted."""
    try:
        if threads <= 1:
            done = [(index, run_one(job)) for index, job in batch]
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="doctune-task") as pool:
                done = list(zip([i for i, _ in batch], pool.map(run_one, [j for _, j in batch]), strict=True))
        return [(index, _sendable(result)) for index, result in done], service.task_usage()
    finally:
        service.task_usage()  # forget this task's clients even when it failed


def _sendable(result: JobResult) -> JobResult:
    if result.error is None:
        return result
    try:
        pickle.loads(pickle.dumps(result.error))
        return result
    except Exception:
        return JobResult(result.key, error=RemoteJobError(f"{type(result.error).__name__}: {result.error}"))


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, config: ExecutionConfig):
        self.config = config
        self._remote_batch: Any = None
        self._service: Any = None
        self._started_ray = False

    # -- connection ----------------------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._remote_batch is not None:
            return
        try:
            import ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        except ImportError:
            raise ConfigError(
                "execution.engine: ray needs Ray: pip install 'doctune[ray]' (or set execution.engine: local)"
            ) from None
        if not ray.is_initialized():
            self._check_reachable()
            kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
            if self.config.address == "local":
                kwargs["num_cpus"] = self.config.num_cpus
            else:
                kwargs["address"] = self.config.address
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"execution.address {self.config.address_label()}: cannot reach a Ray cluster "
                    f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); start one with "
                    "`ray start --head` or use `address: local`"
                ) from None
            self._started_ray = True
        here = ray.get_runtime_context().get_node_id()
        actor = ray.remote(num_cpus=0, max_concurrency=32)(service.CallService)
        self._service = actor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()
        service.set_service(self._service)
        self._remote_batch = ray.remote(num_cpus=1)(_run_batch)
        log.info("ray: %s CPUs in the cluster", self.cluster_cpus())

    def _check_reachable(self) -> None:
        """A head node named by ``host:port`` (or ``ray://host:port``) must accept a connection within seconds;
        Ray itself would retry for minutes before saying no."""
        address = self.config.address.removeprefix("ray://")
        if self.config.address in ("auto", "local") or ":" not in address:
            return
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=5):
                pass
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"execution.address {self.config.address_label()}: no Ray head node answers there ({exc}); start "
                "one with `ray start --head` or fix the address"
            ) from None

    def cluster_cpus(self) -> int:
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine": "ray", "address": self.config.address_label()}
        if self._remote_batch is not None:
            out["cluster_cpus"] = self.cluster_cpus()
        return out

    def close(self) -> None:
        if self._remote_batch is None:
            return
        import ray

        service.set_service(None)
        self._remote_batch = self._service = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    # -- running -------------------------------------------------------------------------------------------
    def chat_many(self, client, conversations, params=None, max_concurrency=None, desc="calls", progress=True):
        """Known-up-front calls: through Ray Data LLM's HTTP processor for an OpenAI-compatible endpoint, its vLLM
        engine processor for a ``vllm`` model, else as Ray tasks (``Executor.chat_many``)."""
        from doctune.llm.openai_backend import OpenAIBackend
        from doctune.llm.vllm_backend import VLLMBackend

        if isinstance(client.backend, OpenAIBackend) and conversations:
            self._ensure_started()
            from doctune.execution.ray_http import chat_with_http_processor

            return chat_with_http_processor(client, conversations, params, self.config, desc, progress)
        if isinstance(client.backend, VLLMBackend) and conversations:
            self._ensure_started()
            from doctune.execution.ray_vllm import chat_with_vllm_processor

            return chat_with_vllm_processor(client, conversations, params, self.config, desc, progress)
        return super().chat_many(client, conversations, params, max_concurrency, desc, progress)

    def plan(self, n_jobs: int, max_concurrency: int) -> tuple[int, int, int]:
        """(jobs per task, threads per task, tasks in flight) for ``n_jobs`` jobs."""
        cpus = self.cluster_cpus()
        per_task = self.config.jobs_per_task or max(1, math.ceil(n_jobs / (4 * cpus)))
        running = max(1, min(cpus, math.ceil(n_jobs / per_task)))
        threads = max(1, min(per_task, math.ceil(max(1, max_concurrency) / running)))
        return per_task, threads, self.config.max_tasks_in_flight or 2 * cpus

    def run_jobs(
        self,
        jobs: Sequence[Job],
        max_concurrency: int,
        client: LLMClient | None = None,
        desc: str = "jobs",
        progress: bool = True,
        is_failure: Callable[[JobResult], bool] | None = None,
        on_result: Callable[[int, JobResult], None] | None = None,
    ) -> list[JobResult]:
        if not jobs:
            return []
        self._ensure_started()
        import ray

        per_task, threads, in_flight = self.plan(len(jobs), max_concurrency)
        indexed = list(enumerate(jobs))
        batches = [indexed[i : i + per_task] for i in range(0, len(indexed), per_task)]
        results: list[JobResult | None] = [None] * len(jobs)
        failed = 0
        warned = False
        pending: dict[Any, list[tuple[int, Job]]] = {}
        waiting = list(reversed(batches))
        options = {"max_retries": self.config.task_retries}
        with progress_bar(total=len(jobs), desc=f"{desc} (ray)", unit="job", disable=not progress) as bar:

            def settle(index: int, result: JobResult) -> None:
                nonlocal failed
                results[index] = result
                failed += result.error is not None or (is_failure is not None and is_failure(result))
                if on_result is not None:
                    on_result(index, result)

            while waiting or pending:
                while waiting and len(pending) < in_flight:
                    batch = waiting.pop()
                    try:
                        pending[self._remote_batch.options(**options).remote(batch, threads)] = batch
                    except Exception as exc:  # a job that cannot be pickled: it runs here, said once per stage
                        if not warned:
                            log.warning("%s: jobs cannot be sent to Ray (%s); running them in this process",
                                        desc, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)  # fmt: skip
                            warned = True
                        for index, job in batch:
                            settle(index, run_one(job))
                        bar.update(len(batch))
                if not pending:
                    continue
                ready, _ = ray.wait(list(pending), num_returns=1)
                batch = pending.pop(ready[0])
                try:
                    done, usage = ray.get(ready[0])
                except Exception as exc:  # the task failed after its retries (a worker died, out of memory)
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    log.warning("ray task of %d jobs failed: %s", len(batch), reason)
                    done = [(i, JobResult(j.key, error=RemoteJobError(reason))) for i, j in batch]
                    usage = {}
                service.add_usage(usage)
                for index, result in done:
                    settle(index, result)
                bar.update(len(batch))
                show_usage(bar, client, failed)
        return [r for r in results if r is not None]
