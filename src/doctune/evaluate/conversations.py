"""Metrics of the conversation benchmark (``doctune eval conversations``): pure functions on a conversation's turns
and the characters' real speeches, and their aggregation over scenarios with bootstrap intervals.

Only the turns a model wrote count (:func:`generated_turns`: not a scenario's scripted opening, not the user's).
Per conversation:

* ``attribution``: share of the turns that the speaker classifier of the fidelity benchmark
  (:mod:`doctune.evaluate.attribution`), trained on the real speeches of the conversation's characters only, gives
  to the character who said it; an empty turn or a loop (:func:`doctune.evaluate.style.is_degenerate`) counts as
  not attributed. Chance is 1/n for n characters (stored beside it).
* ``collapse``: voice collapse. The mean cosine similarity between turns of *different* characters minus the same
  mean between real speeches of those characters, in the classifier's TF-IDF space (word 1-2-grams and character
  2-4-grams: style more than topic, deterministic, no model to load). Real speeches are cut to the turns' median
  length in words, so short turns are not compared with long speeches. Above 0: the characters sound more alike than
  they do in the plays. The real side is fixed per scenario, so between settings of one scenario only the turns'
  similarity differs.
* ``repetition``: share of the word 3-grams of the turns (in order, across the whole conversation) that repeat an
  earlier 3-gram of the conversation: a model looping on a line, or characters echoing each other, score high.
* ``compliance``: share of the turns whose speaker is present and is who the turn policy demands
  (:func:`doctune.converse.policy.expected_speaker`); under ``natural``, present and not the previous speaker
  (unless alone on stage).
* ``boosted``: share of the turns using at least one of their character's boosted words
  (``TurnRecord.boosted_used``, recorded with the bias off too, so on and off compare).
* ``judge``: share of the turns a judge calls in character, only when a judge passed its check.

Aggregation: per setting, the mean over scenarios with a percentile bootstrap CI; per switch, the paired difference
with the reference (paired by scenario) with a CI and a plain verdict, aware of each metric's direction.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from doctune.converse.log import TurnRecord
from doctune.converse.policy import expected_speaker
from doctune.evaluate.metrics import bootstrap_ci, paired_bootstrap_diff
from doctune.evaluate.style import is_degenerate, words

#: (texts) -> L2-normalised row vectors (a numpy array or a scipy sparse matrix)
Embed = Callable[[Sequence[str]], Any]


@dataclass(frozen=True)
class Metric:
    """A benchmark metric: its label, whether higher is better, what it measures."""

    label: str
    higher_is_better: bool
    description: str


METRICS: dict[str, Metric] = {
    "attribution": Metric(
        "attribution", True, "share of turns the speaker classifier gives to their speaker (chance 1/n)"
    ),
    "collapse": Metric(
        "voice collapse",
        False,
        "similarity of different characters' turns minus that of their real speeches (0: as distinct as the play)",
    ),
    "repetition": Metric("repetition", False, "share of word 3-grams repeating an earlier one in the conversation"),
    "compliance": Metric("policy compliance", True, "share of turns by a present speaker the turn policy demands"),
    "boosted": Metric("boosted words", True, "share of turns using at least one of the character's boosted words"),
    "judge": Metric("in character (judge)", True, "share of turns the checked judge calls in character"),
}
NO_EFFECT = "no measurable effect (CI includes 0)"


def generated_turns(turns: Sequence[TurnRecord]) -> list[TurnRecord]:
    """The turns a model wrote: not the scenario's scripted opening, not the user's."""
    return [t for t in turns if not t.user and t.why != "opening"]


def attribution_accuracy(turns: Sequence[TurnRecord], predict: Callable[[list[str]], list[str]]) -> float | None:
    """Share of the generated turns ``predict`` attributes to their speaker (an empty or looping turn: not)."""
    gen = generated_turns(turns)
    if not gen:
        return None
    predicted = predict([t.text for t in gen])
    hits = [
        p == t.speaker and bool(t.text.strip()) and not is_degenerate(t.text)
        for t, p in zip(gen, predicted, strict=True)
    ]
    return sum(hits) / len(hits)


def _cross_similarity(vectors: np.ndarray, owners: Sequence[str]) -> float | None:
    """Mean cosine similarity over pairs of rows owned by different characters (rows are L2-normalised)."""
    if len(owners) < 2:
        return None
    sims = vectors @ vectors.T
    sims = sims.toarray() if hasattr(sims, "toarray") else np.asarray(sims)
    labels = np.asarray(owners)
    mask = labels[:, None] != labels[None, :]
    return float(sims[mask].mean()) if mask.any() else None


def classifier_space(classifier: Any) -> Embed:
    """The TF-IDF space of a fitted :class:`~doctune.evaluate.attribution.SpeakerClassifier` (its word and character
    n-gram features, rows L2-normalised): where the classifier tells the speakers apart."""
    from sklearn.preprocessing import normalize

    features = classifier.pipeline.named_steps["features"]

    def embed(texts: Sequence[str]) -> Any:
        return normalize(features.transform([t if t.strip() else "." for t in texts]))

    return embed


def _cut(text: str, n_words: int) -> str:
    """The first ``n_words`` whitespace words of ``text``."""
    return " ".join(text.split()[:n_words])


def voice_collapse(
    turns: Sequence[TurnRecord], real: Mapping[str, Sequence[str]], embed: Embed, max_real: int = 40
) -> dict[str, float] | None:
    """``{"turns", "real", "collapse"}``: the cross-character similarity of the generated turns, of the real speeches
    (at most ``max_real`` per character, evenly spaced, cut to the turns' median length), and turns - real. None when
    fewer than two characters spoke (or have real speeches)."""
    gen = [t for t in generated_turns(turns) if t.text.strip()]
    speakers = sorted({t.speaker for t in gen})
    if len(speakers) < 2 or any(not real.get(s) for s in speakers):
        return None
    n_words = max(3, int(statistics.median(len(t.text.split()) for t in gen)))
    real_texts, real_owners = [], []
    for s in speakers:
        texts = [x for x in real[s] if x.strip()]
        step = max(1, len(texts) // max_real)
        chosen = texts[::step][:max_real]
        real_texts += [_cut(x, n_words) for x in chosen]
        real_owners += [s] * len(chosen)
    vectors = embed([t.text for t in gen] + real_texts)
    turns_sim = _cross_similarity(vectors[: len(gen)], [t.speaker for t in gen])
    real_sim = _cross_similarity(vectors[len(gen) :], real_owners)
    if turns_sim is None or real_sim is None:
        return None
    return {"turns": turns_sim, "real": real_sim, "collapse": turns_sim - real_sim}


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repetition(turns: Sequence[TurnRecord], n: int = 3) -> float | None:
    """Share of the word ``n``-grams of the generated turns that repeat an earlier one of the conversation (within a
    turn or across turns); None when the turns have no ``n``-gram at all."""
    seen: set[tuple[str, ...]] = set()
    total = repeats = 0
    for t in generated_turns(turns):
        for gram in ngrams(words(t.text), n):
            total += 1
            repeats += gram in seen
            seen.add(gram)
    return repeats / total if total else None


def turn_compliant(policy: str, order: Sequence[str], turn: TurnRecord, previous: TurnRecord | None) -> bool:
    """Whether ``turn``'s speaker is present and is who ``policy`` demands after ``previous``."""
    if turn.speaker not in turn.present:
        return False
    last_speaker = previous.speaker if previous else None
    if policy == "natural":
        alone = [p for p in turn.present if p != last_speaker] == []
        return alone or turn.speaker != last_speaker
    wanted = expected_speaker(policy, order, turn.present, last_speaker, previous.text if previous else "")
    return turn.speaker == wanted


def policy_compliance(turns: Sequence[TurnRecord], order: Sequence[str], policy: str) -> float | None:
    """Share of the generated turns that comply with ``policy`` (:func:`turn_compliant`)."""
    checks = []
    previous: TurnRecord | None = None
    for t in turns:
        if not t.user and t.why != "opening":
            checks.append(turn_compliant(policy, order, t, previous))
        previous = t
    return sum(checks) / len(checks) if checks else None


def boosted_rate(turns: Sequence[TurnRecord]) -> float | None:
    """Share of the generated turns that used at least one boosted word."""
    gen = generated_turns(turns)
    return sum(bool(t.boosted_used) for t in gen) / len(gen) if gen else None


def judge_rate(verdicts: Sequence[bool | None]) -> float | None:
    """Share of turns judged in character (a failed call counts as not); None without verdicts."""
    return sum(v is True for v in verdicts) / len(verdicts) if verdicts else None


def conversation_metrics(
    turns: Sequence[TurnRecord],
    order: Sequence[str],
    policy: str,
    predict: Callable[[list[str]], list[str]],
    real: Mapping[str, Sequence[str]],
    embed: Embed,
    verdicts: Sequence[bool | None] | None = None,
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """(every metric of :data:`METRICS` for one conversation, details: chance level, collapse's two sides)."""
    collapse = voice_collapse(turns, real, embed)
    n_characters = len(order)
    values: dict[str, float | None] = {
        "attribution": attribution_accuracy(turns, predict),
        "collapse": collapse["collapse"] if collapse else None,
        "repetition": repetition(turns),
        "compliance": policy_compliance(turns, order, policy),
        "boosted": boosted_rate(turns),
        "judge": judge_rate(verdicts) if verdicts is not None else None,
    }
    details = {
        "chance": 1 / n_characters if n_characters else None,
        "collapse": collapse,
        "generated_turns": len(generated_turns(turns)),
    }
    return values, details


# -- aggregation ------------------------------------------------------------------------------------------------------


def _stat(mean: float, low: float, high: float, n: int) -> dict[str, Any]:
    ok = n > 0 and not np.isnan(mean)
    return {
        "mean": float(mean) if ok else None,
        "low": float(low) if ok else None,
        "high": float(high) if ok else None,
        "n": n,
    }


def mean_ci(values: Sequence[float | None], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict:
    """``{mean, low, high, n}`` over the values that are not None (all None when none is)."""
    kept = [v for v in values if v is not None]
    return _stat(*bootstrap_ci(kept, n_resamples, confidence, seed), len(kept))


def verdict(low: float | None, high: float | None, higher_is_better: bool, n: int) -> str:
    """ "helps", "hurts" or "no measurable effect (CI includes 0)" for an effect (with - without) and its CI."""
    if n < 2 or low is None or high is None:
        return "not enough scenarios to tell"
    if low > 0:
        return "helps" if higher_is_better else "hurts"
    if high < 0:
        return "hurts" if higher_is_better else "helps"
    return NO_EFFECT


def switch_effect(
    reference: Mapping[str, float | None],
    switched: Mapping[str, float | None],
    metric: str,
    removes: bool,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """One switch on one metric, paired by scenario (scenarios where either side is None are left out).

    ``diff`` is switched - reference; ``effect`` is what the switched component adds (with it - without it): the
    reference minus the switched setting when the switch ``removes`` a component (rag off, bias off, no adapters),
    else the diff (a larger student). ``verdict`` reads ``effect`` in the metric's direction."""
    keys = [k for k in reference if k in switched and reference[k] is not None and switched[k] is not None]
    ref = [float(reference[k]) for k in keys]  # type: ignore[arg-type]
    new = [float(switched[k]) for k in keys]  # type: ignore[arg-type]
    diff = _stat(*paired_bootstrap_diff(ref, new, n_resamples, confidence, seed), len(keys))
    if removes:
        effect = _stat(*paired_bootstrap_diff(new, ref, n_resamples, confidence, seed), len(keys))
    else:
        effect = dict(diff)
    higher = METRICS[metric].higher_is_better
    return {
        "n": len(keys),
        "reference": mean_ci(ref, n_resamples, confidence, seed),
        "switched": mean_ci(new, n_resamples, confidence, seed),
        "diff": diff,
        "effect": effect,
        "verdict": verdict(effect["low"], effect["high"], higher, len(keys)),
    }


def switch_summary(component: str, effects: Mapping[str, Mapping[str, Any]]) -> str:
    """One plain sentence on a switch: where its component helps, hurts, or has no measurable effect."""
    groups: dict[str, list[str]] = {"helps": [], "hurts": [], "none": []}
    for metric, e in effects.items():
        label = METRICS[metric].label
        groups["helps" if e["verdict"] == "helps" else "hurts" if e["verdict"] == "hurts" else "none"].append(label)
    parts = []
    if groups["helps"]:
        parts.append("helps " + ", ".join(groups["helps"]))
    if groups["hurts"]:
        parts.append("hurts " + ", ".join(groups["hurts"]))
    if groups["none"]:
        parts.append("no measurable effect on " + ", ".join(groups["none"]))
    if not groups["helps"]:
        parts.insert(0, "does not measurably help")
    return f"{component}: " + "; ".join(parts) + "."


def aggregate(
    conversations: Sequence[Mapping[str, Any]],
    settings: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(per setting that ran: metric -> mean over scenarios with its CI; per switch, i.e. every setting after the
    first, the reference: metric -> :func:`switch_effect`, and a plain ``summary``). ``settings`` are mappings with
    ``name``, ``component``, ``removes``, ``run`` and ``reason``; ``conversations`` have ``setting``, ``scenario`` and
    ``metrics``."""
    per_setting = {
        s["name"]: {
            m: mean_ci(list(scenario_values(conversations, s["name"], m).values()), n_resamples, confidence, seed)
            for m in metrics
        }
        for s in settings
        if s["run"]
    }
    reference = settings[0]["name"]
    switches = []
    for s in settings[1:]:
        row: dict[str, Any] = {k: s[k] for k in ("name", "component", "removes", "run", "reason")}
        row["effects"] = {}
        if s["run"]:
            for m in metrics:
                ref = scenario_values(conversations, reference, m)
                new = scenario_values(conversations, s["name"], m)
                row["effects"][m] = switch_effect(ref, new, m, s["removes"], n_resamples, confidence, seed)
            row["summary"] = switch_summary(s["component"], row["effects"])
        else:
            row["summary"] = f"{s['component']}: not run ({s['reason']})."
        switches.append(row)
    return per_setting, switches


def scenario_values(conversations: Sequence[Mapping[str, Any]], setting: str, metric: str) -> dict[str, float | None]:
    """scenario -> the metric's value, for the conversations of ``setting``."""
    return {c["scenario"]: c["metrics"].get(metric) for c in conversations if c["setting"] == setting}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
