"""The job runner every stage shares: many independent jobs, run by the active executor, with a progress bar.

Jobs are plain callables (an LLM job calls an ``LLMClient``, which caches, retries and rate-limits each call).
Where they run is the executor's business (:mod:`doctune.execution`: this process's threads by default, Ray
tasks with ``execution.engine: ray``); a job that raises is reported as its exception: one failure never stops
the others, and results come back in the jobs' order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from doctune.llm.client import LLMClient

log = logging.getLogger(__name__)
T = TypeVar("T")
X = TypeVar("X")


@dataclass
class Job(Generic[T]):
    key: str
    run: Callable[[], T]


@dataclass
class JobResult(Generic[T]):
    key: str
    value: T | None = None
    error: BaseException | None = None


def run_one(job: Job[T]) -> JobResult[T]:
    """Run one job here; its exception becomes its result (a failed job is data, not a crash)."""
    try:
        return JobResult(job.key, value=job.run())
    except Exception as exc:
        log.debug("job %s failed: %s", job.key, exc)
        return JobResult(job.key, error=exc)


def show_usage(bar: Any, client: LLMClient | None, failed: int) -> None:
    """The progress bar's postfix: failures so far and, with a client, its calls, cache hits and tokens."""
    if client is None:
        bar.set_postfix(failed=failed)
        return
    u = client.usage
    bar.set_postfix(failed=failed, calls=u.calls, cached=u.cache_hits, tokens=u.prompt_tokens + u.completion_tokens)


def run_jobs(
    jobs: Sequence[Job[T]],
    max_concurrency: int,
    client: LLMClient | None = None,
    desc: str = "generate",
    progress: bool = True,
    is_failure: Callable[[JobResult[T]], bool] | None = None,
    on_result: Callable[[int, JobResult[T]], None] | None = None,
) -> list[JobResult[T]]:
    """Run ``jobs`` on the active executor, at most ``max_concurrency`` at a time on the local one; results come
    back in the jobs' order. ``on_result(index, result)`` runs here as each result arrives (e.g. to cache it)."""
    from doctune.execution import current_executor

    return current_executor().run_jobs(jobs, max_concurrency, client, desc, progress, is_failure, on_result)


def map_items(
    fn: Callable[[X], T],
    items: Sequence[X],
    max_concurrency: int = 1,
    desc: str = "jobs",
    progress: bool = True,
    keys: Sequence[str] | None = None,
) -> list[JobResult[T]]:
    """``fn`` over ``items`` as jobs on the active executor (module-level ``fn`` and picklable items travel to
    Ray workers); one result per item, in order."""
    names = keys if keys is not None else [str(i) for i in range(len(items))]
    jobs = [Job(key, partial(fn, item)) for key, item in zip(names, items, strict=True)]
    return run_jobs(jobs, max_concurrency, None, desc, progress)
