"""Exporting trained weights: the LoRA adapter alone, a merged Hugging Face model, or a GGUF file for llama.cpp.

* :func:`export_adapter` copies a PEFT adapter (weights, config, tokenizer) into a clean folder.
* :func:`export_merged` folds the adapter into the base model (``merge_and_unload``) and saves a standalone
  safetensors model with its tokenizer and chat template; a full fine-tune is copied as it is.
* :func:`export_gguf` converts a merged model with llama.cpp's ``convert_hf_to_gguf.py``. The script is not on
  PyPI as a package: ``make gguf-tools`` extracts it (with its ``conversion`` package and ``gguf-py``) from the
  ``llama-cpp-python`` sdist into ``~/.cache/doctune/llama.cpp/``; ``DOCTUNE_GGUF_CONVERTER`` overrides that.
* :func:`export_lora_gguf` converts the LoRA adapter alone with ``convert_lora_to_gguf.py`` (found beside
  ``convert_hf_to_gguf.py``, which it imports): llama.cpp loads it over the base model's GGUF
  (``llama-cli -m base.gguf --lora adapter.gguf``), so one loaded base can serve several adapters (characters).

Outputs are replaced only when doctune created them (:mod:`doctune.owned`): the ``adapter``/``merged`` folders
(written as ``<name>.tmp`` and renamed) carry the ``.doctune-owned`` marker, so does a folder above them that
doctune creates, and an existing GGUF file is overwritten only inside such a folder. Anything else raises
:class:`doctune.owned.NotOwnedError` before any work is done.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from doctune.owned import MARKER, check_dir, check_file, claim_dir, replace_dir

log = logging.getLogger(__name__)

CONVERTER_ENV = "DOCTUNE_GGUF_CONVERTER"
CONVERTER_SCRIPT = "convert_hf_to_gguf.py"
LORA_CONVERTER_SCRIPT = "convert_lora_to_gguf.py"
#: the folder ``make gguf-tools`` fills
CONVERTER_CACHE_DIR = Path("~/.cache/doctune/llama.cpp")
#: output types ``convert_hf_to_gguf.py --outtype`` accepts (k-quants need llama.cpp's quantize tool)
GGUF_TYPES = ("f32", "f16", "bf16", "q8_0", "tq1_0", "tq2_0", "auto")
#: output types ``convert_lora_to_gguf.py --outtype`` accepts
LORA_GGUF_TYPES = ("f32", "f16", "bf16", "q8_0", "auto")

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
)
DTYPES = ("float32", "bfloat16", "float16")


class ConverterMissing(RuntimeError):
    """llama.cpp's ``convert_hf_to_gguf.py`` was not found."""


class ExportError(RuntimeError):
    """An export could not be done (missing files, failed conversion)."""


def is_adapter_dir(weights_dir: Path) -> bool:
    """Whether ``weights_dir`` holds a PEFT adapter (rather than a full model)."""
    return (Path(weights_dir) / "adapter_config.json").is_file()


_BY = "doctune export-model"


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _make_parent(path: Path) -> None:
    """Create the folder holding ``path`` when missing, marked as doctune's (its files may be replaced later)."""
    if not path.parent.exists():
        claim_dir(path.parent, by=_BY)


def _check_out(out_dir: Path) -> Path:
    """``out_dir`` when it and its ``.tmp`` sibling may be replaced (missing, empty or doctune's), else refused."""
    out_dir = check_dir(out_dir)
    check_dir(_tmp(out_dir))
    return out_dir


def _start(out_dir: Path) -> Path:
    """A fresh, marked ``<out_dir>.tmp`` to write into (an old one removed when doctune created it)."""
    _make_parent(out_dir)
    tmp = _tmp(out_dir)
    replace_dir(tmp)
    return claim_dir(tmp, by=_BY)


def _publish(tmp: Path, out_dir: Path) -> Path:
    """Replace ``out_dir`` (only when doctune created it) with the filled ``tmp``; the marker moves along."""
    replace_dir(out_dir)
    tmp.rename(out_dir)
    return out_dir


