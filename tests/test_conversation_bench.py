"""The conversation benchmark without a model: its metrics on hand-made turns, its CIs and verdicts on synthetic
paired values, the packaged scenarios, and `doctune eval conversations` end to end over a fake session whose
adapters speak each character's own lines and whose base model says one line for everyone."""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from doctune.cli import app
from doctune.converse.log import TurnRecord
from doctune.converse.voices import words_used
from doctune.evaluate.attribution import train_speaker_classifier
from doctune.evaluate.conversations import (
    NO_EFFECT,
    attribution_accuracy,
    boosted_rate,
    classifier_space,
    conversation_metrics,
    policy_compliance,
    repetition,
    switch_effect,
    switch_summary,
    verdict,
    voice_collapse,
)
from doctune.records import Speech
from doctune.stages import evaluate_conversations as stage

POOLS = {
    "HAMLET": ["denmark", "father", "mother", "thought", "play", "ghost", "soul", "dream", "mortal", "conscience"],
    "OPHELIA": ["lord", "pray", "sweet", "flowers", "rosemary", "remembrance", "honour", "violets", "gifts", "nymph"],
    "MACBETH": ["dagger", "blood", "sleep", "witches", "crown", "murder", "tomorrow", "banquo", "thane", "fear"],
    "LADY MACBETH": ["spirits", "unsex", "hands", "spot", "milk", "courage", "sticking", "castle", "raven", "water"],
}
COMMON = ["the", "and", "my", "i", "is", "to", "of", "a", "that", "it"]
PLAY = {"HAMLET": "Hamlet", "OPHELIA": "Hamlet", "MACBETH": "Macbeth", "LADY MACBETH": "Macbeth"}
BOOST = {"HAMLET": ["methinks"], "OPHELIA": ["alack"], "MACBETH": ["zounds"], "LADY MACBETH": ["prithee"]}
ORDER = ["HAMLET", "OPHELIA"]


def _speeches(per_character: int = 30) -> list[Speech]:
    rng = random.Random(0)
    out = []
    for name, pool in POOLS.items():
        for _ in range(per_character):
            words = rng.sample(pool, 6) + rng.sample(COMMON, 6)
            rng.shuffle(words)
            i = len(out)
            out.append(
                Speech(
                    speech_id=f"d-{i}",
                    doc_id="d",
                    play=PLAY[name],
                    act="I",
                    scene="1",
                    index=i,
                    speaker=name,
                    raw_speaker=name,
                    text=" ".join(words).capitalize() + ".",
                    char_start=0,
                    char_end=1,
                )
            )
    return out


SPEECHES = _speeches()
REAL = {c: [s.text for s in SPEECHES if s.speaker == c] for c in POOLS}


def _turn(i: int, speaker: str, text: str, present=ORDER, **kw) -> TurnRecord:
    return TurnRecord(turn=i, speaker=speaker, text=text, present=list(present), **kw)


def _own_lines(n: int = 6) -> list[TurnRecord]:
    return [_turn(i, ORDER[i % 2], REAL[ORDER[i % 2]][i]) for i in range(n)]


@pytest.fixture(scope="module")
def classifier():
    return train_speaker_classifier(SPEECHES, ORDER, seed=0)


def test_attribution_counts_own_lines_and_not_swapped_or_looping_ones(classifier):
    assert attribution_accuracy(_own_lines(), classifier.predict) == 1.0
    swapped = [_turn(i, ORDER[(i + 1) % 2], REAL[ORDER[i % 2]][i]) for i in range(6)]
    assert attribution_accuracy(swapped, classifier.predict) == 0.0
    looping = [_turn(0, "HAMLET", "\n".join([REAL["HAMLET"][0]] * 4)), _turn(1, "OPHELIA", REAL["OPHELIA"][1])]
    assert attribution_accuracy(looping, classifier.predict) == 0.5
    # a scripted opening is not the model's: it is left out
    opening = [_turn(0, "HAMLET", REAL["OPHELIA"][0], why="opening"), *_own_lines()[1:]]
    assert attribution_accuracy(opening, classifier.predict) == 1.0


def test_characters_saying_the_same_thing_collapse(classifier):
    embed = classifier_space(classifier)
    distinct = voice_collapse(_own_lines(), REAL, embed)
    same = voice_collapse(
        [_turn(i, ORDER[i % 2], "I know not what to say, my good friend.") for i in range(6)], REAL, embed
    )
    assert same["turns"] == pytest.approx(1.0)
    assert same["collapse"] > 0.5
    assert abs(distinct["collapse"]) < 0.2 < same["collapse"] - distinct["collapse"]
    assert voice_collapse([_turn(0, "HAMLET", "Alone.")], REAL, embed) is None  # one voice: nothing to compare


