"""Evaluation of the likes recipe: ROC AUC and precision@k with bootstrap CIs, and models' yes-probabilities.

:func:`score_report` takes scores and 0/1 labels. AUC is the Mann-Whitney statistic (ties count half), precision@k
the share of liked posts among the ``k`` highest scores (ties broken by input order). Intervals are percentile
bootstrap intervals over resampled examples (same ``n_resamples`` / ``confidence`` / ``seed`` convention as
:func:`doctune.evaluate.metrics.bootstrap_ci`, whose resampling is of a mean and so does not fit AUC); a resample
with one class only is skipped for AUC.

:func:`yes_probabilities` gives P(yes) of a causal LM for likes questions: after the chat prompt (generation prompt
added), the next-token logits of the "yes" tokens against the "no" tokens (spelling variants summed).
:func:`likes_evaluation` compares the zero-shot base, the embedding baseline and the tuned models on eval.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.evaluate.perplexity import ModelBench
    from doctune.records import Example
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)

YES_SPELLINGS = ("yes", "Yes", " yes", " Yes", "YES")
NO_SPELLINGS = ("no", "No", " no", " No", "NO")


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (NaN unless both classes are present)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=int)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_at_k(scores: Sequence[float], labels: Sequence[int], k: int) -> float:
    """Share of positives among the ``k`` highest scores (all items when fewer than ``k``; NaN when none)."""
    if len(scores) == 0:
        return math.nan
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return float(np.asarray(labels, dtype=int)[order].mean())


def bootstrap_metric(
    metric: Callable[[np.ndarray, np.ndarray], float],
    scores: Sequence[float],
    labels: Sequence[int],
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(value, low, high)``: ``metric`` on all items and its percentile bootstrap interval."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=int)
    value = metric(s, y)
    if len(s) < 2 or math.isnan(value):
        return value, value, value
    rng = np.random.default_rng(seed)
    draws = [metric(s[idx], y[idx]) for idx in rng.integers(0, len(s), size=(n_resamples, len(s)))]
    finite = [d for d in draws if not math.isnan(d)]
    if not finite:
        return value, math.nan, math.nan
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return value, float(min(low, value)), float(max(high, value))


def score_report(
    scores: Sequence[float],
    labels: Sequence[int],
    ks: Sequence[int] = (5, 10),
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """``{"n", "positives", "roc_auc": {mean, low, high, n}, "precision_at_k": {k: {...}}}`` of one scorer."""
    from doctune.evaluate.recipe_eval import ci_dict

    n = len(scores)
    auc = bootstrap_metric(roc_auc, scores, labels, n_resamples, confidence, seed)
    out: dict[str, Any] = {"n": n, "positives": int(np.sum(labels)), "roc_auc": ci_dict(auc, n), "precision_at_k": {}}
    for k in ks:
        stat = bootstrap_metric(
            lambda s, y, k=k: precision_at_k(s, y, k), scores, labels, n_resamples, confidence, seed
        )
        out["precision_at_k"][str(k)] = ci_dict(stat, min(k, n))
    return out


def yes_probabilities(
    model: Any, tokenizer: Any, conversations: Sequence[Sequence[Mapping[str, str]]], batch_size: int = 8
) -> list[float]:
    """P(yes) / (P(yes) + P(no)) of the next token after each conversation (its prompt, no answer)."""
    import torch

    yes_ids = _first_token_ids(tokenizer, YES_SPELLINGS)
    no_ids = _first_token_ids(tokenizer, NO_SPELLINGS)
    device = next(model.parameters()).device
    out: list[float] = []
    for convo in conversations:
        prompt = [{"role": m["role"], "content": m["content"]} for m in convo]
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        ids = {k: v.to(device) for k, v in ids.items()}
        with torch.no_grad():
            logits = model(**ids).logits[0, -1].float()
        logp = torch.log_softmax(logits, dim=-1)
        yes = torch.logsumexp(logp[yes_ids], dim=0)
        no = torch.logsumexp(logp[no_ids], dim=0)
        out.append(float(torch.sigmoid(yes - no)))
    return out


def _first_token_ids(tokenizer: Any, spellings: Sequence[str]) -> list[int]:
    ids = []
    for word in spellings:
        tokens = tokenizer.encode(word, add_special_tokens=False)
        if tokens and tokens[0] not in ids:
            ids.append(tokens[0])
    return ids


def bench_yes_probabilities(bench: ModelBench, name: str | None, examples: Sequence[Example]) -> list[float]:
    """P(yes) of model ``name`` on the bench (None: the base) for likes examples (their prompts)."""
    from doctune.evaluate.perplexity import message_dicts

    return bench_yes_probabilities_for(bench, name, [message_dicts(e.prompt_messages) for e in examples])


def bench_yes_probabilities_for(
    bench: ModelBench, name: str | None, conversations: Sequence[Sequence[Mapping[str, str]]]
) -> list[float]:
    """P(yes) of model ``name`` on the bench (None: the base) after each conversation."""
    with bench.using(name) as model:
        return yes_probabilities(model, bench.tokenizer, conversations)


def likes_evaluation(
    config: DoctuneConfig,
    workspace: Workspace,
    examples: Sequence[Example],
    entries: Sequence[Any],
    benches: Mapping[str, ModelBench],
) -> dict[str, Any]:
    """Scorers on the eval split: zero-shot base per base model, the embedding baseline (trained on train), and
    each tuned model; every one with AUC and precision@k (``likes.k``) with CIs."""
    from doctune.rank.baseline import BaselineError, example_post_text, fit_like_baseline, like_label, workspace_embed
    from doctune.sampling import evenly_spaced

    ev = config.evaluate
    train = [e for e in examples if e.split == "train"]
    chosen = evenly_spaced([e for e in examples if e.split == "eval"], ev.max_items_per_split)
    labels = [like_label(e) for e in chosen]

    def report(scores: Sequence[float]) -> dict[str, Any]:
        return score_report(scores, labels, config.likes.k, ev.n_resamples, ev.confidence, ev.seed)

    scorers: dict[str, Any] = {}
    try:
        baseline = fit_like_baseline(train, workspace_embed(config, workspace), config.likes.seed)
        scorers["baseline"] = report(baseline.predict([example_post_text(e) for e in chosen]).tolist())
    except BaselineError as exc:
        scorers["baseline"] = {"error": f"baseline not trained: {exc}"}
    for base_name, bench in benches.items():
        scorers[f"base:{base_name}"] = report(bench_yes_probabilities(bench, None, chosen))
    for entry in entries:
        scorers[entry.id] = report(bench_yes_probabilities(benches[entry.base_model], entry.id, chosen))
    return {"split": "eval", "n": len(chosen), "positives": sum(labels), "scorers": scorers}
