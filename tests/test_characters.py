"""doctune characters: statistics of speeches (pure functions) and the command end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from doctune.characters import analyse, distinctive_words, log_odds_dirichlet, tokenize, transitions
from doctune.characters.report import slugify
from doctune.cli import app
from doctune.config import load_config
from doctune.records import Person, Speech
from doctune.workspace import Workspace

runner = CliRunner()

#: (act, scene, speaker, text)
LINES = [
    ("I", "1", "HORATIO", "My lord, my good lord, the night is cold."),
    ("I", "1", "HAMLET", "The sword is sharp; the sword is mine.\nI'll keep the sword."),
    ("I", "1", "GHOST", "Swear, swear by the night."),
    ("I", "1", "HAMLET", "The sword, the sword!"),
    ("I", "1", "HORATIO", "My lord, 'tis late, my lord."),
    ("I", "2", "GHOST", "Swear! Swear!"),
    ("I", "2", "HAMLET", "O\u2019er the sword."),
    ("II", "1", "HORATIO", "Good lord, good night."),
    ("II", "1", "HAMLET/HORATIO", "Farewell."),
    ("II", "1", "HAMLET", "Farewell, my sword."),
]


def make_speeches(doc_id: str = "d1", play: str = "The Test Play") -> list[Speech]:
    return [
        Speech(
            speech_id=f"{doc_id}-{i}",
            doc_id=doc_id,
            play=play,
            act=act,
            scene=scene,
            index=i,
            speaker=speaker,
            raw_speaker=speaker.title(),
            text=text,
            char_start=i * 100,
            char_end=i * 100 + len(text),
        )
        for i, (act, scene, speaker, text) in enumerate(LINES)
    ]


PERSONS = [
    Person(doc_id="d1", play="The Test Play", name="HAMLET", description="Prince of Denmark"),
    Person(doc_id="d1", play="The Test Play", name="OSRIC", description="a courtier"),
]


def test_tokenize_keeps_apostrophes_and_lowercases():
    assert tokenize("O\u2019er the Hill, 'tis I'll say: 'quoted' 3 times_") == [
        "o'er",
        "the",
        "hill",
        "'tis",
        "i'll",
        "say",
        "quoted",
        "times",
    ]


def test_character_counts_acts_and_persons():
    (play,) = analyse(make_speeches(), PERSONS)
    chars = {c.name: c for c in play.characters}
    assert play.play == "The Test Play" and play.speeches == 10 and play.scenes == 3
    assert play.acts == ["I", "II"]
    hamlet = chars["HAMLET"]
    assert (hamlet.speeches, hamlet.words, hamlet.lines) == (4, 22, 5)
    assert hamlet.description == "Prince of Denmark"
    assert (chars["HORATIO"].speeches, chars["HORATIO"].words) == (3, 19)
    assert (chars["GHOST"].speeches, chars["GHOST"].words) == (2, 7)
    assert chars["HAMLET/HORATIO"].joint and chars["HAMLET/HORATIO"].speeches == 1
    assert chars["OSRIC"].speeches == 0 and chars["OSRIC"].description == "a courtier"  # listed, silent
    assert [c.name for c in play.characters][:3] == ["HAMLET", "HORATIO", "GHOST"]  # most words first
    assert play.words == sum(c.words for c in play.characters) == 22 + 19 + 7 + 1
    assert play.top_characters(5) == ["HAMLET", "HORATIO", "GHOST"]  # no joint, no silent character
    by_act = {(r.character, r.act): (r.speeches, r.lines, r.words) for r in play.by_act}
    assert by_act[("HAMLET", "I")] == (3, 4, 19)
    assert by_act[("HAMLET", "II")] == (1, 1, 3)
    assert ("GHOST", "II") not in by_act


def test_transitions_stay_within_a_scene():
    counts = {(t.source, t.target): t.count for t in transitions(make_speeches())}
    assert counts == {
        ("HORATIO", "HAMLET"): 1,
        ("HAMLET", "GHOST"): 1,
        ("GHOST", "HAMLET"): 2,
        ("HAMLET", "HORATIO"): 1,
        ("HORATIO", "HAMLET/HORATIO"): 1,
        ("HAMLET/HORATIO", "HAMLET"): 1,
    }
    assert ("HORATIO", "GHOST") not in counts  # the end of scene I.1 is not followed by I.2's first speech
    assert transitions(make_speeches())[0].source == "GHOST"  # most frequent first


def test_log_odds_puts_signature_words_first():
    distinctive = distinctive_words(make_speeches(), top_words=3)
    assert distinctive["HAMLET"][0].word == "sword"
    assert distinctive["HORATIO"][0].word == "lord"
    assert distinctive["GHOST"][0].word == "swear"
    assert "HAMLET/HORATIO" not in distinctive
    top = distinctive["HAMLET"][0]
    assert top.count == 7 and top.rest_count == 0 and top.z > 1.5 and top.delta > 0
    assert all(w.z > 0 and w.count >= 2 for words in distinctive.values() for w in words)


def test_log_odds_is_zero_for_equal_use_and_antisymmetric():
    prior = {"a": 2.0, "b": 2.0}
    same = log_odds_dirichlet({"a": 3, "b": 1}, {"a": 3, "b": 1}, prior)
    assert same["a"] == pytest.approx((0.0, 0.0))
    forward = log_odds_dirichlet({"a": 5, "b": 1}, {"a": 1, "b": 5}, prior)
    backward = log_odds_dirichlet({"a": 1, "b": 5}, {"a": 5, "b": 1}, prior)
    assert forward["a"][1] > 0 and forward["a"] == pytest.approx(tuple(-v for v in backward["a"]))


def test_plays_are_kept_apart():
    plays = analyse(make_speeches("d1", "One") + make_speeches("d2", "Two"))
    assert [(p.play, p.speeches) for p in plays] == [("One", 10), ("Two", 10)]
    assert slugify("The Tragedy of Hamlet, Prince of Denmark") == "the-tragedy-of-hamlet-prince-of-denmark"


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A workspace whose speeches and persons artifacts were written by hand."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, [], workspace=tmp_path / "work")
    run = Workspace(cfg.workspace).start_run("ingest", cfg)
    run.write_artifact("speeches", make_speeches(), Speech, inputs=[])
    run.write_artifact("persons", PERSONS, Person, inputs=[])
    return tmp_path / "work"


def test_cli_characters_writes_report(workspace):
    res = runner.invoke(app, ["characters", "--workspace", str(workspace), "--top", "3"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "HAMLET" in res.stdout and "OSRIC" in res.stdout and "report ->" in res.stdout
    out = workspace / "reports" / "characters"
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "The Test Play" in page and "Prince of Denmark" in page and "sword" in page
    data = json.loads((out / "characters.json").read_text(encoding="utf-8"))
    assert data["plays"][0]["characters"][0]["name"] == "HAMLET"
    pytest.importorskip("matplotlib")
    for kind in ("words", "transitions", "distinctive"):
        png = out / f"the-test-play-{kind}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.count("data:image/png;base64,") == 3


def test_cli_characters_json(workspace):
    res = runner.invoke(app, ["characters", "--json", "--workspace", str(workspace)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["report"].endswith("index.html")
    (play,) = payload["plays"]
    hamlet = next(c for c in play["characters"] if c["name"] == "HAMLET")
    assert (hamlet["speeches"], hamlet["words"]) == (4, 22)


def test_cli_characters_without_speeches_names_ingest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["characters", "--workspace", str(tmp_path / "empty")])
    assert res.exit_code == 1
    assert "speeches" in res.output and "doctune ingest" in res.output
    help_text = runner.invoke(app, ["characters", "--help"]).output
    assert "doctune ingest" in help_text and "reports/characters" in help_text
