"""Clients for the model roles of a config (generator, judge, rephraser, embedder, student)."""

from __future__ import annotations

from doctune.config import ROLES, ConfigError, DoctuneConfig
from doctune.llm.cache import CallCache
from doctune.llm.client import LLMClient
from doctune.llm.ratelimit import RateLimiter
from doctune.llm.registry import create_backend
from doctune.workspace import Workspace


def call_cache(workspace: Workspace) -> CallCache:
    return CallCache(workspace.cache_dir / "llm.sqlite")


def open_client(config: DoctuneConfig, workspace: Workspace, role: str) -> LLMClient:
    """A cached client for ``role``; the backend is created but nothing is loaded or contacted yet."""
    if role not in ROLES:
        raise ConfigError(f"unknown model role '{role}' (roles: {', '.join(ROLES)})")
    spec = getattr(config.models, role)
    limiter = RateLimiter(spec.requests_per_minute) if spec.requests_per_minute else None
    return LLMClient(
        create_backend(spec),
        call_cache(workspace),
        max_retries=spec.max_retries,
        backoff_s=spec.retry_backoff_s,
        limiter=limiter,
    )
