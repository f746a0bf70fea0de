"""vLLM in-process (``backend: vllm``): offline batch inference on GPUs, with a LoRA adapter when one is given.

For corpora that outgrow an endpoint: the model is loaded once into this process by ``vllm.LLM`` and every call
(or, through :meth:`VLLMBackend.complete_batch`, a whole batch of calls in one ``LLM.chat``) runs on it. A
``lora`` option names a PEFT adapter folder (a doctune training run's adapter): it is applied per request through
``vllm.lora.request.LoRARequest``. JSON schemas are enforced by vLLM's structured outputs.

``vllm`` needs CUDA: it is the ``vllm`` extra, which ``make install`` never installs. Importing this module
imports nothing of vLLM; the first call does, and a missing package is one clear error.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from doctune.config import ModelSpec
from doctune.llm.base import BackendError, CallParams, Completion, LLMBackend, Message
from doctune.llm.registry import register_backend

MISSING = "the vllm backend needs the `vllm` package (a CUDA machine): pip install 'doctune[vllm]'"


@register_backend
class VLLMBackend(LLMBackend):
    name: ClassVar[str] = "vllm"
    supports_json_schema: ClassVar[bool] = True

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        lora: str | None = Field(None, description="A PEFT LoRA adapter folder applied to every request.")
        max_lora_rank: int = Field(64, ge=1, description="Largest LoRA rank the engine reserves room for.")
        tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split over.")
        gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of GPU memory vLLM may take.")
        max_model_len: int | None = Field(None, ge=256, description="Context window; default: the model's.")
        dtype: str = Field("auto", description="Weights' dtype (auto, bfloat16, float16).")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        if not spec.model:
            raise BackendError("backend vllm needs `model`: a Hugging Face model folder or id")
        self._llm: Any = None
        self._lock = threading.Lock()

    def identity(self) -> str:
        lora = Path(self.options.lora).name if self.options.lora else ""
        return f"vllm:{self.spec.model}" + (f"+lora:{lora}" if lora else "")

    def label(self) -> str:
        return self.spec.label or f"vllm:{Path(self.spec.model or '').name}"  # a folder's name, never its full path

    def _engine(self) -> Any:
        if self._llm is None:
            try:
                import vllm
            except ImportError as exc:
                raise BackendError(MISSING) from exc
            kwargs: dict[str, Any] = {
                "model": self.spec.model,
                "tensor_parallel_size": self.options.tensor_parallel_size,
                "gpu_memory_utilization": self.options.gpu_memory_utilization,
                "dtype": self.options.dtype,
                "seed": self.spec.seed,
            }
            if self.options.max_model_len:
                kwargs["max_model_len"] = self.options.max_model_len
            if self.options.lora:
                kwargs.update(enable_lora=True, max_lora_rank=self.options.max_lora_rank)
            self._llm = vllm.LLM(**kwargs)
        return self._llm

    def _lora_request(self) -> Any:
        if not self.options.lora:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest("doctune-adapter", 1, str(Path(self.options.lora).expanduser()))

    @staticmethod
    def _sampling(params: CallParams, json_schema: dict[str, Any] | None) -> Any:
        import vllm

        kwargs: dict[str, Any] = {
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
        }
        if json_schema is not None:
            try:  # vLLM >= 0.11
                from vllm.sampling_params import StructuredOutputsParams

                kwargs["structured_outputs"] = StructuredOutputsParams(json=json_schema)
            except ImportError:  # older releases
                from vllm.sampling_params import GuidedDecodingParams

                kwargs["guided_decoding"] = GuidedDecodingParams(json=json_schema)
        return vllm.SamplingParams(**kwargs)

    def complete(
        self, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None = None
    ) -> Completion:
        return self.complete_batch([messages], params, json_schema)[0]

    def complete_batch(
        self, conversations: list[list[Message]], params: CallParams, json_schema: dict[str, Any] | None = None
    ) -> list[Completion]:
        """Every conversation in one ``LLM.chat`` call (vLLM schedules them together): offline batch inference."""
        with self._lock:
            llm = self._engine()
            start = time.perf_counter()
            try:
                outputs = llm.chat(
                    [[m.model_dump() for m in conv] for conv in conversations],
                    self._sampling(params, json_schema),
                    lora_request=self._lora_request(),
                    use_tqdm=False,
                )
            except ValueError as exc:  # vLLM raises ValueError for prompts longer than the context
                raise BackendError(f"vllm: {exc}", kind="too_long") from exc
            latency = (time.perf_counter() - start) / max(1, len(conversations))
        completions = []
        for out in outputs:
            first = out.outputs[0]
            completions.append(
                Completion(
                    text=first.text,
                    model=self.label(),
                    prompt_tokens=len(out.prompt_token_ids or []),
                    completion_tokens=len(first.token_ids or []),
                    latency_s=latency,
                    finish_reason=first.finish_reason,
                )
            )
        return completions

    def close(self) -> None:
        with self._lock:
            self._llm = None  # vLLM frees the GPU when the engine is garbage-collected
