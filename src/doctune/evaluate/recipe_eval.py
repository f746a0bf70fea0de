"""Generic evaluation of a recipe's models: target perplexity base vs tuned, reply scores, and the recipe's gate.

Works for any :class:`~doctune.recipes.Recipe` without importing its module: the examples of ``recipe.gate.split``
(for one-adapter-per-value recipes, those of the adapter's own value, e.g. its character) are scored under the
model's own base and under the model; the paired bootstrap interval of tuned - base is reported per metric. When
the recipe overrides :meth:`~doctune.recipes.Recipe.score_reply`, both models also reply (greedy,
``evaluate.max_tokens``) and each reply is scored by it.

The gate (:func:`decide_gate`) uses ``recipe.gate``: the improvement (tuned - base, or base - tuned when lower is
better) must be at least ``min_margin`` and, with ``evaluate.gate.require_ci_above_zero``, its interval above 0.
For ``perplexity`` the compared values are per-example mean NLLs (nats per token; ``exp`` is the perplexity), so
``min_margin`` is in nats.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from doctune.evaluate.metrics import bootstrap_ci, paired_bootstrap_diff
from doctune.evaluate.perplexity import ModelBench, message_dicts
from doctune.recipes.base import GateSpec, Recipe
from doctune.records import Example
from doctune.registry import ModelEntry

log = logging.getLogger(__name__)

PERPLEXITY = "perplexity"


def ci_dict(stat: tuple[float, float, float], n: int) -> dict[str, Any]:
    """``{"mean", "low", "high", "n"}`` with NaN as None (the JSON writer refuses NaN)."""

    def clean(x: float) -> float | None:
        return None if x is None or math.isnan(x) else round(float(x), 6)

    mean, low, high = stat
    return {"mean": clean(mean), "low": clean(low), "high": clean(high), "n": n}


def overrides_score_reply(recipe: Recipe) -> bool:
    """Whether the recipe scores replies itself (else no reply needs generating for the generic evaluation)."""
    return type(recipe).score_reply is not Recipe.score_reply


def latest_entries(entries: Sequence[ModelEntry], recipe: Recipe) -> list[ModelEntry]:
    """The newest registered model of ``recipe`` per (adapter value, base model), oldest first."""
    latest: dict[tuple[str, str], ModelEntry] = {}
    for entry in sorted(entries, key=lambda e: (e.created_at, e.id)):
        if entry.labels.get("recipe") != recipe.name:
            continue
        key = entry.labels.get(recipe.adapter_field, "") if recipe.adapter_field else ""
        latest[(key, entry.base_model)] = entry
    return list(latest.values())


def adapter_value(recipe: Recipe, entry: ModelEntry) -> str | None:
    """The adapter value (character...) a model was trained for, or None for one-adapter recipes."""
    return entry.labels.get(recipe.adapter_field) if recipe.adapter_field else None


def examples_for(recipe: Recipe, examples: Sequence[Example], split: str, value: str | None) -> list[Example]:
    """The examples of ``split`` a model is judged on: all of them, or those of its adapter value."""
    chosen = [e for e in examples if e.split == split]
    if value is not None:
        chosen = [e for e in chosen if (recipe.adapter_key(e) or "").casefold() == value.casefold()]
    return chosen


def _finite(x: float | None) -> bool:
    return x is not None and not math.isnan(x)


def decide_gate(
    gate: GateSpec,
    base_values: Sequence[float | None],
    tuned_values: Sequence[float | None],
    require_ci: bool = True,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[bool, str, dict[str, Any]]:
    """``(passed, one-line reason, improvement CI)`` of ``gate`` on paired per-example values."""
    pairs = [(b, t) for b, t in zip(base_values, tuned_values, strict=True) if _finite(b) and _finite(t)]
    if not pairs:
        return False, f"cannot decide: no scored example of {gate.metric} on {gate.split}", ci_dict((math.nan,) * 3, 0)
    base, tuned = [b for b, _ in pairs], [t for _, t in pairs]
    first, second = (base, tuned) if gate.higher_is_better else (tuned, base)
    improvement = ci_dict(paired_bootstrap_diff(first, second, n_resamples, confidence, seed), len(pairs))
    mean, low = improvement["mean"], improvement["low"]
    passed = mean >= gate.min_margin and (not require_ci or low > 0)
    unit = " (mean NLL, nats/token)" if gate.metric == PERPLEXITY else ""
    sign = "tuned - base" if gate.higher_is_better else "base - tuned"
    reason = (
        f"{gate.metric}{unit} on {gate.split}: base {sum(base) / len(base):.3f}, tuned {sum(tuned) / len(tuned):.3f}; "
        f"improvement ({sign}) {mean:+.3f} [{low:+.3f}, {improvement['high']:+.3f}], n={len(pairs)}; "
        f"needs >= {gate.min_margin:g}" + (" and an interval above 0" if require_ci else "")
    )
    return passed, reason, improvement


def score_model(
    recipe: Recipe,
    bench: ModelBench,
    name: str,
    examples: Sequence[Example],
    max_tokens: int,
    stats: Callable[[Sequence[float]], dict[str, Any]],
    paired: Callable[[Sequence[float], Sequence[float]], dict[str, Any]],
) -> dict[str, Any]:
    """Per-metric values of base and model ``name`` on ``examples`` (per-example lists kept under ``values``)."""
    values: dict[str, dict[str, list[float]]] = {PERPLEXITY: {"base": [], "tuned": []}}
    for ex in examples:
        msgs = message_dicts(ex.messages)
        values[PERPLEXITY]["base"].append(bench.nll(None, ex.example_id, _through_target(msgs)))
        values[PERPLEXITY]["tuned"].append(bench.nll(name, ex.example_id, _through_target(msgs)))
    if overrides_score_reply(recipe):
        for ex in examples:
            prompt = message_dicts(ex.prompt_messages)
            for side, model in (("base", None), ("tuned", name)):
                reply = bench.reply(model, ex.example_id, prompt, max_tokens)
                for metric, score in recipe.score_reply(ex, reply).items():
                    values.setdefault(metric, {"base": [], "tuned": []})[side].append(float(score))
    out: dict[str, Any] = {}
    for metric, sides in values.items():
        out[metric] = {
            "base": stats(sides["base"]),
            "tuned": stats(sides["tuned"]),
            "diff": paired(sides["base"], sides["tuned"]) if len(sides["base"]) == len(sides["tuned"]) else None,
            "values": {side: [None if math.isnan(v) else round(v, 6) for v in vals] for side, vals in sides.items()},
        }
    nll = out[PERPLEXITY]
    for side in ("base", "tuned"):
        mean = nll[side]["mean"]
        nll[side]["perplexity"] = round(math.exp(mean), 4) if mean is not None else None
    return out


def _through_target(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[: last + 1]


def evaluate_recipe_models(
    recipe: Recipe,
    examples: Sequence[Example],
    entries: Sequence[ModelEntry],
    benches: Mapping[str, ModelBench],
    max_items: int | None,
    max_tokens: int,
    require_ci: bool,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The report of every model in ``entries`` against its own base (``benches`` by base model name, each with the
    entry's adapter loaded under its id): per metric the base and tuned means with CIs and the paired difference,
    and the gate decision of ``recipe.gate``."""
    from doctune.sampling import evenly_spaced

    gate = recipe.gate

    def stats(values: Sequence[float]) -> dict[str, Any]:
        finite = [v for v in values if not math.isnan(v)]
        return ci_dict(bootstrap_ci(finite, n_resamples, confidence, seed), len(finite))

    def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
        pairs = [(x, y) for x, y in zip(a, b, strict=True) if not (math.isnan(x) or math.isnan(y))]
        diff = paired_bootstrap_diff([x for x, _ in pairs], [y for _, y in pairs], n_resamples, confidence, seed)
        return ci_dict(diff, len(pairs))

    models = []
    for entry in entries:
        value = adapter_value(recipe, entry)
        chosen = evenly_spaced(examples_for(recipe, examples, gate.split, value), max_items)
        row: dict[str, Any] = {
            "id": entry.id,
            "base_model": entry.base_model,
            "labels": entry.labels,
            "adapter_value": value,
            "split": gate.split,
            "n": len(chosen),
        }
        if not chosen:
            row.update(scores={}, gate={"passed": False, "reason": f"cannot decide: no {gate.split} example"})
            models.append(row)
            continue
        log.info("scoring %s on %d %s examples", entry.id, len(chosen), gate.split)
        scores = score_model(recipe, benches[entry.base_model], entry.id, chosen, max_tokens, stats, paired)
        sides = scores.get(gate.metric, {}).get("values", {"base": [], "tuned": []})
        passed, reason, improvement = decide_gate(
            gate, sides["base"], sides["tuned"], require_ci, n_resamples, confidence, seed
        )
        row["scores"] = scores
        row["gate"] = {"passed": passed, "reason": reason, "improvement": improvement}
        models.append(row)
    return {
        "recipe": recipe.name,
        "metrics": list(recipe.metrics),
        "gate_rule": {**gate.model_dump(), "require_ci_above_zero": require_ci},
        "settings": {"n_resamples": n_resamples, "confidence": confidence, "seed": seed, "max_tokens": max_tokens},
        "models": models,
    }


