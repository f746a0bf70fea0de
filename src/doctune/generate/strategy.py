"""``generate.strategy: auto``: which recipe a generator model gets, by backend and model size."""

from __future__ import annotations

import logging

from doctune.llm.base import LLMBackend

log = logging.getLogger(__name__)

#: local weights under this size (a model of roughly 1B parameters or fewer) get the span recipe
SMALL_MODEL_BYTES = 2 * 1024**3


def resolve_strategy(strategy: str, backend: LLMBackend) -> str:
    """The strategy in force: ``strategy`` itself unless it is ``auto``; then ``span`` for a local model whose
    weights are under ``SMALL_MODEL_BYTES``, else ``one_call`` (endpoints, large local models, scripted fakes)."""
    if strategy != "auto":
        return strategy
    try:
        size = backend.weights_bytes()
    except Exception as exc:  # an unreadable model path is reported when the model loads, not here
        log.debug("weights size unknown (%s): one_call", exc)
        size = None
    chosen = "span" if size is not None and size < SMALL_MODEL_BYTES else "one_call"
    log.info(
        "generate.strategy auto -> %s (%s)",
        chosen,
        f"{size / 1e6:.0f} MB of local weights" if size else "no local weights",
    )
    return chosen
