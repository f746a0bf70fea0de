"""Config section ``execution``: where map-style work runs (this process's threads, or a Ray cluster).

Nothing here changes what a stage produces: artifacts are the same on every engine (it is not part of any
artifact's staleness hash), only where and how fast the work runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ExecutionConfig(BaseModel):
    """The engine that runs each stage's independent jobs (parse a file, chunk a document, generate for a unit,
    embed a batch, answer, grade)."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["local", "ray"] = Field(
        "local",
        description="`local`: threads of this process (the default, no extra install). `ray`: Ray tasks on the "
        "cluster named by `address` (install the `ray` extra); the driver still writes every artifact and owns "
        "the call cache.",
    )
    address: str = Field(
        "auto",
        description="The Ray cluster: `auto` (the one `ray start` runs on this machine, or RAY_ADDRESS: the case "
        "under `ray job submit`), `host:port` of a head node, `ray://host:10001` (Ray Client), or `local` (a "
        "private one-machine Ray started for this run).",
    )
    num_cpus: int | None = Field(
        None, ge=1, description="With `address: local` only: CPUs the private Ray may use (default: all)."
    )
    jobs_per_task: int = Field(
        0,
        ge=0,
        description="Jobs sent to a worker in one Ray task (0: automatic, about four tasks per cluster CPU). "
        "Larger batches cost less scheduling; smaller ones lose less when a worker dies.",
    )
    max_tasks_in_flight: int = Field(
        0, ge=0, description="Ray tasks submitted and not yet finished (0: twice the cluster's CPUs)."
    )
    task_retries: int = Field(
        3,
        ge=0,
        description="Times a task whose worker died is run again; its finished LLM calls come from the cache.",
    )
    http_concurrency: int = Field(
        2,
        ge=1,
        description="Ray Data LLM HTTP processor actors for batch calls to an OpenAI-compatible endpoint "
        "(answering evaluation questions on engine ray).",
    )
    http_batch_size: int = Field(16, ge=1, description="Requests per batch of the Ray Data LLM HTTP processor.")
    vllm_replicas: int = Field(
        1,
        ge=1,
        description="vLLM engine replicas of Ray Data LLM's vLLM processor for batch calls of a `backend: vllm` "
        "model on engine ray (each takes the backend's tensor_parallel_size GPUs).",
    )
    vllm_batch_size: int = Field(32, ge=1, description="Requests per batch sent to one vLLM engine replica.")

    def address_label(self) -> str:
        """The address as saved with a run: `auto`/`local` as is, a cluster's host never (it may be internal)."""
        if self.address in ("auto", "local"):
            return self.address
        return "<ray client>" if self.address.startswith("ray://") else "<ray cluster>"
