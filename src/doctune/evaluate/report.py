"""``evaluate_models``: several named models over several splits, graded by a judge, with bootstrap CIs,
paired base-vs-tuned differences, writers (JSON, markdown, standalone HTML) and the promotion gate."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from doctune.curate.embeddings import Embedder, EmbeddingCache, embed_texts
from doctune.evaluate.answer import DEFAULT_SYSTEM_PROMPT, answer_items
from doctune.evaluate.grader import Grader, JudgeGrader
from doctune.evaluate.metrics import bootstrap_ci, embedding_similarity, paired_bootstrap_diff, token_f1
from doctune.evaluate.writers import markdown_table, write_html, write_json
from doctune.jobs import Job, run_jobs
from doctune.llm.client import LLMClient
from doctune.records import DatasetItem

log = logging.getLogger(__name__)

__all__ = [
    "METRICS",
    "GateRule",
    "evaluate_models",
    "gate_decision",
    "markdown_table",
    "paired_comparison",
    "write_html",
    "write_json",
]

#: per-item metrics that can be aggregated and compared; ``accuracy`` is the mean judge score
METRICS: dict[str, str] = {"accuracy": "score", "token_f1": "token_f1", "embedding_similarity": "embedding_similarity"}
DIFFICULTY_BANDS: tuple[tuple[str, int, int], ...] = (
    ("easy (1-3)", 1, 3),
    ("medium (4-6)", 4, 6),
    ("hard (7-10)", 7, 10),
)


def difficulty_band(difficulty: int) -> str:
    for name, low, high in DIFFICULTY_BANDS:
        if low <= difficulty <= high:
            return name
    return "easy (1-3)" if difficulty < 1 else "hard (7-10)"


def _ci(values: Sequence[float], settings: Mapping[str, Any]) -> dict[str, Any]:
    mean, low, high = bootstrap_ci(values, settings["n_resamples"], settings["confidence"], settings["seed"])
    return {"n": len(values), "mean": _num(mean), "low": _num(low), "high": _num(high)}


def _num(x: float) -> float | None:
    """JSON-safe float (NaN becomes null)."""
    return None if x is None or math.isnan(x) else round(float(x), 6)


def _scores(rows: Sequence[Mapping[str, Any]], metric: str) -> list[float]:
    key = METRICS[metric]
    return [r[key] for r in rows if r.get(key) is not None]


def _aggregate(rows: list[dict[str, Any]], settings: Mapping[str, Any]) -> dict[str, Any]:
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {
        "by_category": defaultdict(list),
        "by_difficulty": defaultdict(list),
    }
    for row in rows:
        groups["by_category"][row["category"]].append(row)
        groups["by_difficulty"][difficulty_band(row["difficulty"])].append(row)
    out: dict[str, Any] = {
        "n": len(rows),
        "n_answer_errors": sum(r["answer_error"] is not None for r in rows),
        "n_judge_failures": sum(r["judge_error"] is not None for r in rows),
    }
    for metric in METRICS:
        out[metric] = _ci(_scores(rows, metric), settings)
    for name, grouped in groups.items():
        out[name] = {k: _ci(_scores(v, "accuracy"), settings) for k, v in sorted(grouped.items())}
    return out


def _grade(
    grader: Grader | None,
    items: Sequence[DatasetItem],
    answers: Sequence[str],
    concurrency: int,
    progress: bool,
    desc: str,
) -> list[tuple[Any, str | None]]:
    if grader is None:
        return [(None, "no grader passed its check")] * len(items)
    jobs = [
        Job(item.item_id, lambda it=item, a=answer: grader.grade(it, a))
        for item, answer in zip(items, answers, strict=True)
    ]
    client = grader.client if isinstance(grader, JudgeGrader) else None
    results = run_jobs(jobs, concurrency, client, desc, progress)
    return [(r.value, None if r.error is None else f"{type(r.error).__name__}: {r.error}") for r in results]


def paired_comparison(
    report: Mapping[str, Any], base_name: str, tuned_name: str, split: str, metric: str = "accuracy"
) -> dict[str, Any]:
    """``tuned - base`` on ``metric`` over the items of ``split`` scored for both, with a paired bootstrap CI."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (metrics: {', '.join(METRICS)})")
    results = report["results"]
    for name in (base_name, tuned_name):
        if split not in results.get(name, {}):
            raise KeyError(f"no results for model {name!r} on split {split!r}")
    key = METRICS[metric]
    base_rows = {r["item_id"]: r[key] for r in results[base_name][split]["items"] if r.get(key) is not None}
    tuned_rows = {r["item_id"]: r[key] for r in results[tuned_name][split]["items"] if r.get(key) is not None}
    shared = [i for i in base_rows if i in tuned_rows]
    a, b = [base_rows[i] for i in shared], [tuned_rows[i] for i in shared]
    s = report["settings"]
    diff, low, high = paired_bootstrap_diff(a, b, s["n_resamples"], s["confidence"], s["seed"])
    return {
        "base": base_name,
        "tuned": tuned_name,
        "split": split,
        "metric": metric,
        "n": len(shared),
        "base_mean": _num(float(np.mean(a))) if a else None,
        "tuned_mean": _num(float(np.mean(b))) if b else None,
        "diff": _num(diff),
        "low": _num(low),
        "high": _num(high),
    }


