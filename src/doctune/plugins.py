"""What the model seams share: classes registered by name (built-ins, plus entry-point plugins) and
backend options validated with ``extra="forbid"`` so a typo in a config is an error naming the key."""

from __future__ import annotations

import logging
import sqlite3
from importlib.metadata import entry_points
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from doctune.config import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class PluginRegistry(Generic[T]):
    """Classes by their ``name``; third-party packages add theirs through an entry-point group."""

    def __init__(self, kind: str, group: str):
        self.kind = kind
        self.group = group
        self._classes: dict[str, type[T]] = {}
        self._entry_points_loaded = False

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: make ``cls`` available under ``cls.name``."""
        self._classes[cls.name] = cls  # type: ignore[attr-defined]
        return cls

    def unregister(self, name: str) -> None:
        self._classes.pop(name, None)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.group):
            try:
                self.register(ep.load())
            except Exception as exc:  # a broken plugin must not break the built-ins
                log.warning("%s plugin %s failed to load: %s", self.kind, ep.name, exc)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._classes)

    def get(self, name: str) -> type[T]:
        self._load_entry_points()
        try:
            return self._classes[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} '{name}' (available: {', '.join(self.names())})") from None


def validate_options(options_model: type[M], raw: dict, owner: str) -> M:
    """``raw`` validated as ``options_model``; a bad or unknown key is a ``ConfigError`` naming it."""
    try:
        return options_model.model_validate(raw)
    except ValidationError as exc:
        bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{owner} options: {bad}") from exc


def open_wal_database(path: Path, schema: str) -> sqlite3.Connection:
    """A SQLite connection in WAL mode, usable from several threads, with ``schema`` applied: each commit is
    durable against a killed process, and readers never block the writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses no committed write
    conn.execute(schema)
    return conn
