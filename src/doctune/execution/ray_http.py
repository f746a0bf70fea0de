"""Batch calls to an OpenAI-compatible endpoint through Ray Data LLM's HTTP request processor.

When the engine is Ray and every request is known up front (answering evaluation questions), the calls the
cache lacks become one Ray Data dataset posted by ``ray.data.llm``'s ``HttpRequestProcessorConfig`` actors
(``execution.http_concurrency`` of them, ``execution.http_batch_size`` requests per batch, ``qps`` from the
model's ``requests_per_minute``). Each reply is parsed exactly as the ``openai`` backend parses it and cached
here, as it streams back: a run killed midway keeps every reply it received.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from doctune.config_execution import ExecutionConfig
from doctune.llm.base import CallParams, Completion, Message
from doctune.llm.cache import call_key
from doctune.llm.client import LLMClient
from doctune.llm.openai_backend import OpenAIBackend
from doctune.progress import progress_bar

log = logging.getLogger(__name__)


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    return {"payload": row["payload"], "index": row["index"]}


def _reply(row: dict[str, Any]) -> dict[str, Any]:
    return {"index": row["index"], "reply": row.get("http_response")}


def chat_with_http_processor(
    client: LLMClient,
    conversations: Sequence[list[Message]],
    params: CallParams | None,
    cfg: ExecutionConfig,
    desc: str = "calls",
    progress: bool = True,
) -> list[Completion | Exception]:
    """One completion (or the exception of a failed call) per conversation, in order."""
    import ray
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    backend = client.backend
    assert isinstance(backend, OpenAIBackend)
    params = params or backend.default_params()
    identity = backend.cache_identity()
    keys = [call_key(identity, list(msgs), params, None) for msgs in conversations]
    out: list[Completion | Exception | None] = [None] * len(conversations)
    todo: list[int] = []
    for index, key in enumerate(keys):
        hit = client.cache.get(key) if client.cache is not None else None
        if hit is None:
            todo.append(index)
        else:
            out[index] = hit
    client.add_usage({"cache_hits": len(conversations) - len(todo)})
    if todo:
        spec = backend.spec
        api_key = spec.resolved_api_key()
        config = HttpRequestProcessorConfig(
            url=backend.chat_url(),
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            concurrency=cfg.http_concurrency,
            batch_size=cfg.http_batch_size,
            qps=max(1, spec.requests_per_minute // 60) if spec.requests_per_minute else None,
            max_retries=spec.max_retries,
            base_retry_wait_time_in_s=spec.retry_backoff_s,
        )
        processor = build_processor(config, preprocess=_payload, postprocess=_reply)
        rows = [{"index": i, "payload": backend.request_body(list(conversations[i]), params)} for i in todo]
        start = time.perf_counter()
        received = 0
        with progress_bar(total=len(todo), desc=f"{desc} (ray data)", unit="call", disable=not progress) as bar:
            try:
                for row in processor(ray.data.from_items(rows)).iter_rows():
                    index = int(row["index"])
                    received += 1
                    out[index] = _completion(client, backend, row["reply"], keys[index], start, received)
                    bar.update(1)
            except Exception as exc:  # the dataset failed (endpoint down after retries): the rest are errors
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning("%s: ray data http processor stopped after %d of %d calls: %s", desc, received,
                            len(todo), backend._redact(reason))  # fmt: skip
                for index in todo:
                    if out[index] is None:
                        out[index] = RuntimeError(backend._redact(f"not answered: {reason}"))
    return [o if o is not None else RuntimeError("not answered") for o in out]


def _completion(client: LLMClient, backend: OpenAIBackend, reply: Any, key: str, start: float, received: int):
    try:
        completion = backend.completion_from_body(dict(reply or {}), (time.perf_counter() - start) / received)
    except Exception as exc:
        client.add_usage({"failures": 1})
        return exc
    if client.cache is not None:
        client.cache.put(key, completion)
    client.add_usage(
        {
            "calls": 1,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency_s": completion.latency_s,
        }
    )
    return completion
