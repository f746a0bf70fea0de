"""Conversation rules without a model: memory by presence, turn policies, the stop rule, the log."""

from __future__ import annotations

import json

import pytest

from doctune.converse.conversation import ConversationRunner, ConversationSettings, Reply, clean_reply
from doctune.converse.log import ConversationLog, list_conversations, read_conversation
from doctune.converse.policy import addressed_character, expected_speaker, round_robin
from doctune.converse.scenario import Scenario, ScenarioError, load_scenario

CARDS = {n: f"You are {n}." for n in ("HAMLET", "OPHELIA", "MACBETH", "LADY MACBETH")}


def numbered_speak(calls: list):
    """Each reply names its speaker and turn (unique, so nothing stops on a repeat)."""

    def speak(character, messages, seed, write):
        calls.append((character, messages))
        return Reply(text=f"{character.title()} says line {len(calls)}.", adapter=f"adapter-{character.lower()}")

    return speak


def test_an_absent_character_never_hears_what_was_said_without_it(tmp_path):
    scenario = Scenario(
        title="Comings and goings",
        characters=["HAMLET", "OPHELIA", "MACBETH", "LADY MACBETH"],
        enter_later=["MACBETH"],
        events=[{"turn": 3, "enter": ["MACBETH"]}, {"turn": 5, "exit": ["OPHELIA"]}],
    )
    calls: list = []
    with ConversationLog(tmp_path, "conversation", {"characters": scenario.characters}) as log_:
        runner = ConversationRunner(
            scenario, numbered_speak(calls), CARDS, ConversationSettings(max_turns=10, context_turns=20), log_
        )
        turns = runner.run()
    assert len(turns) == 10
    for speaker, messages in runner.prompts:
        prompt = "\n".join(m["content"] for m in messages)
        for t in turns:
            if speaker not in t.present:  # said while the speaker was away: never in its prompt
                assert t.text not in prompt, (speaker, t.turn)
    # Macbeth came at turn 3: the first turns are not in his first prompt, Ophelia left before turn 5
    macbeth_first = next(m for s, m in runner.prompts if s == "MACBETH")
    assert turns[0].text not in macbeth_first[1]["content"]
    assert all(t.speaker != "OPHELIA" for t in turns[5:])
    assert all(t.speaker != "MACBETH" for t in turns[:3])


def test_round_robin_and_addressed_policies():
    order = ["HAMLET", "OPHELIA", "MACBETH", "LADY MACBETH"]
    assert round_robin(order, order, None) == "HAMLET"
    assert round_robin(order, order, "LADY MACBETH") == "HAMLET"
    assert round_robin(order, ["HAMLET", "MACBETH"], "HAMLET") == "MACBETH"
    assert addressed_character("Good my lady Macbeth, what news?", order) == "LADY MACBETH"
    assert addressed_character("Macbeth, thou art a villain; and Ophelia too", order) == "MACBETH"
    assert addressed_character("Nymph, in thy orisons", order) is None
    others = ["HAMLET", "OPHELIA", "MACBETH"]
    assert expected_speaker("addressed", order, order, "LADY MACBETH", "Speak, Ophelia!") == "OPHELIA"
    assert addressed_character("Ophelia!", others) == "OPHELIA"


def test_addressed_hands_the_turn_to_the_named_character(tmp_path):
    script = {
        "HAMLET": "What say you, Lady Macbeth?",
        "LADY MACBETH": "Ophelia, you are quiet.",
        "OPHELIA": "My lord Hamlet, I have remembrances of yours.",
        "MACBETH": "Is this a dagger?",
    }
    count = {"n": 0}

    def speak(character, messages, seed, write):
        count["n"] += 1
        return Reply(text=f"{script[character]} ({count['n']})")

    scenario = Scenario(characters=["HAMLET", "OPHELIA", "MACBETH", "LADY MACBETH"], policy="addressed")
    runner = ConversationRunner(scenario, speak, CARDS, ConversationSettings(max_turns=5))
    turns = runner.run()
    assert [t.speaker for t in turns] == ["HAMLET", "LADY MACBETH", "OPHELIA", "HAMLET", "LADY MACBETH"]
    assert [t.why for t in turns[1:4]] == ["addressed", "addressed", "addressed"]