def evaluate_models(
    models: Mapping[str, LLMClient],
    splits: Mapping[str, Sequence[DatasetItem]],
    judge: LLMClient | Grader | None,
    *,
    embedder: Embedder | None = None,
    embedding_cache: EmbeddingCache | None = None,
    baseline: str | None = None,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    max_tokens: int = 256,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Answer every split's questions with every model, grade each answer with ``judge`` and aggregate.

    Per model and split the report holds per-item rows (answer, verdict, reason, score, token F1, embedding
    similarity when an ``embedder`` is given, errors) and aggregates with bootstrap CIs: ``accuracy`` (mean judge
    score; answers the judge could not grade are left out and counted), ``token_f1``, ``embedding_similarity``,
    accuracy ``by_category`` and ``by_difficulty``. With ``baseline``, ``comparisons`` holds the paired
    ``other - baseline`` difference of each other model on each split and metric. The result is JSON-ready.
    """
    if baseline is not None and baseline not in models:
        raise KeyError(f"baseline {baseline!r} is not one of the models ({', '.join(models)})")
    grader = JudgeGrader(judge) if isinstance(judge, LLMClient) else judge
    concurrency = grader.client.backend.spec.max_concurrency if isinstance(grader, JudgeGrader) else 1
    settings = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    report: dict[str, Any] = {
        "models": list(models),
        "splits": list(splits),
        "model_identities": {name: client.backend.label() for name, client in models.items()},
        "judge": grader.label() if grader is not None else None,
        "embedder": embedder.label() if embedder is not None else None,
        "settings": {**settings, "max_tokens": max_tokens, "system_prompt": system_prompt},
        "results": {},
        "comparisons": [],
    }
    for name, client in models.items():
        report["results"][name] = {}
        for split, items in splits.items():
            items = list(items)
            log.info("evaluating %s on %s (%d items)", name, split, len(items))
            answers = answer_items(client, items, system_prompt, max_tokens, progress=progress, desc=f"{name}/{split}")
            errors = {e["item_id"]: e["error"] for e in answers.errors}
            graded = _grade(grader, items, answers, concurrency, progress, f"grade {name}/{split}")
            sims: list[float | None] = [None] * len(items)
            if embedder is not None and items:
                pred = embed_texts(embedder, list(answers), embedding_cache)
                ref = embed_texts(embedder, [it.answer for it in items], embedding_cache)
                sims = [
                    float(s) if a.strip() else 0.0
                    for s, a in zip(embedding_similarity(pred, ref), answers, strict=True)
                ]
            rows = []
            for item, answer, (verdict, judge_error), sim in zip(items, answers, graded, sims, strict=True):
                rows.append(
                    {
                        "item_id": item.item_id,
                        "question": item.question,
                        "reference": item.answer,
                        "category": item.category,
                        "difficulty": item.difficulty,
                        "answer": answer,
                        "answer_error": errors.get(item.item_id),
                        "verdict": verdict.verdict if verdict else None,
                        "reason": verdict.reason if verdict else None,
                        "judge_error": judge_error,
                        "score": verdict.score if verdict else None,
                        "token_f1": round(token_f1(answer, item.answer), 6),
                        "embedding_similarity": None if sim is None else round(sim, 6),
                    }
                )
            report["results"][name][split] = {**_aggregate(rows, settings), "items": rows}
    if baseline is not None:
        for name in models:
            if name == baseline:
                continue
            for split in splits:
                for metric in METRICS:
                    if metric == "embedding_similarity" and embedder is None:
                        continue
                    report["comparisons"].append(paired_comparison(report, baseline, name, split, metric))
    return report


class GateRule(BaseModel):
    """When a tuned model may replace the base: on ``split``, ``tuned - base`` on ``metric`` must be at least
    ``min_margin``, and with ``require_ci_above_zero`` the lower bound of its paired CI must be above zero."""

    model_config = ConfigDict(extra="forbid")

    split: str = "eval"
    metric: str = Field("accuracy", description="accuracy | token_f1 | embedding_similarity")
    min_margin: float = 0.0
    require_ci_above_zero: bool = True


def gate_decision(report: Mapping[str, Any], rule: GateRule, base_name: str, tuned_name: str) -> tuple[bool, str]:
    """Whether ``tuned_name`` passes ``rule`` against ``base_name`` in ``report``, and why (one line)."""
    try:
        cmp = paired_comparison(report, base_name, tuned_name, rule.split, rule.metric)
    except (KeyError, ValueError) as exc:
        return False, f"cannot decide: {exc}"
    if cmp["n"] == 0 or cmp["diff"] is None:
        return False, f"cannot decide: no items of {rule.split!r} scored for both models"
    level = round(100 * report["settings"]["confidence"])
    what = (
        f"{rule.metric} on {rule.split}: {tuned_name} {cmp['tuned_mean']:.3f} vs {base_name} {cmp['base_mean']:.3f}, "
        f"diff {cmp['diff']:+.3f} ({level}% CI {cmp['low']:+.3f} to {cmp['high']:+.3f}, n={cmp['n']})"
    )
    if cmp["diff"] < rule.min_margin:
        return False, f"{what}: below the required margin {rule.min_margin:+.3f}"
    if rule.require_ci_above_zero and not cmp["low"] > 0:
        return False, f"{what}: the CI does not lie above zero"
    return True, f"{what}: passes"
