"""Executors: where the shared job runner's jobs run.

Every stage hands its independent jobs (parse a file, chunk a document, generate for a unit, embed a batch,
answer a question, grade a reply) to :func:`doctune.jobs.run_jobs`, which runs them on the active executor:

- ``local`` (:class:`~doctune.execution.local.LocalExecutor`): this process's thread pool, the default;
- ``ray`` (:class:`~doctune.execution.ray_engine.RayExecutor`): batches of jobs as Ray tasks on a cluster.

The engine is chosen once per command from the config's ``execution`` section (:func:`activate`); nothing else
reads it. The driver (this process) keeps writing every artifact, so a stage's rows are the same on both
engines, and the call cache stays one SQLite file on the driver's disk (see :mod:`doctune.execution.service`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doctune.config_execution import ExecutionConfig
    from doctune.jobs import Job, JobResult
    from doctune.llm.base import CallParams, Completion, Message
    from doctune.llm.client import LLMClient

log = logging.getLogger(__name__)


class Executor(ABC):
    """Runs jobs; results come back in the jobs' order, a job that raised as its exception."""

    name: str = "executor"

    @abstractmethod
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
        """``on_result(index, result)`` is called in this process as each job's result arrives."""

    def chat_many(
        self,
        client: LLMClient,
        conversations: Sequence[list[Message]],
        params: CallParams | None = None,
        max_concurrency: int | None = None,
        desc: str = "calls",
        progress: bool = True,
    ) -> list[Completion | Exception]:
        """One call per conversation through ``client`` (cached); a failed call is its exception. Calls known up
        front: an engine may batch them (Ray Data LLM on ``ray``)."""
        from doctune.jobs import Job

        if hasattr(client.backend, "complete_batch") and conversations:  # offline batch inference (vLLM)
            try:
                return list(client.chat_batch([list(m) for m in conversations], params))
            except Exception as exc:  # the whole batch failed: every call reports it
                return [exc] * len(conversations)
        jobs = [Job(str(i), _ChatCall(client, list(msgs), params)) for i, msgs in enumerate(conversations)]
        concurrency = max_concurrency or client.backend.spec.max_concurrency
        results = self.run_jobs(jobs, concurrency, client, desc, progress)
        return [r.error if r.error is not None else r.value for r in results]

    def describe(self) -> dict[str, Any]:
        """What ran the work, for a run's record (no host names)."""
        return {"engine": self.name}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the executor holds (a Ray connection)."""


class _ChatCall:
    def __init__(self, client: LLMClient, messages: list[Message], params: CallParams | None):
        self.client, self.messages, self.params = client, messages, params

    def __call__(self) -> Completion:
        return self.client.chat(self.messages, self.params)


_active: Executor | None = None


def current_executor() -> Executor:
    """The executor of this process (local threads unless :func:`activate` chose another)."""
    global _active
    if _active is None:
        from doctune.execution.local import LocalExecutor

        _active = LocalExecutor()
    return _active


def executor_for(cfg: ExecutionConfig) -> Executor:
    """A new executor for an ``execution`` config section (nothing is started until it first runs a job)."""
    if cfg.engine == "ray":
        from doctune.execution.ray_engine import RayExecutor

        return RayExecutor(cfg)
    from doctune.execution.local import LocalExecutor

    return LocalExecutor()


def activate(cfg: ExecutionConfig) -> Executor:
    """Make ``cfg``'s engine this process's executor (called once per command, where the config is loaded)."""
    global _active
    if _active is not None and getattr(_active, "config", None) == cfg:
        return _active
    if _active is not None:
        _active.close()
    _active = executor_for(cfg)
    return _active


@contextmanager
def use_executor(executor: Executor) -> Iterator[Executor]:
    """Run the block with ``executor`` active, then restore the previous one (tests, benchmarks, libraries)."""
    global _active
    previous, _active = _active, executor
    try:
        yield executor
    finally:
        _active = previous
