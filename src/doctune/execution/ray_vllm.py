"""Batch calls of a ``backend: vllm`` model through Ray Data LLM's vLLM engine processor (engine ``ray``).

The calls the cache lacks become one Ray Data dataset served by ``execution.vllm_replicas`` vLLM engines
(``ray.data.llm.vLLMEngineProcessorConfig``; each replica takes the backend's ``tensor_parallel_size`` GPUs), with
the backend's engine options and, when ``options.lora`` names an adapter, that adapter by name from its parent
folder (``dynamic_lora_loading_path``). Each reply is cached here as it streams back. Needs CUDA and the ``vllm``
extra on the workers; tested through a faked ``ray.data.llm``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from doctune.config_execution import ExecutionConfig
from doctune.llm.base import CallParams, Completion, Message
from doctune.llm.cache import call_key
from doctune.llm.client import LLMClient
from doctune.progress import progress_bar

log = logging.getLogger(__name__)


def _reply(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": row["index"],
        "text": row.get("generated_text") or "",
        "prompt_tokens": row.get("num_input_tokens") or 0,
        "completion_tokens": row.get("num_generated_tokens") or 0,
    }


def processor_config(backend: Any, cfg: ExecutionConfig) -> dict[str, Any]:
    """The keyword arguments of ``vLLMEngineProcessorConfig`` for a ``vllm`` backend."""
    opts = backend.options
    engine: dict[str, Any] = {
        "tensor_parallel_size": opts.tensor_parallel_size,
        "gpu_memory_utilization": opts.gpu_memory_utilization,
        "dtype": opts.dtype,
    }
    if opts.max_model_len:
        engine["max_model_len"] = opts.max_model_len
    kwargs: dict[str, Any] = {
        "model_source": backend.spec.model,
        "engine_kwargs": engine,
        "concurrency": cfg.vllm_replicas,
        "batch_size": cfg.vllm_batch_size,
    }
    if opts.lora:
        engine.update(enable_lora=True, max_lora_rank=opts.max_lora_rank)
        kwargs["dynamic_lora_loading_path"] = str(Path(opts.lora).expanduser().parent)
    return kwargs


def chat_with_vllm_processor(
    client: LLMClient,
    conversations: Sequence[list[Message]],
    params: CallParams | None,
    cfg: ExecutionConfig,
    desc: str = "calls",
    progress: bool = True,
) -> list[Completion | Exception]:
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    backend = client.backend
    params = params or backend.default_params()
    keys = [call_key(backend.cache_identity(), list(c), params, None) for c in conversations]
    out: list[Completion | Exception | None] = [client.cache.get(k) if client.cache else None for k in keys]
    todo = [i for i, hit in enumerate(out) if hit is None]
    client.add_usage({"cache_hits": len(keys) - len(todo)})
    if not todo:
        return [o for o in out if o is not None]
    adapter = Path(backend.options.lora).expanduser().name if backend.options.lora else None
    sampling = {"temperature": params.temperature, "max_tokens": params.max_tokens, "seed": params.seed}

    def prepare(row: dict[str, Any]) -> dict[str, Any]:
        prepared = {"index": row["index"], "messages": row["messages"], "sampling_params": sampling}
        if adapter:
            prepared["model"] = adapter
        return prepared

    processor = build_processor(
        vLLMEngineProcessorConfig(**processor_config(backend, cfg)), preprocess=prepare, postprocess=_reply
    )
    rows = [{"index": i, "messages": [m.model_dump() for m in conversations[i]]} for i in todo]
    start, received = time.perf_counter(), 0
    with progress_bar(total=len(todo), desc=f"{desc} (ray data vllm)", unit="call", disable=not progress) as bar:
        try:
            for row in processor(ray.data.from_items(rows)).iter_rows():
                index, received = int(row["index"]), received + 1
                completion = Completion(
                    text=row["text"],
                    model=backend.label(),
                    prompt_tokens=int(row["prompt_tokens"]),
                    completion_tokens=int(row["completion_tokens"]),
                    latency_s=(time.perf_counter() - start) / received,
                )
                if client.cache is not None:
                    client.cache.put(keys[index], completion)
                client.add_usage({"calls": 1, "prompt_tokens": completion.prompt_tokens,
                                  "completion_tokens": completion.completion_tokens})  # fmt: skip
                out[index] = completion
                bar.update(1)
        except Exception as exc:  # the dataset failed: the calls not answered report why
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("%s: ray data vllm processor stopped after %d of %d calls: %s", desc, received, len(todo),
                        reason)  # fmt: skip
            for index in todo:
                if out[index] is None:
                    out[index] = RuntimeError(f"not answered: {reason}")
    return [o if o is not None else RuntimeError("not answered") for o in out]
