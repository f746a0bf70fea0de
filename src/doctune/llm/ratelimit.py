"""A thread-safe requests-per-minute limiter: call starts are spaced evenly, no bursts."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        requests_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.requests_per_minute = requests_per_minute
        self.interval = 60.0 / requests_per_minute
        self.uid = uuid.uuid4().hex
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def __reduce__(self):
        """On Ray workers one limit for all of them (kept by the driver's CallService); elsewhere a fresh one."""
        from doctune.execution.service import remote_limiter

        return remote_limiter(self.uid, self.interval) or (RateLimiter, (self.requests_per_minute,))

    def acquire(self) -> float:
        """Block until this caller may start a request; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait
