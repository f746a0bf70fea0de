"""LLM backends behind one small interface. Importing this package registers the built-ins
(the modules only define classes: no model is loaded and no connection made at import)."""

from doctune.llm import fake, hf, local, openai_backend, vllm_backend  # noqa: F401  (registration)
from doctune.llm.base import BackendError, CallParams, Completion, LLMBackend, Message
from doctune.llm.client import LLMClient, StructuredOutputError
from doctune.llm.registry import backend_class, backend_names, create_backend, register_backend

__all__ = [
    "BackendError",
    "CallParams",
    "Completion",
    "LLMBackend",
    "LLMClient",
    "Message",
    "StructuredOutputError",
    "backend_class",
    "backend_names",
    "create_backend",
    "register_backend",
]
