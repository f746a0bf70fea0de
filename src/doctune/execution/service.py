"""How Ray workers share the call cache and rate limits: one actor on the driver's machine.

Workers are stateless. The SQLite call cache stays a file on the driver's local disk (SQLite over a network
file system is not safe); while a :class:`~doctune.execution.ray_engine.RayExecutor` is active, a
:class:`CallService` actor pinned to the driver's node opens it, and an ``LLMClient`` sent to a worker arrives
with a :class:`RemoteCallCache` that asks the actor (``get``) and stores each finished call through it (``put``)
before the call returns. So a worker killed mid-task loses only its calls in flight: the task's retry, or a
rerun of the stage, finds every finished call in the cache. A rate limit (``requests_per_minute``) is kept by
the same actor for all workers together.

Pickling does the switch: ``CallCache``, ``RateLimiter``, ``LLMClient`` and backends reduce through
:func:`remote_cache`, :func:`remote_limiter` and :func:`rebuild_client` here; without an active service they
pickle as plain local objects.
"""

from __future__ import annotations

import threading
import time
import weakref
from pathlib import Path
from typing import Any

from doctune.llm.base import Completion

_service: Any = None  # the CallService actor handle while a RayExecutor is active in this (driver) process
_drivers_clients: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # uid -> LLMClient (driver side)
_task_clients: dict[str, Any] = {}  # uid -> LLMClient rebuilt in this worker during the current task
_backends: dict[str, Any] = {}  # one backend per spec per worker process (a loaded model is loaded once)
_lock = threading.Lock()


def set_service(handle: Any) -> None:
    global _service
    _service = handle


def active_service() -> Any:
    return _service


class CallService:
    """The Ray actor (created by the executor with ``ray.remote``): caches by path, limiters by id."""

    def __init__(self) -> None:
        from doctune.llm.cache import CallCache

        self._cache_class = CallCache
        self._caches: dict[str, Any] = {}
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()

    def _cache(self, path: str):
        with self._lock:
            if path not in self._caches:
                self._caches[path] = self._cache_class(path)
            return self._caches[path]

    def get(self, path: str, key: str) -> str | None:
        hit = self._cache(path).get(key)
        return None if hit is None else hit.model_dump_json()

    def put(self, path: str, key: str, completion_json: str) -> bool:
        self._cache(path).put(key, Completion.model_validate_json(completion_json))
        return True

    def size(self, path: str) -> int:
        return len(self._cache(path))

    def acquire(self, limiter_id: str, interval_s: float) -> float:
        """Seconds the caller must wait before its request (starts spaced ``interval_s`` apart, all workers)."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(limiter_id, 0.0))
            self._next_slot[limiter_id] = slot + interval_s
        return slot - now


class RemoteCallCache:
    """A ``CallCache`` on a worker: every get and put goes to the driver's :class:`CallService`."""

    def __init__(self, service: Any, path: str):
        self.service, self.path = service, Path(path)

    def get(self, key: str) -> Completion | None:
        import ray

        found = ray.get(self.service.get.remote(str(self.path), key))
        return None if found is None else Completion.model_validate_json(found).model_copy(update={"cached": True})

    def put(self, key: str, completion: Completion) -> None:
        import ray

        ray.get(self.service.put.remote(str(self.path), key, completion.model_dump_json()))  # durable on return

    def __len__(self) -> int:
        import ray

        return ray.get(self.service.size.remote(str(self.path)))

    def close(self) -> None:
        pass

    def __reduce__(self):
        return (RemoteCallCache, (self.service, str(self.path)))


class RemoteRateLimiter:
    """A ``RateLimiter`` shared by every worker through the :class:`CallService`."""

    def __init__(self, service: Any, limiter_id: str, interval_s: float):
        self.service, self.limiter_id, self.interval = service, limiter_id, interval_s

    def acquire(self) -> float:
        import ray

        wait = ray.get(self.service.acquire.remote(self.limiter_id, self.interval))
        if wait > 0:
            time.sleep(wait)
        return wait

    def __reduce__(self):
        return (RemoteRateLimiter, (self.service, self.limiter_id, self.interval))


def remote_cache(path: Path) -> tuple | None:
    """How a ``CallCache`` at ``path`` pickles while a service is active (else ``None``)."""
    return None if _service is None else (RemoteCallCache, (_service, str(path)))


def remote_limiter(limiter_id: str, interval_s: float) -> tuple | None:
    return None if _service is None else (RemoteRateLimiter, (_service, limiter_id, interval_s))


def register_client(client: Any) -> None:
    """Remember a driver-side client by its uid, so usage counted on workers is added back to it."""
    _drivers_clients[client.uid] = client


def backend_for(spec: Any) -> Any:
    """The backend of ``spec`` in this process, created once (a worker reuses a loaded model across tasks)."""
    from doctune.llm.registry import create_backend

    key = spec.model_dump_json()
    with _lock:
        if key not in _backends:
            _backends[key] = create_backend(spec)
        return _backends[key]


def rebuild_client(uid: str, state: dict[str, Any]) -> Any:
    """An ``LLMClient`` arriving on a worker; one object per uid within a task (so its usage is counted once)."""
    from doctune.llm.client import LLMClient

    with _lock:
        if uid in _task_clients:
            return _task_clients[uid]
    client = LLMClient.from_state(uid, state)
    with _lock:
        return _task_clients.setdefault(uid, client)


def task_usage() -> dict[str, dict[str, Any]]:
    """Usage counted in this task, by client uid (sent back with the task's results); the task's clients are
    forgotten (the next task's arguments bring their own)."""
    with _lock:
        usage = {uid: c.usage.as_dict() for uid, c in _task_clients.items()}
        _task_clients.clear()
    return usage


def add_usage(usage: dict[str, dict[str, Any]]) -> None:
    """Driver side: add a task's usage to the clients it came from."""
    for uid, counts in usage.items():
        client = _drivers_clients.get(uid)
        if client is not None:
            client.add_usage(counts)
