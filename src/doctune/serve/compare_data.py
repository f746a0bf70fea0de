"""The data of the compare page: the workspace's evaluation reports, their summaries and paired per-item rows.

Two report shapes are read (every key defensively, so an older or partial report still shows):

* ``reports/eval-*.json`` (:func:`doctune.evaluate.report.evaluate_models`): ``results[model][split]`` with
  aggregates (``accuracy``/``token_f1``/``embedding_similarity`` as ``{mean, low, high, n}``) and ``items`` rows
  (question, reference, answer, verdict, score, token_f1, embedding_similarity ...), ``comparisons`` and ``gate``.
* ``reports/recipe-<name>-*.json`` (:func:`doctune.evaluate.recipe_eval.evaluate_recipe_models`): ``models`` rows,
  each a model against its own base with per-metric ``base``/``tuned``/``diff`` and per-example ``values``. The
  examples themselves are not in the report; they are looked up again in ``dataset_<recipe>`` (the same choice
  the evaluation made) when the dataset still has them.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from doctune.serve.app import ServeContext

log = logging.getLogger(__name__)

REPORT_NAME = re.compile(r"^(eval|recipe-[\w.-]+)-[\w.-]+\.json$")
#: the per-item numbers of an eval report, in the order they decide a change when there is no verdict
EVAL_METRICS = ("score", "token_f1", "embedding_similarity")
BASE_SIDE = "base"
CHANGES = ("regression", "improvement", "same")


class ReportError(LookupError):
    """A report (or model, split) that the workspace does not have."""


def list_reports(ctx: ServeContext) -> list[dict[str, Any]]:
    """The evaluation reports of the workspace, newest first: name, kind (eval | recipe), recipe, modified time."""
    folder = ctx.workspace.root / "reports"
    out = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        if not REPORT_NAME.match(path.name):
            continue
        kind = "eval" if path.name.startswith("eval-") else "recipe"
        stat = path.stat()
        out.append({"name": path.name, "kind": kind, "mtime": stat.st_mtime, "size": stat.st_size})
    return sorted(out, key=lambda r: (r["mtime"], r["name"]), reverse=True)


def load_report(ctx: ServeContext, name: str) -> dict[str, Any]:
    """The parsed report ``name`` (a file name under ``reports/``), cached by its modification time."""
    if not name or not REPORT_NAME.match(name):
        raise ReportError(f"no evaluation report named {name!r}")
    path = ctx.workspace.root / "reports" / name
    if not path.is_file():
        raise ReportError(f"no evaluation report named {name!r}")
    stat = path.stat()

    def build() -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReportError(f"{name} cannot be read: {exc}") from None
        if not isinstance(data, dict):
            raise ReportError(f"{name} is not an evaluation report")
        return data

    return ctx.cached(f"report:{name}", (stat.st_mtime_ns, stat.st_size), build)


def is_recipe_report(report: Mapping[str, Any]) -> bool:
    return "recipe" in report and isinstance(report.get("models"), list)


def _ci(stat: Any) -> dict[str, Any] | None:
    if not isinstance(stat, Mapping):
        return None
    return {k: stat.get(k) for k in ("mean", "low", "high", "n")}


def eval_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Rows per model and split (n, errors, metrics with CIs), the comparisons and the gate lines."""
    results = report.get("results") or {}
    models = list(report.get("models") or results)
    splits = list(report.get("splits") or sorted({s for r in results.values() for s in r}))
    rows = []
    for model in models:
        for split in splits:
            res = (results.get(model) or {}).get(split)
            if not isinstance(res, Mapping):
                continue
            rows.append(
                {
                    "model": model,
                    "split": split,
                    "n": res.get("n", len(res.get("items") or [])),
                    "errors": f"{res.get('n_answer_errors', 0)}/{res.get('n_judge_failures', 0)}",
                    "metrics": {m: _ci(res.get(m)) for m in ("accuracy", "token_f1", "embedding_similarity")},
                }
            )
    gates = []
    for model, gate in (report.get("gate") or {}).items():
        if isinstance(gate, Mapping):
            gates.append({"model": model, **{k: gate.get(k) for k in ("passed", "reason", "recorded", "not_recorded")}})
    return {
        "kind": "eval",
        "models": models,
        "splits": splits,
        "rows": rows,
        "comparisons": [c for c in report.get("comparisons") or [] if isinstance(c, Mapping)],
        "gates": gates,
        "judge": report.get("judge"),
        "embedder": report.get("embedder"),
        "confidence": (report.get("settings") or {}).get("confidence"),
        "identities": report.get("model_identities") or {},
    }


