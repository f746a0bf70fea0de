"""The fidelity benchmark of a one-adapter-per-character recipe: does each adapter speak as *its* character?

On the held-out scenes (the recipe's gate split), per character and per student (a base model and its
adapters; ``fidelity.compare_students`` adds more, e.g. a larger base, reported beside the first):

* **perplexity matrix**: the character's real held-out speeches (at most ``fidelity.max_speeches``) scored under
  the base, its own adapter and every other character's adapter. Own lowest is the aim; for each other adapter the
  paired bootstrap CI of (other - own) mean NLL is reported, and a same-play adapter that fits as well or better is
  flagged "learned the play, not the voice";
* **attribution**: a speaker classifier (:mod:`doctune.evaluate.attribution`) trained on the real speeches of the
  play's training scenes, its accuracy on real held-out speeches beside the chance levels; then the base and the
  own adapter reply to ``fidelity.reply_contexts`` held-out contexts (greedy, ``fidelity.max_tokens``) and the
  share of replies attributed to the character is reported with a bootstrap CI;
* **style** (:mod:`doctune.evaluate.style`): length, verse share, early-modern usage and the character's
  distinctive-word rate of the real speeches and of each model's replies to the same contexts;
* **in character**: the judge's yes/no share, only when the judge passed its check
  (:mod:`doctune.evaluate.in_character`); otherwise "not scored" and why.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from doctune.characters.stats import distinctive_words
from doctune.evaluate.attribution import (
    SpeakerClassifier,
    balanced_accuracy,
    chance_levels,
    top_speakers,
    train_speaker_classifier,
)
from doctune.evaluate.in_character import judge_in_character
from doctune.evaluate.metrics import bootstrap_ci, paired_bootstrap_diff
from doctune.evaluate.perplexity import ModelBench, message_dicts
from doctune.evaluate.recipe_eval import ci_dict
from doctune.evaluate.style import STYLE_METRICS, is_degenerate, style_metrics
from doctune.llm.client import LLMClient
from doctune.recipes.base import Recipe
from doctune.records import Example, Speech
from doctune.registry import ModelEntry
from doctune.sampling import evenly_spaced

log = logging.getLogger(__name__)

NOT_THE_VOICE = "learned the play, not the voice"
SAMPLE_REPLIES = 3  # replies shown per character in the HTML and markdown (the JSON keeps all of them)


@functools.cache
def function_words() -> frozenset[str]:
    """English function words (scikit-learn's stop list), left out of the distinctive words of the style metric."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


@dataclass
class Student:
    """One base model and its adapters, by character."""

    name: str
    base_model: str
    adapters: dict[str, ModelEntry] = field(default_factory=dict)


@dataclass
class FidelitySettings:
    max_speeches: int
    reply_contexts: int
    max_tokens: int
    classifier_characters: int
    distinctive_words: int
    n_resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0


def scene_of(example: Example) -> tuple[str, str, str]:
    f = example.field_values()
    return str(f.get("play", "")), str(f.get("act", "")), str(f.get("scene", ""))


def speeches_from_examples(examples: Sequence[Example], recipe: Recipe) -> list[Speech]:
    """Stand-in speeches (each example's target as said by its adapter value) when no ``speeches`` artifact is read."""
    out = []
    for i, ex in enumerate(examples):
        play, act, scene = scene_of(ex)
        speaker = recipe.adapter_key(ex) or ""
        out.append(
            Speech(
                speech_id=ex.unit_id or ex.example_id,
                doc_id=(ex.doc_ids or [""])[0],
                play=play,
                act=act,
                scene=scene,
                index=i,
                speaker=speaker,
                raw_speaker=speaker,
                text=ex.target,
                char_start=0,
                char_end=0,
            )
        )
    return out


class _Stats:
    def __init__(self, s: FidelitySettings):
        self.s = s

    def ci(self, values: Sequence[float]) -> dict[str, Any]:
        vals = [v for v in values if not math.isnan(v)]
        return ci_dict(bootstrap_ci(vals, self.s.n_resamples, self.s.confidence, self.s.seed), len(vals))

    def paired(self, a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
        """CI of ``b - a``."""
        pairs = [(x, y) for x, y in zip(a, b, strict=True) if not (math.isnan(x) or math.isnan(y))]
        diff = paired_bootstrap_diff([x for x, _ in pairs], [y for _, y in pairs], *self._args())
        return ci_dict(diff, len(pairs))

    def _args(self) -> tuple[int, float, int]:
        return self.s.n_resamples, self.s.confidence, self.s.seed


def classifier_section(
    speeches: Sequence[Speech], held_scenes: set[tuple[str, str, str]], characters_by_play: Mapping[str, set[str]], st
) -> tuple[dict[str, SpeakerClassifier], dict[str, Any]]:
    """Per play: the speaker classifier trained on training-scene speeches, and its held-out accuracy vs chance."""
    classifiers, report = {}, {}
    for play, chars in sorted(characters_by_play.items()):
        in_play = [s for s in speeches if s.play == play]
        train = [s for s in in_play if (s.play, s.act, s.scene) not in held_scenes]
        classes = top_speakers(train, st.s.classifier_characters, include=sorted(chars))
        if len(classes) < 2:
            report[play] = {"classes": classes, "error": "fewer than 2 speakers in the training scenes"}
            continue
        clf = train_speaker_classifier(train, classes, st.s.seed)
        test = [s for s in in_play if (s.play, s.act, s.scene) in held_scenes and s.speaker in classes]
        truth = [s.speaker for s in test]
        predicted = clf.predict([s.text for s in test])
        correct = [float(t == p) for t, p in zip(truth, predicted, strict=True)]
        classifiers[play] = clf
        report[play] = {
            "classes": classes,
            "n_train": sum(s.speaker in classes for s in train),
            "n_test": len(test),
            "accuracy": st.ci(correct),
            "balanced_accuracy": None if not test else round(balanced_accuracy(truth, predicted), 6),
            "chance": chance_levels(truth, len(classes)),
        }
    return classifiers, report


def perplexity_section(
    bench: ModelBench, student: Student, character: str, held: Sequence[Example], plays: Mapping[str, str], st
) -> dict[str, Any]:
    """The character's held-out speeches under the base, its own and every other adapter of ``student``."""
    columns: dict[str, str | None] = {"base": None, **{c: e.id for c, e in student.adapters.items()}}
    values = {
        col: [bench.nll(name, ex.example_id, message_dicts(ex.messages)) for ex in held]
        for col, name in columns.items()
    }
    models = {}
    for col, vals in values.items():
        stat = st.ci(vals)
        stat["perplexity"] = round(math.exp(stat["mean"]), 4) if stat["mean"] is not None else None
        models[col] = stat
    own = values[character]
    own_mean = models[character]["mean"]
    versus = []
    for other in [c for c in columns if c != character]:
        diff = st.paired(own, values[other])  # other - own: above 0 means own fits better
        same_play = other != "base" and plays.get(other) == plays.get(character)
        if diff["mean"] is None:
            verdict = "not scored"
        elif diff["mean"] > 0:
            verdict = "own lower" + (" (CI above 0)" if diff["low"] > 0 else " (CI includes 0)")
        elif other == "base":
            verdict = "the base fits as well or better: the adapter learned nothing of the voice"
        else:
            verdict = NOT_THE_VOICE if same_play else "another play's adapter fits as well or better: not the voice"
        versus.append({"other": other, "same_play": same_play, "diff": diff, "verdict": verdict})
    others = [m["mean"] for c, m in models.items() if c != character and m["mean"] is not None]
    return {
        "n": len(held),
        "models": models,
        "own_lowest": own_mean is not None and all(own_mean < o for o in others),
        "versus": versus,
    }


def reply_sections(
    bench: ModelBench,
    entry: ModelEntry,
    character: str,
    contexts: Sequence[Example],
    classifier: SpeakerClassifier | None,
    distinctive: Sequence[str],
    judge: LLMClient | None,
    judge_reason: str,
    st,
) -> dict[str, Any]:
    """Attribution, style and in-character scores of the real speeches and of base and own replies."""
    texts: dict[str, list[str]] = {"real": [ex.target for ex in contexts]}
    for label, name in (("base", None), ("own", entry.id)):
        texts[label] = [
            bench.reply(name, ex.example_id, message_dicts(ex.prompt_messages), st.s.max_tokens) for ex in contexts
        ]
    attribution: dict[str, Any] = {"n": len(contexts)}
    if classifier is None or character not in classifier.classes:
        attribution["error"] = f"{character} is not a class of the play's speaker classifier"
    else:
        # a loop is not the character's speech: a degenerate reply counts as not attributed, whatever the classifier
        for label, replies in texts.items():
            predicted = classifier.predict(replies)
            hits = [float(p == character and not is_degenerate(r)) for p, r in zip(predicted, replies, strict=True)]
            attribution[label] = st.ci(hits)
            attribution[f"{label}_degenerate"] = sum(map(is_degenerate, replies))
    style: dict[str, Any] = {}
    for label, replies in texts.items():
        per_text = [style_metrics(t, distinctive) for t in replies]
        style[label] = {m: st.ci([row[m] for row in per_text]) for m in STYLE_METRICS}
    in_character: dict[str, Any] = {"scored": judge is not None, "reason": judge_reason}
    if judge is not None:
        for label in ("real", "base", "own"):
            verdicts = [float(judge_in_character(judge, ex, r)) for ex, r in zip(contexts, texts[label], strict=True)]
            in_character[label] = st.ci(verdicts)
    samples = [  # every reply, so a reader can check the figures against the texts behind them
        {"example_id": ex.example_id, "real": ex.target, "base": texts["base"][i], "own": texts["own"][i]}
        for i, ex in enumerate(contexts)
    ]
    return {"attribution": attribution, "style": style, "in_character": in_character, "samples": samples}


def fidelity_report(
    recipe: Recipe,
    settings: FidelitySettings,
    examples: Sequence[Example],
    speeches: Sequence[Speech] | None,
    students: Sequence[Student],
    benches: Mapping[str, ModelBench],
    judge: LLMClient | None = None,
    judge_check: Mapping[str, Any] | None = None,
    on_character: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """The whole benchmark as a JSON-ready dict (see the module docstring); ``judge`` only if it passed its check."""
    st = _Stats(settings)
    split = recipe.gate.split
    held: dict[str, list[Example]] = defaultdict(list)
    plays: dict[str, str] = {}
    for ex in examples:
        key = recipe.adapter_key(ex) or ""
        plays.setdefault(key, scene_of(ex)[0])
        if ex.split == split:
            held[key].append(ex)
    for student in students:
        for character, entry in student.adapters.items():
            plays.setdefault(character, entry.labels.get("play", ""))
    held_scenes = {scene_of(ex) for exs in held.values() for ex in exs}
    source = "speeches artifact" if speeches is not None else "the dataset's targets (no fresh speeches artifact)"
    real = list(speeches) if speeches is not None else speeches_from_examples(examples, recipe)
    by_play: dict[str, set[str]] = defaultdict(set)
    for student in students:
        for character in student.adapters:
            by_play[plays.get(character, "")].add(character)
    classifiers, classifier_report = classifier_section(real, held_scenes, by_play, st)
    distinctive: dict[str, list[str]] = {}
    for play, chars in by_play.items():
        train = [s for s in real if s.play == play and (s.play, s.act, s.scene) not in held_scenes]
        # content words only: a function word (I, not, a) a character over-uses would let any short reply score
        found = distinctive_words(train, characters=sorted(chars), top_words=4 * settings.distinctive_words)
        distinctive.update(
            {
                c: [w.word for w in found.get(c, []) if w.word not in function_words()][: settings.distinctive_words]
                for c in chars
            }
        )
    judge_reason = (judge_check or {}).get("reason", "no judge check ran")
    judge_reason = judge_reason if judge is not None else f"not scored: no judge passed its check ({judge_reason})"
    out_students = []
    for student in students:
        bench = benches[student.base_model]
        characters = {}
        for character, entry in sorted(student.adapters.items()):
            if on_character is not None:
                on_character(student.name, character)
            own_held = held.get(character, [])
            if not own_held:
                characters[character] = {"play": plays.get(character), "error": f"no {split} example"}
                continue
            section = {
                "play": plays.get(character),
                "adapter": entry.id,
                "distinctive_words": distinctive.get(character, []),
                "perplexity": perplexity_section(
                    bench, student, character, evenly_spaced(own_held, settings.max_speeches), plays, st
                ),
            }
            section.update(
                reply_sections(
                    bench,
                    entry,
                    character,
                    evenly_spaced(own_held, settings.reply_contexts),
                    classifiers.get(plays.get(character, "")),
                    distinctive.get(character, []),
                    judge,
                    judge_reason,
                    st,
                )
            )
            characters[character] = section
        out_students.append({"name": student.name, "base_model": student.base_model, "characters": characters})
    return {
        "recipe": recipe.name,
        "split": split,
        "settings": vars(settings),
        "speeches_source": source,
        "classifier": classifier_report,
        "in_character": {"scored": judge is not None, "reason": judge_reason, "check": dict(judge_check or {})},
        "students": out_students,
    }