def test_repeated_lines_give_high_repetition():
    assert repetition(_own_lines()) < 0.1
    echo = [_turn(i, ORDER[i % 2], "What is the matter, my lord? What is the matter?") for i in range(6)]
    assert repetition(echo) > 0.8
    assert repetition([_turn(0, "HAMLET", "Ay.")]) is None


def test_a_wrong_or_absent_speaker_lowers_compliance():
    assert policy_compliance(_own_lines(4), ORDER, "round_robin") == 1.0
    wrong = [_turn(0, "HAMLET", "a"), _turn(1, "OPHELIA", "b"), _turn(2, "OPHELIA", "c"), _turn(3, "HAMLET", "d")]
    assert policy_compliance(wrong, ORDER, "round_robin") == 0.75  # turn 2 breaks the order; turn 3 follows it
    absent = [_turn(0, "HAMLET", "a"), _turn(1, "OPHELIA", "b", present=["HAMLET"])]
    assert policy_compliance(absent, ORDER, "round_robin") == 0.5
    four = ["HAMLET", "OPHELIA", "MACBETH", "LADY MACBETH"]
    named = [_turn(0, "HAMLET", "Speak, Lady Macbeth.", four), _turn(1, "OPHELIA", "My lord?", four)]
    assert policy_compliance(named, four, "addressed") == 0.5
    assert policy_compliance(named, four, "natural") == 1.0
    twice = [_turn(0, "HAMLET", "a", four), _turn(1, "HAMLET", "b", four)]
    assert policy_compliance(twice, four, "natural") == 0.5
    alone = [_turn(0, "HAMLET", "a", ["HAMLET"]), _turn(1, "HAMLET", "b", ["HAMLET"])]
    assert policy_compliance(alone, four, "natural") == 1.0


def test_boosted_rate_and_conversation_metrics(classifier):
    turns = [_turn(0, "HAMLET", "x", boosted_used=["methinks"]), _turn(1, "OPHELIA", "y"), _turn(2, "HAMLET", "z")]
    assert boosted_rate(turns) == pytest.approx(1 / 3)
    values, details = conversation_metrics(
        _own_lines(), ORDER, "round_robin", classifier.predict, REAL, classifier_space(classifier), [True, False, None]
    )
    assert values["attribution"] == 1.0 and values["compliance"] == 1.0 and values["boosted"] == 0.0
    assert values["judge"] == pytest.approx(1 / 3) and details["chance"] == 0.5
    assert set(values) == {"attribution", "collapse", "repetition", "compliance", "boosted", "judge"}


def test_paired_cis_and_direction_aware_verdicts():
    rng = random.Random(1)
    scenarios = [f"s{i}" for i in range(14)]
    ref = {s: 0.6 + rng.uniform(-0.1, 0.1) for s in scenarios}
    lower = {s: v - 0.2 + rng.uniform(-0.02, 0.02) for s, v in ref.items()}
    noise = {s: v + rng.uniform(-0.1, 0.1) for s, v in ref.items()}
    # turning a component off lowers attribution: the component helps; it raises repetition: it helps too
    off = switch_effect(ref, lower, "attribution", removes=True, n_resamples=500)
    assert off["diff"]["high"] < 0 < off["effect"]["low"] and off["verdict"] == "helps"
    assert off["effect"]["mean"] == pytest.approx(-off["diff"]["mean"]) and off["n"] == 14
    assert switch_effect(lower, ref, "repetition", removes=True, n_resamples=500)["verdict"] == "helps"
    # a larger student that lowers attribution hurts; one that raises repetition hurts
    assert switch_effect(ref, lower, "attribution", removes=False, n_resamples=500)["verdict"] == "hurts"
    assert switch_effect(lower, ref, "repetition", removes=False, n_resamples=500)["verdict"] == "hurts"
    assert switch_effect(ref, noise, "attribution", removes=True, n_resamples=500)["verdict"] == NO_EFFECT
    # scenarios missing a value on either side are left out of the pairs
    partial = {**lower, "s0": None}
    assert switch_effect(ref, partial, "attribution", removes=True, n_resamples=500)["n"] == 13
    assert verdict(None, None, True, 0) == "not enough scenarios to tell"
    assert verdict(0.0, 0.0, True, 14) == NO_EFFECT
    effects = {"attribution": {"verdict": NO_EFFECT}, "repetition": {"verdict": "hurts"}}
    text = switch_summary("retrieval", effects)
    assert text.startswith("retrieval: does not measurably help") and "hurts repetition" in text


