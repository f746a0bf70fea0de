"""Generic recipe evaluation without a model: the gate decision, which models and examples are evaluated."""

from __future__ import annotations

import json

from doctune.evaluate.recipe_eval import decide_gate, examples_for, latest_entries, markdown_summary
from doctune.recipes import GateSpec, get_recipe
from doctune.records import ChatMessage, Example
from doctune.registry import ModelEntry

LOWER = GateSpec(metric="perplexity", split="eval", higher_is_better=False)


def test_gate_lower_is_better_needs_the_interval_above_zero() -> None:
    base = [2.0, 2.1, 1.9, 2.2, 2.0]
    passed, reason, improvement = decide_gate(LOWER, base, [b - 0.5 for b in base])
    assert passed and improvement["low"] > 0 and "base - tuned" in reason
    passed, reason, _ = decide_gate(LOWER, base, [b + 0.1 for b in base])
    assert not passed and "needs >= 0" in reason
    # a margin the improvement does not reach fails even with the interval above 0
    margin = LOWER.model_copy(update={"min_margin": 1.0})
    assert not decide_gate(margin, base, [b - 0.5 for b in base])[0]
    # higher is better: the sign flips
    higher = GateSpec(metric="attribution", split="eval")
    assert decide_gate(higher, [0.0, 0.2, 0.1], [0.8, 0.9, 1.0])[0]


def test_gate_cannot_decide_without_scores() -> None:
    passed, reason, improvement = decide_gate(LOWER, [float("nan"), None], [1.0, None])
    assert not passed and reason.startswith("cannot decide") and improvement["n"] == 0


def _entry(i: int, character: str, base: str = "b", recipe: str = "character") -> ModelEntry:
    return ModelEntry(
        id=f"run{i}",
        project="p",
        created_at=f"2025-01-0{i}T00:00:00",
        base_model=base,
        method="lora",
        weights_path=f"w{i}",
        dataset_sha256="x",
        config_hash="y",
        labels={"recipe": recipe, "character": character},
    )


def test_latest_entry_per_character_and_base() -> None:
    recipe = get_recipe("character")
    entries = [_entry(1, "HAMLET"), _entry(2, "HAMLET"), _entry(3, "OPHELIA"), _entry(4, "HAMLET", base="big")]
    entries.append(_entry(5, "", recipe="qa"))
    assert [e.id for e in latest_entries(entries, recipe)] == ["run2", "run3", "run4"]


def test_examples_for_an_adapter_are_its_own_on_the_split() -> None:
    recipe = get_recipe("character")

    def ex(i: int, character: str, split: str) -> Example:
        messages = [ChatMessage(role="user", content="hi"), ChatMessage(role="assistant", content="ho")]
        fields = json.dumps({"character": character})
        return Example(
            example_id=f"e{i}",
            recipe="character",
            unit_id="u",
            group="g",
            messages=messages,
            fields=fields,
            split=split,
        )

    rows = [ex(1, "HAMLET", "eval"), ex(2, "OPHELIA", "eval"), ex(3, "HAMLET", "train")]
    assert [e.example_id for e in examples_for(recipe, rows, "eval", "hamlet")] == ["e1"]
    assert len(examples_for(recipe, rows, "eval", None)) == 2


def test_markdown_summary_names_the_gate() -> None:
    report = {
        "recipe": "character",
        "settings": {"confidence": 0.95},
        "gate_rule": {"split": "eval"},
        "models": [{"id": "run1", "adapter_value": "HAMLET", "n": 0, "gate": {"passed": False, "reason": "x"}}],
    }
    text = markdown_summary(report)
    assert "| run1 | HAMLET | 0 |" in text and "FAILED" in text