def recipe_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Per model (against its own base): per metric base and tuned means with CIs, the paired diff, the gate."""
    rows = []
    for row in report.get("models") or []:
        if not isinstance(row, Mapping):
            continue
        metrics = []
        for metric, sides in (row.get("scores") or {}).items():
            if not isinstance(sides, Mapping):
                continue
            base, tuned = sides.get("base") or {}, sides.get("tuned") or {}
            metrics.append(
                {
                    "metric": metric,
                    "base": _ci(base),
                    "tuned": _ci(tuned),
                    "diff": _ci(sides.get("diff")),
                    "base_ppl": base.get("perplexity") if isinstance(base, Mapping) else None,
                    "tuned_ppl": tuned.get("perplexity") if isinstance(tuned, Mapping) else None,
                }
            )
        gate = row.get("gate") or {}
        rows.append(
            {
                "model": row.get("id", "?"),
                "base_model": row.get("base_model"),
                "for": row.get("adapter_value"),
                "split": row.get("split"),
                "n": row.get("n", 0),
                "metrics": metrics,
                "gate": {"passed": gate.get("passed"), "reason": gate.get("reason", "")},
            }
        )
    gates = [
        {"model": m, **{k: g.get(k) for k in ("passed", "reason", "recorded", "not_recorded")}}
        for m, g in (report.get("gate") or {}).items()
        if isinstance(g, Mapping)
    ]
    return {
        "kind": "recipe",
        "recipe": report.get("recipe"),
        "rule": report.get("gate_rule") or {},
        "rows": rows,
        "models": [r["model"] for r in rows],
        "splits": sorted({r["split"] for r in rows if r["split"]}),
        "gates": gates,
        "confidence": (report.get("settings") or {}).get("confidence"),
    }


def summarize(report: Mapping[str, Any]) -> dict[str, Any]:
    return recipe_summary(report) if is_recipe_report(report) else eval_summary(report)


def choices(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the per-item view can pair: (base options, tuned options, splits) with defaults."""
    summary = summarize(report)
    if summary["kind"] == "recipe":
        return {"bases": [BASE_SIDE], "tuned": summary["models"], "splits": summary["splits"]}
    models = summary["models"]
    return {"bases": models, "tuned": models, "splits": summary["splits"]}


