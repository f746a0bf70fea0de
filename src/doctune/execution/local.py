"""The local executor: jobs on a thread pool of this process, scheduled by asyncio, with a progress bar."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from doctune.execution import Executor
from doctune.jobs import Job, JobResult, run_one, show_usage
from doctune.llm.client import LLMClient
from doctune.progress import progress_bar

log = logging.getLogger(__name__)


class LocalExecutor(Executor):
    """At most ``max_concurrency`` jobs at a time on threads (jobs mostly wait on I/O: model calls, sandboxes)."""

    name = "local"

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
        return asyncio.run(self._all(jobs, max_concurrency, client, desc, progress, is_failure, on_result))

    async def _all(self, jobs, max_concurrency, client, desc, progress, is_failure, on_result) -> list[JobResult]:
        loop = asyncio.get_running_loop()
        results: list[JobResult | None] = [None] * len(jobs)
        failed = 0
        with (
            ThreadPoolExecutor(max_workers=max(1, max_concurrency), thread_name_prefix="doctune-job") as pool,
            progress_bar(total=len(jobs), desc=desc, unit="job", disable=not progress) as bar,
        ):

            async def one(index: int, job: Job) -> None:
                nonlocal failed
                result = await loop.run_in_executor(pool, run_one, job)
                results[index] = result
                if result.error is not None or (is_failure is not None and is_failure(result)):
                    failed += 1
                if on_result is not None:
                    on_result(index, result)
                bar.update(1)
                show_usage(bar, client, failed)

            await asyncio.gather(*(one(i, job) for i, job in enumerate(jobs)))
        return [r for r in results if r is not None]
