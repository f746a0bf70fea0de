"""Which model a name means: the student's base model, a registered (tuned) model, or ``base``.

A tuned model is always compared with *its own* base: the registry records the base every model was trained from
(:func:`student_base` at training time), and ``base`` means that base whenever the models in question share one. The
recorded name is a packaged model's name (the embedded SmolLM2-135M-Instruct, or ``gemma3-270m``: see
:data:`doctune.llm.hf.PACKAGED_MODELS`), or the configured folder with the home folder written ``~`` (registry entries
travel with the workspace; they hold no home path).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from doctune.config import ConfigError, DoctuneConfig, home_relative
from doctune.llm.embedded import EMBEDDED_NAME
from doctune.llm.hf import PACKAGED_MODELS
from doctune.registry import ModelEntry, Registry
from doctune.workspace import Workspace

#: the name that means "the untuned base model" wherever a model id is accepted
BASE = "base"


def student_base(config: DoctuneConfig) -> str:
    """The base model the configured student is fine-tuned from, as the registry records it: ``train.base_model``,
    else ``models.student.model`` when its backend is ``transformers``, else the embedded model's name.

    A packaged model's name (``gemma3-270m``) is kept as is; it wins over a folder of the same name in the working
    directory, which ``./gemma3-270m`` names instead."""
    folder = config.train.base_model
    student = config.models.student
    if not folder and student.backend == "transformers" and student.model:
        folder = student.model
    if not folder:
        return EMBEDDED_NAME
    if folder in PACKAGED_MODELS:
        return folder
    return home_relative(os.path.abspath(Path(folder).expanduser()))  # absolute, symlinks kept as named


def base_model_dir(name: str) -> Path:
    """The local folder of a base model recorded by :func:`student_base` (a packaged one is converted once)."""
    if name == EMBEDDED_NAME:
        from doctune.llm.hf import embedded_safetensors_dir

        return embedded_safetensors_dir()
    if name in PACKAGED_MODELS:
        from doctune.llm.hf import packaged_safetensors_dir

        return packaged_safetensors_dir(name)
    return Path(name).expanduser()


def shared_base(entries: Iterable[ModelEntry], config: DoctuneConfig) -> str:
    """What ``base`` means beside ``entries``: their base when they all have the same one, else the configured
    student's base."""
    bases = {e.base_model for e in entries}
    return bases.pop() if len(bases) == 1 else student_base(config)


def resolve_model(
    workspace: Workspace, model_id: str | None, config: DoctuneConfig, base_name: str | None = None
) -> tuple[ModelEntry | None, Path | None, Path]:
    """(entry, weights folder, base model folder) of ``model_id``: a registry id or prefix, ``base`` for the untuned
    base model (``base_name``, default the configured student's base), or None for the current model."""
    if model_id == BASE:
        return None, None, base_model_dir(base_name or student_base(config))
    registry = Registry(workspace)
    entry = registry.get(model_id) if model_id else registry.current()
    if entry is None:
        raise ConfigError("no current model: give a model id (`doctune models list`), `base`, or promote one first")
    return entry, workspace.root / entry.weights_path, base_model_dir(entry.base_model)


def base_model_label(name: str) -> str:
    """How a saved model names its base (the adapter config's ``base_model_name_or_path``): the Hub id of a packaged
    model, else the folder's name (never a local path)."""
    from doctune.llm.hf import packaged_model

    packaged = packaged_model(name)
    return packaged.hub_id if packaged is not None else Path(name).name
