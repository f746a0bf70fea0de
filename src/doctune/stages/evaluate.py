"""eval: answer the dataset's splits with the base and tuned models, grade with the judge, report, gate.

Each model answers every item of ``evaluate.splits`` with the same prompt and greedy decoding; the judge
role grades each answer against the item's criteria and reference; token F1 and embedding similarity are
computed beside it. The report (JSON, HTML, a markdown table) goes to ``reports/``; the configured gate's decision
against a tuned model's own base (and the scores it rests on) is stored on its registry entry.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from doctune.config import ConfigError, DoctuneConfig, ModelSpec
from doctune.curate.embeddings import EmbeddingCache, create_embedder
from doctune.evaluate.grader import choose_grader
from doctune.evaluate.report import GateRule, evaluate_models, gate_decision
from doctune.evaluate.writers import markdown_table, write_html, write_json
from doctune.llm import LLMClient, create_backend
from doctune.llm.roles import call_cache, open_client
from doctune.records import DatasetItem
from doctune.registry import GateRecord, ModelEntry, Registry
from doctune.stages import StageResult
from doctune.train.resolve import BASE, resolve_model, shared_base, student_base
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


ROLE_PREFIX = "role:"


def student_client(
    workspace: Workspace,
    model_id: str,
    max_tokens: int,
    config: DoctuneConfig,
    base_name: str | None = None,
) -> tuple[str, LLMClient]:
    """(display name, client) of ``base`` (the base model ``base_name``, default the configured student's) or a
    registered model, run by transformers (merged once, cached), or of ``role:NAME``: the model a config role
    points at (e.g. any OpenAI-compatible endpoint)."""
    from doctune.train.export_model import export_merged

    if model_id.startswith(ROLE_PREFIX):
        role = model_id.removeprefix(ROLE_PREFIX)
        if role not in type(config.models).model_fields:
            raise ConfigError(f"{model_id}: no such model role (roles: {', '.join(type(config.models).model_fields)})")
        spec = getattr(config.models, role).model_copy(update={"max_tokens": max_tokens})
        return model_id, LLMClient(create_backend(spec), call_cache(workspace))
    entry, weights, base = resolve_model(workspace, model_id, config, base_name)
    if entry is None:
        folder, name = base, BASE
        label = f"base:{Path(base_name or student_base(config)).name}"
    else:
        folder = workspace.root / "models" / entry.id / "merged"
        if not (folder / "config.json").exists():
            export_merged(weights, base, folder)
        name = label = entry.id
    spec = ModelSpec(backend="transformers", model=str(folder), max_tokens=max_tokens, label=label)
    return name, LLMClient(create_backend(spec), call_cache(workspace))


def run(
    config: DoctuneConfig,
    workspace: Workspace,
    models: list[str] | None = None,
    progress: bool = True,
) -> StageResult:
    """Evaluate ``models`` (default: ``base`` and the current, else the latest, registered model); the first one is
    the baseline. ``base`` is the registered models' own base model (the configured student's when they differ).

    The configured gate is recorded on a registered model only when this evaluation can decide it: the model is
    compared with its own base, on the gate's split, with a grader that is a real model (a scripted test judge or
    embedder cannot pass or fail a model). Any other comparison is reported, never recorded."""
    cfg = config.evaluate
    dataset = workspace.read_rows("dataset", DatasetItem, config)
    splits = {s: [i for i in dataset if i.split == s][: cfg.max_items_per_split] for s in cfg.splits}
    splits = {s: items for s, items in splits.items() if items}
    if not splits:
        raise ConfigError(f"the dataset has none of the splits {cfg.splits}")
    names = models or [BASE, _default_tuned(workspace)]
    registry = Registry(workspace)
    entries = {m: registry.get(m) for m in names if m != BASE and not m.startswith(ROLE_PREFIX)}
    base_name = shared_base(entries.values(), config)
    clients = dict(student_client(workspace, m, cfg.max_tokens, config, base_name) for m in names)
    judge = open_client(config, workspace, "judge")
    evaluated = [i for items in splits.values() for i in items]
    grader, grading = choose_grader(judge, evaluated, cfg.min_grader_agreement, cfg.grader_check_items, progress)
    embedder = create_embedder(config.models.embedder)
    system_prompt = (
        config.train.system_prompt if config.train.system_prompt is not None else config.export.system_prompt
    )
    report = evaluate_models(
        clients,
        splits,
        grader,
        embedder=embedder,
        embedding_cache=EmbeddingCache(workspace.cache_dir / "embeddings.sqlite"),
        baseline=next(iter(clients)),
        system_prompt=system_prompt or "",
        max_tokens=cfg.max_tokens,
        n_resamples=cfg.n_resamples,
        confidence=cfg.confidence,
        seed=cfg.seed,
        progress=progress,
    )
    report["grading"] = grading
    report["judge_check"] = grading["judge_check"]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    reports = workspace.root / "reports"
    json_name = f"eval-{stamp}.json"
    rule = GateRule(**cfg.gate.model_dump())
    metric_grader = {"accuracy": grader, "embedding_similarity": embedder}.get(rule.metric)
    baseline, *others = list(clients)
    by_id = {e.id: e for e in entries.values()}
    gates = {}
    for tuned in others:
        passed, reason = gate_decision(report, rule, baseline, tuned)
        not_recorded = _why_not_recorded(by_id.get(tuned), baseline, base_name, rule, splits, reason, metric_grader)
        gates[tuned] = {"passed": passed, "reason": reason, "recorded": not_recorded is None}
        if not_recorded is not None:
            gates[tuned]["not_recorded"] = not_recorded
            continue
        record = GateRecord(
            passed=passed,
            reason=reason,
            rule=rule.model_dump(),
            base=base_name,
            judge=metric_grader.label() if metric_grader is not None else "token F1 against the reference (no model)",
            report=f"reports/{json_name}",
            decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        registry.record_gate(tuned, record, _scores(report, tuned))
    report["gate"] = gates
    json_path = write_json(report, reports / json_name)
    html_path = write_html(report, reports / json_name.replace(".json", ".html"))
    for client in [*clients.values(), judge]:
        client.backend.close()
    embedder.close()
    return StageResult(
        stage="eval",
        outputs={"report": str(json_path), "html": str(html_path)},
        counts={f"{s}_items": len(items) for s, items in splits.items()},
        stats={
            "markdown": markdown_table(report),
            "gate": gates,
            "judge_check": report["judge_check"],
            "grading": {k: v for k, v in grading.items() if not k.endswith("_check")},
        },
    )


def _why_not_recorded(
    entry: ModelEntry | None,
    baseline: str,
    base_name: str,
    rule: GateRule,
    splits: dict[str, list[DatasetItem]],
    reason: str,
    grader: object | None,
) -> str | None:
    """Why this evaluation cannot record the configured gate for a model (None: it can)."""
    if entry is None:
        return "not a registered model"
    if baseline != BASE or entry.base_model != base_name:
        return f"compared with {baseline}, not with its own base model {entry.base_model}"
    if rule.split not in splits or reason.startswith("cannot decide"):
        return f"the gate's split {rule.split!r} was not evaluated"
    if rule.metric == "accuracy" and grader is None:
        return "no grader passed its check, so accuracy was not graded"
    if getattr(grader, "scripted", False):
        return f"the {rule.metric} grader {grader.label()} is a scripted test double"  # type: ignore[attr-defined]
    return None


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