def test_packaged_scenarios_load_and_ship_in_the_wheel():
    scenarios = stage.benchmark_scenarios(None)
    assert len(scenarios) >= 12
    sizes = {len(s.characters) for _, s in scenarios}
    assert {2, 4} <= sizes
    assert all(s.turns == (6 if len(s.characters) == 2 else 8) for _, s in scenarios)
    assert any(set(s.characters) == {"HAMLET", "LADY MACBETH"} for _, s in scenarios)
    assert any(s.events for _, s in scenarios) and any(s.policy == "addressed" for _, s in scenarios)
    assert sum(s.policy == "natural" for _, s in scenarios) >= 1
    assert {c for _, s in scenarios for c in s.characters} == set(POOLS)
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert "data/scenarios/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["doctune"]
    assert [n for n, _ in stage.benchmark_scenarios(None, ["four-dreams"])] == ["four-dreams"]
    with pytest.raises(Exception, match="unknown scenario"):
        stage.benchmark_scenarios(None, ["no-such-scene"])


# -- the stage end to end over a fake session ---------------------------------------------------------------------


class FakeVoices:
    def __init__(self, base: str):
        self.base_label = self.base_name = base

    def adapter_for(self, character: str) -> str:
        return f"{self.base_label}-{character.lower().replace(' ', '-')}"

    def choose_next(self, transcript, candidates):
        return candidates[0]


class FakeSession:
    """Adapters speak the character's own lines (by seed); the base model says one line for everyone; the bias adds
    the character's boosted word; retrieval changes nothing."""

    def __init__(self, base: str):
        self.voices = FakeVoices(base)
        self.speeches = SPEECHES
        self.cards = {c: f"You are {c.title()}." for c in POOLS}
        self.boost = BOOST
        self.rag = self.bias = self.use_adapters = True
        self.calls: list[tuple[bool, bool, bool]] = []

    def speak(self, character, messages, seed, write):
        from doctune.converse.conversation import Reply

        self.calls.append((self.use_adapters, self.rag, self.bias))
        own = REAL[character]
        text = own[seed % len(own)] if self.use_adapters else "I know not what to say, my good friend."
        if self.bias:
            text += " " + BOOST[character][0].capitalize() + "."
        adapter = self.voices.adapter_for(character) if self.use_adapters else None
        return Reply(text=text, adapter=adapter, boosted_used=words_used(text, BOOST[character]))

    def retrieve(self, character, query, heard):
        return ("", []) if not self.rag else ("(a passage)", ["Hamlet I.1"])

    def settings(self):
        return {"rag": self.rag, "bias": self.bias, "adapters": self.use_adapters, "base_model": self.voices.base_label}


@pytest.fixture
def fake_sessions(monkeypatch):
    opened: list[FakeSession] = []

    def open_session(config, workspace, characters, base_model=None, use_adapters=True):
        session = FakeSession(base_model or "small")
        opened.append(session)
        return session

    monkeypatch.setattr("doctune.converse.session.open_session", open_session)
    monkeypatch.setattr(stage, "characters_without_adapters", lambda ws, base, chars: [])
    return opened


def test_eval_conversations_end_to_end_with_a_fake_model(tmp_path, fake_sessions):
    raw = {
        "project": "bench",
        "workspace": str(tmp_path / "ws"),
        "evaluate": {"n_resamples": 300},
        "converse": {"compare_student": "gemma3-270m"},
    }
    config_file = tmp_path / "doctune.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    res = CliRunner().invoke(app, ["--config", str(config_file), "eval", "conversations"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "What each switched component adds" in res.output and "conversations.html" in res.output

    reports = tmp_path / "ws" / "reports"
    report = json.loads((reports / "conversations.json").read_text(encoding="utf-8"))
    html = (reports / "conversations.html").read_text(encoding="utf-8")
    assert (reports / "conversations" / "settings.png").stat().st_size > 1000
    assert (reports / "conversations" / "effects.png").stat().st_size > 1000
    assert "data:image/png;base64," in html and "Who should be king" in html

    n = len(report["scenarios"])
    assert n >= 12 and len(report["conversations"]) == 5 * n
    # one session per base model: the small one for four settings, the large one for the last
    from doctune.config import DoctuneConfig
    from doctune.train.resolve import student_base

    small = student_base(DoctuneConfig.model_validate(raw))
    assert [s.voices.base_label for s in fake_sessions] == [small, "gemma3-270m"]
    assert {c for c in fake_sessions[0].calls} == {
        (True, True, True),
        (False, True, True),
        (True, False, True),
        (True, True, False),
    }
    logs = list((tmp_path / "ws" / "conversations").glob("*-benchmark-*"))
    assert len(logs) == 5 * n
    seeds = {(c["setting"], c["scenario"]): c["seed"] for c in report["conversations"]}
    assert len({seeds[("reference", s["name"])] for s in report["scenarios"]}) == n  # a seed per scenario
    assert all(
        seeds[(c["setting"], c["scenario"])] == seeds[("reference", c["scenario"])] for c in report["conversations"]
    )

    switches = {s["name"]: s for s in report["switches"]}
    assert list(switches) == ["no adapters", "rag off", "bias off", "large student"]
    adapters = switches["no adapters"]["effects"]
    assert adapters["attribution"]["verdict"] == "helps" and adapters["attribution"]["effect"]["low"] > 0
    assert adapters["collapse"]["verdict"] == "helps" and adapters["repetition"]["verdict"] == "helps"
    assert {e["verdict"] for e in switches["rag off"]["effects"].values()} == {NO_EFFECT}
    assert switches["rag off"]["summary"].startswith("retrieval: does not measurably help")
    assert switches["bias off"]["effects"]["boosted"]["verdict"] == "helps"
    assert switches["bias off"]["effects"]["boosted"]["effect"]["mean"] == pytest.approx(1.0)
    assert switches["large student"]["run"] and "judge" not in switches["large student"]["effects"]
    assert report["per_setting"]["reference"]["compliance"]["mean"] == 1.0
    assert report["per_setting"]["reference"]["attribution"]["mean"] > report["attribution_chance"]
    assert not report["judge"]["scored"] and "no judge passed its check" in report["judge"]["reason"]