# -- per-item rows -----------------------------------------------------------------------------------------------
def _side(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    keep = ("answer", "answer_error", "verdict", "reason", "judge_error", *EVAL_METRICS)
    return {k: row.get(k) for k in keep}


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not (isinstance(x, float) and math.isnan(x)) else None


def classify(base: Mapping[str, Any] | None, tuned: Mapping[str, Any] | None, higher_is_better: bool = True) -> str:
    """regression (base right, tuned wrong), improvement (the reverse) or same. With verdicts on both sides they
    decide; otherwise the first numeric metric scored on both: tuned worse than base is a regression."""
    if not base or not tuned:
        return "same"
    if base.get("verdict") is not None or tuned.get("verdict") is not None:
        b, t = base.get("verdict") == "correct", tuned.get("verdict") == "correct"
        return "regression" if b and not t else "improvement" if t and not b else "same"
    for key in (*EVAL_METRICS, *[k for k in base if k not in EVAL_METRICS]):
        b, t = _number(base.get(key)), _number(tuned.get(key))
        if b is None or t is None:
            continue
        if not higher_is_better:
            b, t = -b, -t
        return "regression" if t < b else "improvement" if t > b else "same"
    return "same"


def eval_items(report: Mapping[str, Any], base: str, tuned: str, split: str) -> list[dict[str, Any]]:
    """The items of ``split`` answered by both models, paired by item id, each with its change."""
    results = report.get("results") or {}
    sides = {}
    for model in (base, tuned):
        res = (results.get(model) or {}).get(split)
        if not isinstance(res, Mapping):
            raise ReportError(f"the report has no results of {model!r} on {split!r}")
        sides[model] = {r.get("item_id"): r for r in res.get("items") or [] if isinstance(r, Mapping)}
    rows = []
    for item_id, b in sides[base].items():
        t = sides[tuned].get(item_id)
        first = b or t or {}
        base_side, tuned_side = _side(b), _side(t)
        rows.append(
            {
                "item_id": item_id,
                "question": first.get("question", ""),
                "reference": first.get("reference", ""),
                "category": first.get("category") or "",
                "difficulty": first.get("difficulty"),
                "fields": {},
                "base": base_side,
                "tuned": tuned_side,
                "metrics": [k for k in EVAL_METRICS if any(s and s.get(k) is not None for s in (b, t))],
                "change": classify(base_side, tuned_side),
            }
        )
    return rows


def _recipe_examples(ctx: ServeContext, recipe_name: str, row: Mapping[str, Any]) -> list[Any] | None:
    """The examples a recipe model was scored on, chosen again as the evaluation chose them; None when the dataset
    no longer gives the same number of examples."""
    from doctune.evaluate.recipe_eval import examples_for
    from doctune.recipes import get_recipe
    from doctune.records import Example
    from doctune.sampling import evenly_spaced

    name = f"dataset_{recipe_name}"
    path = ctx.workspace.artifact_path(name)
    if not path.exists():
        return None
    try:
        recipe = get_recipe(recipe_name, ctx.config)
        sha = ctx.artifact_sha(name)

        def build() -> list[Example]:
            return [Example.model_validate(r) for r in pq.read_table(path).to_pylist()]

        examples = ctx.cached(f"examples:{name}", sha, build)
    except Exception as exc:  # an unknown recipe or an unreadable dataset: show the scores only
        log.warning("cannot read the examples of %s: %s", name, exc)
        return None
    n = int(row.get("n") or 0)
    chosen = evenly_spaced(examples_for(recipe, examples, row.get("split") or "", row.get("adapter_value")), n or None)
    return chosen if len(chosen) == n else None


def _at(values: Any, i: int) -> Any:
    return values[i] if isinstance(values, list) and i < len(values) else None


def recipe_items(ctx: ServeContext, report: Mapping[str, Any], tuned: str) -> list[dict[str, Any]]:
    """The examples one recipe model was scored on: per metric the base and tuned values, with the change on the
    gate metric, and the example's prompt, target and fields when the dataset still has them."""
    row = next((r for r in report.get("models") or [] if isinstance(r, Mapping) and r.get("id") == tuned), None)
    if row is None:
        raise ReportError(f"the report has no model {tuned!r}")
    scores = {m: s.get("values") or {} for m, s in (row.get("scores") or {}).items() if isinstance(s, Mapping)}
    rule = report.get("gate_rule") or {}
    gate_metric = rule.get("metric")
    higher = bool(rule.get("higher_is_better", True))
    n = max([len(v.get("base") or []) for v in scores.values()] + [0])
    examples = _recipe_examples(ctx, str(report.get("recipe", "")), row)
    rows = []
    for i in range(n):
        base = {m: _at(v.get("base"), i) for m, v in scores.items()}
        tun = {m: _at(v.get("tuned"), i) for m, v in scores.items()}
        order = [gate_metric] if gate_metric in scores else list(scores)
        b = {k: base[k] for k in order}
        t = {k: tun[k] for k in order}
        ex = examples[i] if examples else None
        rows.append(
            {
                "item_id": ex.example_id if ex else f"#{i + 1}",
                "question": "\n".join(f"{m.role}: {m.content}" for m in ex.prompt_messages) if ex else "",
                "reference": ex.target if ex else "",
                "category": "",
                "difficulty": None,
                "fields": ex.field_values() if ex else {},
                "base": base,
                "tuned": tun,
                "metrics": list(scores),
                # perplexity values are mean NLLs: lower is better whatever the gate says about other metrics
                "change": classify(b, t, higher if gate_metric != "perplexity" else False),
            }
        )
    return rows


def item_rows(ctx: ServeContext, report: Mapping[str, Any], base: str, tuned: str, split: str) -> list[dict[str, Any]]:
    if is_recipe_report(report):
        return recipe_items(ctx, report, tuned)
    return eval_items(report, base, tuned, split)


def filter_rows(rows: list[dict[str, Any]], change: str = "", category: str = "", difficulty: str = "", q: str = ""):
    """Rows matching every given filter (change, category, difficulty, a case-insensitive text anywhere)."""
    needle = q.strip().casefold()
    out = []
    for r in rows:
        if change and r["change"] != change:
            continue
        if category and r["category"] != category:
            continue
        if difficulty and str(r["difficulty"]) != difficulty:
            continue
        if needle:
            texts = [r["item_id"], r["question"], r["reference"], *[str(v) for v in r["fields"].values()]]
            for side in (r["base"], r["tuned"]):
                texts += [str(v) for v in (side or {}).values() if isinstance(v, str)]
            if not any(needle in t.casefold() for t in texts):
                continue
        out.append(r)
    return out


def report_path(ctx: ServeContext, name: str) -> Path:
    return ctx.workspace.root / "reports" / name
