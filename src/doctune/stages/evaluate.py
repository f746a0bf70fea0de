"""eval: answer the dataset's splits with the base and tuned models, grade with the judge, report, gate.

Each model answers every item of ``evaluate.splits`` with the same prompt and greedy decoding; the judge
role grades each answer against the item's criteria and reference; token F1 and embedding similarity are
computed beside it. The report (JSON, HTML, a markdown table) goes to ``reports/``; the scores and the gate
decision are stored on the tuned model's registry entry.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from doctune.config import ConfigError, DoctuneConfig, ModelSpec
from doctune.curate.embeddings import EmbeddingCache, create_embedder
from doctune.evaluate.judge import check_judge
from doctune.evaluate.report import GateRule, evaluate_models, gate_decision
from doctune.evaluate.writers import markdown_table, write_html, write_json
from doctune.llm import LLMClient, create_backend
from doctune.llm.roles import call_cache, open_client
from doctune.records import DatasetItem
from doctune.registry import Registry
from doctune.stages import StageResult
from doctune.stages.models import BASE, resolve_model
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


ROLE_PREFIX = "role:"


def student_client(
    workspace: Workspace, model_id: str, max_tokens: int, config: DoctuneConfig | None = None
) -> tuple[str, LLMClient]:
    """(display name, client) of ``base`` or a registered model, run by transformers (merged once, cached),
    or of ``role:NAME``: the model a config role points at (e.g. any OpenAI-compatible endpoint)."""
    from doctune.train.export_model import export_merged

    if model_id.startswith(ROLE_PREFIX):
        role = model_id.removeprefix(ROLE_PREFIX)
        if config is None or role not in type(config.models).model_fields:
            raise ConfigError(f"{model_id}: no such model role (roles: {', '.join(type(config.models).model_fields)})")
        spec = getattr(config.models, role).model_copy(update={"max_tokens": max_tokens})
        return model_id, LLMClient(create_backend(spec), call_cache(workspace))
    entry, weights, base = resolve_model(workspace, model_id)
    if entry is None:
        folder, name = base, BASE
    else:
        folder = workspace.root / "models" / entry.id / "merged"
        if not (folder / "config.json").exists():
            export_merged(weights, base, folder)
        name = entry.id
    spec = ModelSpec(backend="transformers", model=str(folder), max_tokens=max_tokens)
    return name, LLMClient(create_backend(spec), call_cache(workspace))


def run(
    config: DoctuneConfig,
    workspace: Workspace,
    models: list[str] | None = None,
    baseline: str = BASE,
    with_judge_check: bool = False,
    progress: bool = True,
) -> StageResult:
    """Evaluate ``models`` (default: ``base`` and the current, else the latest, registered model)."""
    cfg = config.evaluate
    dataset = workspace.read_rows("dataset", DatasetItem, config)
    splits = {s: [i for i in dataset if i.split == s][: cfg.max_items_per_split] for s in cfg.splits}
    splits = {s: items for s, items in splits.items() if items}
    if not splits:
        raise ConfigError(f"the dataset has none of the splits {cfg.splits}")
    names = models or [baseline, _default_tuned(workspace)]
    clients = dict(student_client(workspace, m, cfg.max_tokens, config) for m in names)
    judge = open_client(config, workspace, "judge")
    system_prompt = (
        config.train.system_prompt if config.train.system_prompt is not None else config.export.system_prompt
    )
    report = evaluate_models(
        clients,
        splits,
        judge,
        embedder=create_embedder(config.models.embedder),
        embedding_cache=EmbeddingCache(workspace.cache_dir / "embeddings.sqlite"),
        baseline=next(iter(clients)),
        system_prompt=system_prompt or "",
        max_tokens=cfg.max_tokens,
        n_resamples=cfg.n_resamples,
        confidence=cfg.confidence,
        seed=cfg.seed,
        progress=progress,
    )
    if with_judge_check:
        reference = [i for items in splits.values() for i in items]
        report["judge_check"] = check_judge(judge, reference, config.models.judge.max_concurrency, progress)
    base_name, *others = list(clients)
    gates = {}
    registry = Registry(workspace)
    for tuned in others:
        passed, reason = gate_decision(report, GateRule(**cfg.gate.model_dump()), base_name, tuned)
        gates[tuned] = {"passed": passed, "reason": reason}
        if tuned != BASE and not tuned.startswith(ROLE_PREFIX):
            registry.record_scores(tuned, _scores(report, tuned) | {"gate_passed": passed, "gate_reason": reason})
    report["gate"] = gates
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    reports = workspace.root / "reports"
    json_path = write_json(report, reports / f"eval-{stamp}.json")
    html_path = write_html(report, reports / f"eval-{stamp}.html")
    for client in [*clients.values(), judge]:
        client.backend.close()
    return StageResult(
        stage="eval",
        outputs={"report": str(json_path), "html": str(html_path)},
        counts={f"{s}_items": len(items) for s, items in splits.items()},
        stats={"markdown": markdown_table(report), "gate": gates, "judge_check": report.get("judge_check")},
    )


def _default_tuned(workspace: Workspace) -> str:
    registry = Registry(workspace)
    entry = registry.current() or (registry.list_entries()[-1] if registry.list_entries() else None)
    if entry is None:
        raise ConfigError("no trained model to evaluate: run `doctune train` first (or name models)")
    return entry.id


def _scores(report: dict[str, Any], model: str) -> dict[str, Any]:
    out = {}
    for split, stats in report["results"].get(model, {}).items():
        out[f"{split}_accuracy"] = stats["accuracy"]["mean"]
    return out