def export_adapter(weights_dir: Path, out_dir: Path) -> Path:
    """Copy the LoRA adapter in ``weights_dir`` (config, weights, tokenizer files) to ``out_dir``; returns it.

    ``out_dir`` is replaced when it exists and doctune created it (else :class:`doctune.owned.NotOwnedError`).
    Checkpoints, optimizer state and training logs are not copied.
    """
    weights_dir = Path(weights_dir)
    if not is_adapter_dir(weights_dir):
        raise ExportError(f"{weights_dir} holds no LoRA adapter (no adapter_config.json)")
    if not any((weights_dir / name).is_file() for name in ("adapter_model.safetensors", "adapter_model.bin")):
        raise ExportError(f"{weights_dir} has an adapter config but no adapter weights")
    out_dir = _check_out(out_dir)
    tmp = _start(out_dir)
    copied = []
    for name in (*ADAPTER_FILES, *TOKENIZER_FILES):
        if (weights_dir / name).is_file():
            shutil.copy2(weights_dir / name, tmp / name)
            copied.append(name)
    _publish(tmp, out_dir)
    log.info("exported the adapter to %s (%s)", out_dir, ", ".join(copied))
    return out_dir


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    return getattr(torch, dtype)


def export_merged(weights_dir: Path, base_model_dir: Path, out_dir: Path, dtype: str = "float32") -> Path:
    """Save a standalone model (safetensors + tokenizer + chat template) to ``out_dir``; returns it.

    A LoRA adapter in ``weights_dir`` is merged into ``base_model_dir`` with PEFT's ``merge_and_unload``;
    a full fine-tune (``weights_dir`` holds ``config.json``) is copied. ``dtype`` is the saved precision
    (``float32``, ``bfloat16`` or ``float16``) of a merged model. The tokenizer comes from ``weights_dir`` when
    it has one (training saves it there), else from the base model. ``out_dir`` is replaced only when doctune
    created it (else :class:`doctune.owned.NotOwnedError`, raised before any work).
    """
    weights_dir, base_model_dir = Path(weights_dir), Path(base_model_dir)
    torch_dtype = _torch_dtype(dtype)
    out_dir = _check_out(out_dir)
    if not is_adapter_dir(weights_dir):
        if not (weights_dir / "config.json").is_file():
            raise ExportError(f"{weights_dir} holds neither a LoRA adapter nor a model (no config.json)")
        tmp = _start(out_dir)
        skip = shutil.ignore_patterns("checkpoint-*", "training_args.bin", MARKER)
        shutil.copytree(weights_dir, tmp, ignore=skip, dirs_exist_ok=True)
        _publish(tmp, out_dir)
        log.info("copied the fully fine-tuned model %s to %s", weights_dir, out_dir)
        return out_dir

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    import torch

    # merge in float32 (exact for a float32 base), then cast to the requested precision
    base = AutoModelForCausalLM.from_pretrained(str(base_model_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(weights_dir)).merge_and_unload()
    merged = merged.to(torch_dtype)
    merged.config.dtype = dtype
    tokenizer_src = weights_dir if (weights_dir / "tokenizer_config.json").is_file() else base_model_dir
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_src))
    if not getattr(tokenizer, "chat_template", None):
        base_tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir))
        tokenizer.chat_template = base_tokenizer.chat_template
    tmp = _start(out_dir)
    merged.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    _publish(tmp, out_dir)
    log.info(
        "merged %s into %s (%s) in %s in %.1f s",
        weights_dir,
        base_model_dir.name,
        dtype,
        out_dir,
        time.perf_counter() - started,
    )
    return out_dir


def _converter_in(path: Path, script_name: str = CONVERTER_SCRIPT) -> Path | None:
    """``script_name`` in the folder ``path``; for a file ``path``: itself (the HF converter, any name) or the
    script beside it (the LoRA converter)."""
    path = path.expanduser()
    if path.is_dir():
        script = path / script_name
    else:
        script = path if script_name == CONVERTER_SCRIPT else path.parent / script_name
    return script.resolve() if script.is_file() and script.name.endswith(".py") else None


def find_gguf_converter(script_name: str = CONVERTER_SCRIPT) -> Path | None:
    """The path of llama.cpp's ``convert_hf_to_gguf.py`` (or of ``script_name`` beside it), or None.

    ``DOCTUNE_GGUF_CONVERTER`` (the script or its folder) decides when it is set, even when it points nowhere;
    otherwise the folder ``make gguf-tools`` fills (``~/.cache/doctune/llama.cpp/``) is used.
    """
    env = os.environ.get(CONVERTER_ENV)
    if env:
        found = _converter_in(Path(env), script_name)
        if found is None:
            log.warning("%s=%s holds no %s", CONVERTER_ENV, env, script_name)
        return found
    return _converter_in(CONVERTER_CACHE_DIR, script_name)