def test_large_student_not_run_says_why(tmp_path, fake_sessions, monkeypatch):
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

    monkeypatch.setattr(stage, "characters_without_adapters", lambda ws, base, chars: ["OPHELIA"])
    cfg = DoctuneConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "evaluate": {"n_resamples": 100},
            "converse": {"compare_student": "gemma3-270m", "bench_scenarios": ["hamlet-ophelia-alone", "four-dreams"]},
        }
    )
    result = stage.run(cfg, Workspace(tmp_path / "ws"), progress=False)
    large = result.stats["switches"][-1]
    assert not large["run"] and "no adapter on gemma3-270m for OPHELIA" in large["reason"]
    assert "not run" in result.stats["markdown"] and result.counts["conversations"] == 2 * 4
    assert len(fake_sessions) == 1
    # a large student whose model cannot be opened is not run either, and the reference still reports
    monkeypatch.setattr(stage, "characters_without_adapters", lambda ws, base, chars: [])

    def failing(config, workspace, characters, base_model=None, use_adapters=True):
        if base_model == "gemma3-270m":
            raise OSError("no such model folder")
        return FakeSession(base_model or "small")

    monkeypatch.setattr("doctune.converse.session.open_session", failing)
    result = stage.run(cfg, Workspace(tmp_path / "ws"), progress=False)
    large = result.stats["switches"][-1]
    assert not large["run"] and "cannot be opened: no such model folder" in large["reason"]
    assert result.counts["conversations"] == 2 * 4
    unset = DoctuneConfig.model_validate({"workspace": str(tmp_path / "ws")})
    plan = stage.plan_settings(unset, Workspace(tmp_path / "ws"), ["HAMLET"])
    assert not plan[-1].run and "compare_student is not set" in plan[-1].reason


def test_a_checked_judge_scores_every_generated_turn(tmp_path, fake_sessions, monkeypatch):
    from types import SimpleNamespace

    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

    closed, judged = [], []
    client = SimpleNamespace(backend=SimpleNamespace(close=lambda: closed.append(True)))
    check = {"judge": "fake judge", "passed": True, "reason": "real 100%, modern 100%"}
    monkeypatch.setattr(stage, "_open_judge", lambda config, workspace: (client, check))

    def judge(client_, card, context, reply):  # in character: the bias's boosted word, for this test
        judged.append((card, context, reply))
        return any(w[0].capitalize() in reply for w in BOOST.values())

    monkeypatch.setattr("doctune.evaluate.in_character.judge_reply_in_character", judge)
    cfg = DoctuneConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "evaluate": {"n_resamples": 100},
            "converse": {"bench_scenarios": ["hamlet-ophelia-remembrances", "four-council"]},
        }
    )
    result = stage.run(cfg, Workspace(tmp_path / "ws"), progress=False)
    report = json.loads(Path(result.outputs["report"]).read_text(encoding="utf-8"))
    assert report["judge"]["scored"] and closed == [True]
    # every generated turn, not the scripted opening; the card without retrieved passages, the scene as context
    assert len(judged) == 4 * (5 + 8)
    assert all(
        card.startswith("You are ") and "(a passage)" not in card and "Reply as" in ctx for card, ctx, _ in judged
    )
    bias = next(s for s in report["switches"] if s["name"] == "bias off")
    assert bias["effects"]["judge"]["effect"]["mean"] == pytest.approx(1.0)
    assert report["per_setting"]["reference"]["judge"]["mean"] == 1.0
    assert "in character (judge)" in result.stats["markdown"]
