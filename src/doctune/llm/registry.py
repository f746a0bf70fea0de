"""Backends found by name. Built-ins register themselves on import of ``doctune.llm``; third-party
packages add theirs through the ``doctune.backends`` entry-point group."""

from __future__ import annotations

from doctune.config import ModelSpec
from doctune.llm.base import LLMBackend
from doctune.plugins import PluginRegistry

BACKENDS: PluginRegistry[LLMBackend] = PluginRegistry("backend", "doctune.backends")
register_backend = BACKENDS.register
backend_names = BACKENDS.names
backend_class = BACKENDS.get


def create_backend(spec: ModelSpec) -> LLMBackend:
    """Instantiate the backend a spec names. Cheap: no network, no model load."""
    return backend_class(spec.backend)(spec)
