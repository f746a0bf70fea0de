"""Using registered models: export them (adapter, merged safetensors, GGUF) and chat with them."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from doctune.config import ConfigError, DoctuneConfig
from doctune.stages import StageResult
from doctune.train.resolve import resolve_model
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


def run_export_model(
    config: DoctuneConfig,
    workspace: Workspace,
    model_id: str | None,
    fmt: str,
    out: Path | None = None,
    quant: str | None = None,
    progress: bool = True,
) -> StageResult:
    """Write a registered model as its adapter, merged safetensors, a GGUF file for llama.cpp / Ollama, or its LoRA
    adapter as a GGUF for llama.cpp (``lora-gguf``; ``quant`` default f16, q8_0 for ``gguf``)."""
    from doctune.train.export_model import export_adapter, export_gguf, export_lora_gguf, export_merged

    entry, weights, base = resolve_model(workspace, model_id, config)
    if entry is None or weights is None:
        raise ConfigError("export-model needs a trained model, not the base model")
    target = out or workspace.root / "models" / entry.id
    if fmt == "adapter":
        path = export_adapter(weights, target / "adapter")
    elif fmt == "merged":
        path = export_merged(weights, base, target / "merged")
    elif fmt == "gguf":
        quant = quant or "q8_0"
        merged = export_merged(weights, base, target / "merged")
        path = export_gguf(merged, target / f"{entry.id}.{quant}.gguf", quant)
    elif fmt == "lora-gguf":
        quant = quant or "f16"
        path = export_lora_gguf(weights, base, target / f"{entry.id}.lora.{quant}.gguf", quant)
    else:
        raise ConfigError(f"--format must be adapter, merged, gguf or lora-gguf, not {fmt!r}")
    return StageResult(stage="export-model", outputs={fmt: str(path)}, counts={})


def run_chat(
    config: DoctuneConfig,
    workspace: Workspace,
    model_id: str | None,
    read_line: Callable[[str], str] = input,
    write: Callable[[str], object] = sys.stdout.write,
    max_new_tokens: int = 256,
    kg: bool = False,
) -> list[dict]:
    """A terminal chat with a registered model (or ``base``: the configured student's base model), system prompt
    from the config, streamed; ``/kg on|off`` (``kg``: on from the start) when the workspace has a knowledge graph."""
    from doctune.train.chat import chat_loop, load_chat_model

    _, weights, base = resolve_model(workspace, model_id, config)
    graph_context = _graph_context(config, workspace)
    if kg and graph_context is None:
        raise FileNotFoundError("no knowledge graph in this workspace: run `doctune generate kg` first")
    model, tokenizer = load_chat_model(weights, base)
    prompt = config.train.system_prompt if config.train.system_prompt is not None else config.export.system_prompt
    return chat_loop(
        model,
        tokenizer,
        prompt or None,
        read_line=read_line,
        write=write,
        max_new_tokens=max_new_tokens,
        graph_context=graph_context,
        kg=kg,
    )


def _graph_context(config: DoctuneConfig, workspace: Workspace) -> Callable[[str], str] | None:
    """question -> its graph context, from the workspace's ``kg_nodes``/``kg_edges``; None when there is no graph."""
    from doctune.knowledge.context import GraphIndex
    from doctune.knowledge.rows import KGEdge, KGNode
    from doctune.workspace import StaleArtifactError

    try:
        nodes = workspace.read_rows("kg_nodes", KGNode, config)
        edges = workspace.read_rows("kg_edges", KGEdge, config)
    except StaleArtifactError as exc:
        log.info("chat: no graph context (%s)", exc)
        return None
    index = GraphIndex(nodes, edges)
    k = config.kg.context_edges
    return lambda question: index.context_for(question, k)
