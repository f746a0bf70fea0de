"""The job runner every stage shares: many independent jobs run concurrently, with a progress bar.

Jobs are plain functions (they call an ``LLMClient``, which caches, retries and rate-limits each
call); asyncio schedules them on a thread pool sized to the backend's ``max_concurrency``. A job
that raises is reported as its exception: one failure never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from doctune.llm.client import LLMClient
from doctune.progress import progress_bar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Job(Generic[T]):
    key: str
    run: Callable[[], T]


@dataclass
class JobResult(Generic[T]):
    key: str
    value: T | None = None
    error: BaseException | None = None


def run_jobs(
    jobs: Sequence[Job[T]],
    max_concurrency: int,
    client: LLMClient | None = None,
    desc: str = "generate",
    progress: bool = True,
    is_failure: Callable[[JobResult[T]], bool] | None = None,
) -> list[JobResult[T]]:
    """Run ``jobs`` at most ``max_concurrency`` at a time; results come back in the jobs' order."""
    return asyncio.run(_run_all(jobs, max_concurrency, client, desc, progress, is_failure))


async def _run_all(jobs, max_concurrency, client, desc, progress, is_failure) -> list[JobResult]:
    loop = asyncio.get_running_loop()
    results: list[JobResult | None] = [None] * len(jobs)
    failed = 0
    with (
        ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="doctune-llm") as pool,
        progress_bar(total=len(jobs), desc=desc, unit="req", disable=not progress) as bar,
    ):

        async def one(index: int, job: Job) -> None:
            nonlocal failed
            try:
                value = await loop.run_in_executor(pool, job.run)
                result = JobResult(job.key, value=value)
            except Exception as exc:  # a failed job is data, not a crash
                log.debug("job %s failed: %s", job.key, exc)
                result = JobResult(job.key, error=exc)
            results[index] = result
            if result.error is not None or (is_failure is not None and is_failure(result)):
                failed += 1
            bar.update(1)
            if client is not None:
                u = client.usage
                bar.set_postfix(
                    failed=failed, calls=u.calls, cached=u.cache_hits, tokens=u.prompt_tokens + u.completion_tokens
                )

        await asyncio.gather(*(one(i, job) for i, job in enumerate(jobs)))
    return [r for r in results if r is not None]
