"""Backends found by name. Built-ins register themselves on import of ``doctune.llm``; third-party
packages add theirs through the ``doctune.backends`` entry-point group."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from doctune.config import ConfigError, ModelSpec
from doctune.llm.base import LLMBackend

log = logging.getLogger(__name__)
_BACKENDS: dict[str, type[LLMBackend]] = {}
_ENTRY_POINTS_LOADED = False


def register_backend(cls: type[LLMBackend]) -> type[LLMBackend]:
    """Class decorator: make a backend available under ``cls.name``."""
    _BACKENDS[cls.name] = cls
    return cls


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in entry_points(group="doctune.backends"):
        try:
            register_backend(ep.load())
        except Exception as exc:  # a broken plugin must not break the built-ins
            log.warning("backend plugin %s failed to load: %s", ep.name, exc)


def backend_names() -> list[str]:
    _load_entry_points()
    return sorted(_BACKENDS)


def backend_class(name: str) -> type[LLMBackend]:
    _load_entry_points()
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend '{name}' (available: {', '.join(backend_names())})") from None


def create_backend(spec: ModelSpec) -> LLMBackend:
    """Instantiate the backend a spec names. Cheap: no network, no model load."""
    return backend_class(spec.backend)(spec)
