"""Does graph context help? The same held-out path questions asked with and without the graph context, to the base
model and to each tuned model, scored by one checked grader (the recipe's ``accuracy``).

Examples come in pairs sharing ``fields.path_id`` (``fields.context`` False / True). Only complete pairs count.
For each model: accuracy without and with context (bootstrap CIs) and the paired difference with - without; and
per condition tuned - base. Replies come from the bench's reply cache, so the recipe evaluation's replies are
reused, not generated again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from doctune.evaluate.metrics import bootstrap_ci, paired_bootstrap_diff
from doctune.evaluate.perplexity import message_dicts
from doctune.evaluate.recipe_eval import ci_dict, examples_for
from doctune.records import Example
from doctune.sampling import evenly_spaced

log = logging.getLogger(__name__)


def _pairs(examples: Sequence[Example]) -> list[tuple[Example, Example]]:
    """(without context, with context) per path, in the examples' order."""
    by_path: dict[str, dict[bool, Example]] = {}
    for ex in examples:
        values = ex.field_values()
        by_path.setdefault(values["path_id"], {})[bool(values["context"])] = ex
    return [(p[False], p[True]) for p in by_path.values() if False in p and True in p]


def graph_context_report(
    recipe: Any, config: Any, examples: Sequence[Example], entries: Sequence[Any], benches
) -> dict:
    """The with/without-context table of every model in ``entries`` (see the module docstring)."""
    ev = config.evaluate
    split = recipe.gate.split
    score: Callable[[Example, str], float] = recipe.accuracy
    out: dict[str, Any] = {
        "question": "does graph context help?",
        "split": split,
        "grader": "recipe kg accuracy: names a right answer and no other entity of the graph outside the path",
        "grader_check": getattr(recipe, "grader_check", None),
        "models": [],
    }

    def ci(values: Sequence[float]) -> dict[str, Any]:
        return ci_dict(bootstrap_ci(values, ev.n_resamples, ev.confidence, ev.seed), len(values))

    def diff(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
        return ci_dict(paired_bootstrap_diff(a, b, ev.n_resamples, ev.confidence, ev.seed), len(a))

    trained_edges = {e for ex in examples if ex.split == "train" for e in ex.field_values().get("edge_ids", [])}
    for entry in entries:
        chosen = evenly_spaced(examples_for(recipe, examples, split, None), ev.max_items_per_split)
        pairs = _pairs(chosen)
        # a held-out question whose relations all appear in training questions tests recall of a trained fact
        seen = [set(p.field_values().get("edge_ids", [])) <= trained_edges for p, _ in pairs]
        bench = benches[entry.base_model]
        acc: dict[str, dict[str, list[float]]] = {s: {"without": [], "with": []} for s in ("base", "tuned")}
        samples = []
        for plain, framed in pairs:
            row: dict[str, Any] = {"path_id": plain.field_values()["path_id"], "answer": plain.target}
            for side, model in (("base", None), ("tuned", entry.id)):
                for cond, ex in (("without", plain), ("with", framed)):
                    reply = bench.reply(model, ex.example_id, message_dicts(ex.prompt_messages), ev.max_tokens)
                    value = score(ex, reply)
                    acc[side][cond].append(value)
                    row[f"{side}_{cond}"] = {"reply": reply[:200], "accuracy": value}
            samples.append(row)
        in_context = [framed.field_values().get("answer_in_context", False) for _, framed in pairs]
        model_row: dict[str, Any] = {"id": entry.id, "base_model": entry.base_model, "pairs": len(pairs)}
        for side in ("base", "tuned"):
            a, b = acc[side]["without"], acc[side]["with"]
            model_row[side] = {
                "without_context": ci(a),
                "with_context": ci(b),
                "with_minus_without": diff(a, b) if a else None,
                "with_context_answer_given": ci([v for v, given in zip(b, in_context, strict=True) if given]),
            }
        model_row["tuned_minus_base"] = {
            cond: diff(acc["base"][cond], acc["tuned"][cond]) if acc["base"][cond] else None
            for cond in ("without", "with")
        }
        model_row["answer_in_context_share"] = round(sum(in_context) / len(in_context), 3) if in_context else None
        model_row["relations_trained_share"] = round(sum(seen) / len(seen), 3) if seen else None
        model_row["tuned_without_context_unseen_relations"] = ci(
            [v for v, s in zip(acc["tuned"]["without"], seen, strict=True) if not s]
        )
        model_row["samples"] = samples[:20]
        out["models"].append(model_row)
    if entries:  # the base model never saw any path: every pair, train split included, is held out for it
        out["base_all_paths"] = _base_all_paths(recipe, examples, benches[entries[0].base_model], ev, score, ci, diff)
        log.info("graph context: %s on %d paired questions", entry.id, len(pairs))
    return out


def _base_all_paths(recipe, examples, bench, ev, score, ci, diff) -> dict[str, Any]:
    """The base model with and without context on the pairs of every split (it was trained on none of them)."""
    pairs = _pairs(evenly_spaced(list(examples), None))
    without, with_ = [], []
    for plain, framed in pairs:
        for values, ex in ((without, plain), (with_, framed)):
            reply = bench.reply(None, ex.example_id, message_dicts(ex.prompt_messages), ev.max_tokens)
            values.append(score(ex, reply))
    return {
        "pairs": len(pairs),
        "without_context": ci(without),
        "with_context": ci(with_),
        "with_minus_without": diff(without, with_) if without else None,
    }


def graph_context_markdown(report: dict) -> str:
    """The table of :func:`graph_context_report` as Markdown."""
    lines = [
        "| model | pairs | without context | with context | with - without |",
        "|---|---|---|---|---|",
    ]

    def fmt(c: dict | None) -> str:
        if not c or c.get("mean") is None:
            return "n/a"
        return f"{c['mean']:.3f} [{c['low']:.3f}, {c['high']:.3f}]"

    for row in report.get("models", []):
        for side in ("base", "tuned"):
            s = row[side]
            label = f"{side} ({row['id']})" if side == "tuned" else f"base ({row['base_model']})"
            lines.append(
                f"| {label} | {row['pairs']} | {fmt(s['without_context'])} | {fmt(s['with_context'])} | "
                f"{fmt(s['with_minus_without'])} |"
            )
    if (base := report.get("base_all_paths")) is not None:
        lines.append(
            f"| base, every split (it was trained on none) | {base['pairs']} | {fmt(base['without_context'])} | "
            f"{fmt(base['with_context'])} | {fmt(base['with_minus_without'])} |"
        )
    return "\n".join(lines)
