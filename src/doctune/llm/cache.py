"""On-disk cache of LLM calls keyed by a content hash of (backend identity and options, messages, params, schema).

SQLite in WAL mode: every finished call is committed at once, so a run killed at any point resumes
without repeating the calls it had finished, and concurrent writers are safe.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from doctune.llm.base import CallParams, Completion, Message
from doctune.plugins import open_wal_database


def call_key(
    backend: dict[str, Any] | str, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None
) -> str:
    """The cache key of one call: ``backend`` is ``LLMBackend.cache_identity()`` (identity and options)."""
    payload = {
        "backend": backend,
        "messages": [m.model_dump() for m in messages],
        "params": params.model_dump(),
        "schema": json_schema,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class CallCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def __reduce__(self):
        """On a Ray worker the cache is the driver's, through its CallService; elsewhere this file reopened."""
        from doctune.execution.service import remote_cache

        return remote_cache(self.path) or (CallCache, (self.path,))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_wal_database(
                self.path, "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, completion TEXT NOT NULL)"
            )
        return self._conn

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._connection().execute("SELECT completion FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Completion.model_validate_json(row[0]).model_copy(update={"cached": True})

    def put(self, key: str, completion: Completion) -> None:
        with self._lock:
            conn = self._connection()
            conn.execute(
                "INSERT OR REPLACE INTO calls (key, completion) VALUES (?, ?)", (key, completion.model_dump_json())
            )
            conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._connection().execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
