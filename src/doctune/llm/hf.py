"""A transformers backend: any local Hugging Face model folder, or the embedded SmolLM2 GGUF
dequantized once and cached as safetensors (loading the GGUF takes tens of seconds; the cached
copy loads in well under one)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from doctune.config import ModelSpec, home_relative
from doctune.fingerprint import weights_fingerprint
from doctune.llm.base import BackendError, CallParams, Completion, LLMBackend, Message
from doctune.llm.embedded import EMBEDDED_NAME, embedded_gguf_path, model_cache_dir
from doctune.llm.registry import register_backend

log = logging.getLogger(__name__)


def embedded_safetensors_dir() -> Path:
    """The embedded model as a safetensors folder, converted from the packaged GGUF on first use."""
    gguf = embedded_gguf_path()
    target = model_cache_dir() / f"{EMBEDDED_NAME}-{gguf.stat().st_size}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # a GGUF-loaded model carries a quantizer that refuses to save; the weights are already dequantized
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


@register_backend
class TransformersBackend(LLMBackend):
    name: ClassVar[str] = "transformers"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        device: str | None = Field(None, description="torch device; default cuda when available, else cpu.")
        dtype: str = Field("auto", description="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16 or float16.")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self._model = None
        self._tokenizer = None
        self._identity: str | None = None
        self._lock = threading.Lock()

    def model_dir(self) -> Path:
        return Path(self.spec.model).expanduser() if self.spec.model else embedded_safetensors_dir()

    def identity(self) -> str:
        if self._identity is None:  # once per backend: every call's cache key needs it
            if self.spec.model:
                path = Path(self.spec.model).expanduser()
                self._identity = f"transformers:{path.name}:{weights_fingerprint(path)}"
            else:  # the converted copy is derived from the packaged GGUF: its fingerprint decides
                self._identity = f"transformers:{EMBEDDED_NAME}(embedded):{weights_fingerprint(embedded_gguf_path())}"
        return self._identity

    def weights_bytes(self) -> int | None:
        if not self.spec.model:
            return embedded_gguf_path().stat().st_size
        path = Path(self.spec.model).expanduser()
        files = [f for f in path.rglob("*") if f.suffix in (".safetensors", ".bin", ".gguf")] if path.is_dir() else []
        return sum(f.stat().st_size for f in files) or None

    def label(self) -> str:
        if self.spec.label:
            return self.spec.label
        return f"transformers:{Path(self.spec.model).name if self.spec.model else EMBEDDED_NAME}"

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device = self.options.device or ("cuda" if torch.cuda.is_available() else "cpu")
            dtype = self.options.dtype
            if dtype == "auto":
                dtype = "bfloat16" if device.startswith("cuda") else "float32"
            path = self.model_dir()
            if not path.exists():
                raise BackendError(f"model folder not found: {home_relative(str(path))}")
            self._tokenizer = AutoTokenizer.from_pretrained(path)
            self._model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
        return self._model, self._tokenizer

    def count_tokens(self, text: str) -> int:
        with self._lock:
            _, tok = self._load()
            return len(tok(text, add_special_tokens=False)["input_ids"])

    @property
    def context_window(self) -> int | None:
        model = self._model
        return getattr(model.config, "max_position_embeddings", None) if model is not None else None

    def complete(
        self, messages: list[Message], params: CallParams, json_schema: dict[str, Any] | None = None
    ) -> Completion:
        import torch

        with self._lock:
            model, tok = self._load()
            ids = tok.apply_chat_template(
                [m.model_dump() for m in messages], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )["input_ids"].to(model.device)
            gen: dict[str, Any] = {"max_new_tokens": params.max_tokens, "pad_token_id": tok.eos_token_id}
            if params.temperature > 0:
                torch.manual_seed(params.seed)
                gen.update(do_sample=True, temperature=params.temperature)
            else:
                gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            start = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(ids, **gen)
            latency = time.perf_counter() - start
        new = out[0, ids.shape[1] :]
        finished = bool(len(new)) and int(new[-1]) == tok.eos_token_id
        return Completion(
            text=tok.decode(new, skip_special_tokens=True).strip(),
            model=self.label(),
            prompt_tokens=int(ids.shape[1]),
            completion_tokens=len(new),
            latency_s=latency,
            finish_reason="stop" if finished else "length",
        )

    def close(self) -> None:
        with self._lock:
            self._model = None
            self._tokenizer = None