def markdown_summary(report: Mapping[str, Any]) -> str:
    """One row per model: adapter value, n, base and tuned perplexity, NLL difference with CI, gate."""
    level = round(100 * report["settings"]["confidence"])
    lines = [
        f"Recipe {report['recipe']}: target perplexity on {report['gate_rule']['split']}, model vs its own base "
        f"(diff = tuned - base mean NLL, {level}% paired bootstrap CI).",
        "",
        "| model | for | n | base ppl | tuned ppl | NLL diff | CI | gate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["models"]:
        nll = row.get("scores", {}).get(PERPLEXITY)
        base = tuned = diff = ci = "-"
        if nll:
            base, tuned = f"{nll['base']['perplexity']:.2f}", f"{nll['tuned']['perplexity']:.2f}"
            d = nll["diff"]
            diff, ci = f"{d['mean']:+.3f}", f"[{d['low']:+.3f}, {d['high']:+.3f}]"
        verdict = "passed" if row["gate"]["passed"] else "FAILED"
        who = row["adapter_value"] or "-"
        lines.append(f"| {row['id']} | {who} | {row['n']} | {base} | {tuned} | {diff} | {ci} | {verdict} |")
    if report["gate_rule"].get("metric", PERPLEXITY) != PERPLEXITY:
        lines += ["", "Gate:"] + [f"- {row['id']}: {row['gate']['reason']}" for row in report["models"]]
    return "\n".join(lines)