def test_a_repeated_reply_stops_the_conversation():
    scenario = Scenario(characters=["HAMLET", "OPHELIA"])
    runner = ConversationRunner(
        scenario, lambda c, m, s, w: Reply(text="No, my lord."), CARDS, ConversationSettings(max_turns=8)
    )
    turns = runner.run()
    assert len(turns) == 2 and "repeats" in runner.stop_reason


def test_a_killed_conversation_leaves_a_valid_log_up_to_the_last_finished_turn(tmp_path):
    calls: list = []
    inner = numbered_speak(calls)

    def speak(character, messages, seed, write):
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C during the fourth turn
        return inner(character, messages, seed, write)

    scenario = Scenario(characters=["HAMLET", "OPHELIA"])
    log_ = ConversationLog(tmp_path, "conversation", {"characters": scenario.characters, "seed": 7})
    runner = ConversationRunner(scenario, speak, CARDS, ConversationSettings(max_turns=8, seed=7), log_)
    runner.run()
    assert runner.stop_reason.startswith("interrupted")
    record = read_conversation(tmp_path, log_.id[:20])
    assert [t.turn for t in record.turns] == [0, 1, 2] and record.torn_lines == 0
    assert [t.seed for t in record.turns] == [7, 8, 9]
    assert record.turns[0].adapter == "adapter-hamlet" and len(record.turns[0].prompt_sha256) == 64
    transcript = (tmp_path / "conversations" / log_.id / "transcript.md").read_text()
    assert "**HAMLET**" in transcript and "Hamlet says line 1." in transcript
    # a line torn by a kill mid-write is skipped, the rest still reads
    with (tmp_path / "conversations" / log_.id / "turns.jsonl").open("a") as fh:
        fh.write('{"turn": 3, "speaker": "HAM')
    again = read_conversation(tmp_path, log_.id)
    assert len(again.turns) == 3 and again.torn_lines == 1
    assert [c.id for c in list_conversations(tmp_path)] == [log_.id]
    for line in (tmp_path / "conversations" / log_.id / "turns.jsonl").read_text().splitlines()[:3]:
        assert json.loads(line)["speaker"] in ("HAMLET", "OPHELIA")


def test_the_user_takes_part_and_leaves():
    typed = iter(["Good morrow, sweet lady.", "/exit"])
    scenario = Scenario(characters=["OPHELIA"])
    calls: list = []
    runner = ConversationRunner(
        scenario,
        numbered_speak(calls),
        CARDS,
        ConversationSettings(max_turns=10),
        user_name="Stranger",
        read_user=lambda prompt: next(typed),
    )
    turns = runner.run()
    assert [(t.speaker, t.user) for t in turns] == [("OPHELIA", False), ("STRANGER", True), ("OPHELIA", False)]
    assert "Good morrow, sweet lady." in calls[-1][1][1]["content"]
    assert runner.stop_reason == "the user left"


def test_opening_line_and_reply_cleaning():
    scenario = Scenario(characters=["HAMLET", "OPHELIA"], opening={"speaker": "ophelia", "text": "My lord?"})
    calls: list = []
    turns = ConversationRunner(scenario, numbered_speak(calls), CARDS, ConversationSettings(max_turns=2)).run()
    assert turns[0].speaker == "OPHELIA" and turns[0].text == "My lord?" and turns[1].speaker == "HAMLET"
    assert "OPHELIA: My lord?" in calls[0][1][1]["content"]
    assert clean_reply("I will, my lord.\nHAMLET: Get thee to a nunnery.", ["HAMLET"]) == "I will, my lord."


def test_scenario_files_fail_with_the_file_and_the_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("characters: [HAMLET]\nevents: [{turn: 1, enter: [YORICK]}]\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml.*YORICK"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match=r"missing\.yaml: cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text("title: T\nsetting: A hall.\ncharacters: [hamlet, ophelia]\nturns: 3\n")
    assert load_scenario(good).characters == ["HAMLET", "OPHELIA"]