def _missing_message(script_name: str = CONVERTER_SCRIPT) -> str:
    return (
        f"llama.cpp's {script_name} was not found (looked at ${CONVERTER_ENV}"
        f"{'=' + os.environ[CONVERTER_ENV] if os.environ.get(CONVERTER_ENV) else ''} and {CONVERTER_CACHE_DIR}/). "
        f"Run `make gguf-tools` to extract it from the llama-cpp-python sdist into {CONVERTER_CACHE_DIR}/, "
        f"or point {CONVERTER_ENV} at a llama.cpp checkout's {CONVERTER_SCRIPT}."
    )


def export_gguf(merged_dir: Path, out_file: Path, quant: str = "q8_0") -> Path:
    """Convert the Hugging Face model in ``merged_dir`` (see :func:`export_merged`) to a GGUF file; returns it.

    ``quant`` is the converter's ``--outtype``: ``q8_0`` (default), ``f16``, ``bf16``, ``f32``, ... The converter
    runs in a subprocess with its own ``gguf-py`` (next to the script) first on ``PYTHONPATH``.

    Raises :class:`ConverterMissing` when the converter is not installed, :class:`ExportError` when it fails, and
    :class:`doctune.owned.NotOwnedError` when ``out_file`` (or its ``.tmp``) exists in a folder doctune did not
    create.
    """
    merged_dir, out_file = Path(merged_dir), Path(out_file)
    quant = quant.lower()
    if quant not in GGUF_TYPES:
        raise ValueError(f"quant must be one of {', '.join(GGUF_TYPES)}, not {quant!r}")
    if not (merged_dir / "config.json").is_file():
        raise ExportError(f"{merged_dir} is not a Hugging Face model folder (no config.json); merge the adapter first")
    script = find_gguf_converter()
    if script is None:
        raise ConverterMissing(_missing_message())
    log.info("converting %s to GGUF (%s) with %s", merged_dir, quant, script)
    return _convert(script, [str(merged_dir)], out_file, quant)


def _convert(script: Path, args: list[str], out_file: Path, outtype: str) -> Path:
    """Run a llama.cpp converter ``script`` on ``args``, writing ``out_file`` through ``<out_file>.tmp``."""
    tmp = check_file(_tmp(out_file))
    check_file(out_file)
    env = dict(os.environ)
    paths = [str(script.parent)]
    if (script.parent / "gguf-py").is_dir():
        paths.insert(0, str(script.parent / "gguf-py"))
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    _make_parent(out_file)
    tmp.unlink(missing_ok=True)
    cmd = [sys.executable, str(script), *args, "--outfile", str(tmp), "--outtype", outtype]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
        raise ExportError(f"{script.name} failed (exit {proc.returncode}):\n{tail}")
    tmp.replace(out_file)
    log.info("wrote %s (%.1f MB) in %.1f s", out_file, out_file.stat().st_size / 1e6, time.perf_counter() - started)
    return out_file


def export_lora_gguf(weights_dir: Path, base_model_dir: Path, out_file: Path, outtype: str = "f16") -> Path:
    """Convert the PEFT LoRA adapter in ``weights_dir`` to a llama.cpp LoRA GGUF file; returns it.

    ``base_model_dir`` is the Hugging Face folder of the base model it was trained on (only its config is read);
    the GGUF applies over any GGUF of that base (``Llama(model_path=base, lora_path=out_file)`` in
    llama-cpp-python). ``outtype``: ``f16`` (default), ``bf16``, ``f32``, ``q8_0``. Errors as :func:`export_gguf`;
    a full fine-tune has no adapter (:class:`ExportError`: export it with ``gguf`` instead).
    """
    weights_dir, base_model_dir, out_file = Path(weights_dir), Path(base_model_dir), Path(out_file)
    outtype = outtype.lower()
    if outtype not in LORA_GGUF_TYPES:
        raise ValueError(f"a LoRA GGUF type must be one of {', '.join(LORA_GGUF_TYPES)}, not {outtype!r}")
    if not is_adapter_dir(weights_dir):
        raise ExportError(f"{weights_dir} holds no LoRA adapter (a full fine-tune exports with --format gguf)")
    if not (base_model_dir / "config.json").is_file():
        raise ExportError(f"{base_model_dir} is not a Hugging Face model folder (no config.json)")
    script = find_gguf_converter(LORA_CONVERTER_SCRIPT)
    if script is None:
        raise ConverterMissing(_missing_message(LORA_CONVERTER_SCRIPT))
    log.info("converting the adapter %s to a LoRA GGUF (%s) with %s", weights_dir, outtype, script)
    return _convert(script, [str(weights_dir), "--base", str(base_model_dir)], out_file, outtype)
