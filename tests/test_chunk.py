"""The chunker's guarantees, on hand-written markdown and on random text (hypothesis)."""

from __future__ import annotations

import re
from bisect import bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doctune.chunking import TextChunk, chunk_document, chunk_text
from doctune.chunking.blocks import Block, clean_heading_title, parse_blocks
from doctune.chunking.sentences import last_sentence_end, sentence_ends, split_sentences
from doctune.config import ChunkConfig
from doctune.records import Document, SourceSpan

# --------------------------------------------------------------------------- invariant checks


def _unit_end(text: str, blocks: list[Block], start: int, max_chars: int) -> int:
    """End of the unsplittable unit a chunk starting at ``start`` begins with (``start + 1`` for free text)."""
    k = bisect_right([b.start for b in blocks], start) - 1
    b = blocks[k]
    if b.kind == "heading" and b.start == start:
        j = k
        while j < len(blocks) and blocks[j].kind == "heading":
            j += 1
        if j < len(blocks) and blocks[j].kind in ("table", "code") and blocks[j].end - start <= max_chars:
            return blocks[j].end  # headings glued to the table/code block below them
        return b.end if b.end - b.start <= max_chars else start + 1
    if b.kind in ("table", "code") and start < b.end:
        if b.end - b.start <= max_chars:
            return b.end
        nl = text.find("\n", start, b.end)
        line_end = len(text[start : b.end if nl < 0 else nl].rstrip()) + start
        line_start = text.rfind("\n", 0, start) + 1
        if not text[line_start:start].strip() and line_end - start <= max_chars:
            return line_end  # one row/line of a table/code block larger than max_chars
    return start + 1


def check_chunks(text: str, chunks: list[TextChunk], cfg: ChunkConfig) -> None:
    """Assert guarantees 1-3, 5 and 6 (the parts that hold for any input)."""
    blocks = parse_blocks(text)
    pos = 0
    for c in chunks:
        piece = text[c.start : c.end]
        assert piece and piece == piece.strip(), (c, piece)
        assert not text[pos : c.start].strip(), f"non-whitespace text skipped before {c.start}"
        assert c.start >= pos
        assert c.end - c.start <= cfg.max_chars
        pos = c.end
    assert not text[pos:].strip()
    if not text.strip():
        assert chunks == []

    # min_chars: only the documented exceptions.
    for i, c in enumerate(chunks[:-1]):
        if c.end - c.start < cfg.min_chars:
            nxt = chunks[i + 1]
            unit_end = _unit_end(text, blocks, nxt.start, cfg.max_chars)
            assert unit_end - c.start > cfg.max_chars, f"chunk {i} is short ({c.end - c.start}) and avoidable"

    starts = [c.start for c in chunks]
    for k, b in enumerate(blocks):
        # Tables and code blocks that fit are never split.
        if b.kind in ("table", "code") and b.end - b.start <= cfg.max_chars:
            assert any(c.start <= b.start and b.end <= c.end for c in chunks), f"{b} was split"
        # A heading run starting inside a chunk: the chunk had fewer than min_chars before it.
        if cfg.respect_headings and b.kind == "heading" and (k == 0 or blocks[k - 1].kind != "heading"):
            i = bisect_right(starts, b.start) - 1
            if i >= 0 and chunks[i].start < b.start < chunks[i].end:
                assert len(text[chunks[i].start : b.start].rstrip()) < cfg.min_chars
    # A chunk ends with a heading only if the text before its trailing headings is shorter than min_chars.
    ends = {b.end: k for k, b in enumerate(blocks)}
    for c in chunks[:-1]:
        k = ends.get(c.end)
        if k is not None and blocks[k].kind == "heading":
            while k > 0 and blocks[k - 1].kind == "heading" and blocks[k - 1].start >= c.start:
                k -= 1
            assert len(text[c.start : blocks[k].start].rstrip()) < cfg.min_chars, "heading left at a chunk end"


def run(text: str, min_chars: int, max_chars: int, respect_headings: bool = True) -> list[TextChunk]:
    cfg = ChunkConfig(min_chars=min_chars, max_chars=max_chars, respect_headings=respect_headings)
    chunks = chunk_text(text, cfg)
    check_chunks(text, chunks, cfg)
    return chunks


def texts(text: str, chunks: list[TextChunk]) -> list[str]:
    return [text[c.start : c.end] for c in chunks]


# --------------------------------------------------------------------------- reference block parser

_REF_HEADING = re.compile(r"[ ]{0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t\r]*$")
_REF_FENCE_OPEN = re.compile(r"[ ]{0,3}(`{3,}(?=[^`]*$)|~{3,})")
_REF_FENCE_CLOSE = re.compile(r"[ ]{0,3}(`{3,}|~{3,})[ \t]*$")
_REF_LIST = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)", re.M)


def reference_blocks(text: str) -> list[Block]:
    """A slow, obviously line-by-line parser with the semantics documented in ``blocks.py``."""
    out: list[Block] = []
    run: list[tuple[str, int, int]] = []  # (kind, start, end) of the open paragraph or table lines
    fence: tuple[str, int, int] | None = None

    def trim(s: int, e: int) -> tuple[int, int]:
        piece = text[s:e]
        return s + len(piece) - len(piece.lstrip()), s + len(piece.rstrip())

    def close() -> None:
        if run:
            s, e = trim(run[0][1], run[-1][2])
            kind = run[0][0]
            if kind == "paragraph" and _REF_LIST.match(text, s):
                kind = "list"
            out.append(Block(kind, s, e))  # type: ignore[arg-type]
            run.clear()

    pos = 0
    for line in text.split("\n"):
        ls, le = pos, pos + len(line)
        pos = le + 1
        if fence is not None:
            m = _REF_FENCE_CLOSE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1]:
                out.append(Block("code", *trim(fence[2], le)))
                fence = None
            continue
        if not line.strip():
            close()
            continue
        kind = "table" if line.lstrip().startswith("|") else "paragraph"
        if run and run[0][0] != kind:
            close()
        if kind == "table":
            run.append((kind, ls, le))
        elif h := _REF_HEADING.match(line):
            close()
            out.append(Block("heading", *trim(ls, le), len(h.group(1)), clean_heading_title(h.group(2) or "")))
        elif f := _REF_FENCE_OPEN.match(line):
            close()
            fence = (f.group(1)[0], len(f.group(1)), ls)
        else:
            run.append((kind, ls, le))
    if fence is not None:
        out.append(Block("code", *trim(fence[2], len(text))))
    close()
    return out


# --------------------------------------------------------------------------- sentences and blocks


def test_sentence_boundaries_handle_abbreviations_decimals_and_quotes() -> None:
    text = (
        "Dr. Smith met Mr. J. R. Tolkien, e.g. at 3.14 p.m. on a Monday. Was it late? "
        '"Yes!" she said. (He left.) Then... Nothing. Apples, pears etc. and more. '
        "It rained, etc. The end..."
    )
    assert split_sentences(text) == [
        "Dr. Smith met Mr. J. R. Tolkien, e.g. at 3.14 p.m. on a Monday.",
        "Was it late?",
        '"Yes!" she said.',
        "(He left.)",
        "Then...",
        "Nothing.",
        "Apples, pears etc. and more.",
        "It rained, etc.",
        "The end...",
    ]


def test_sentence_ends_respect_the_range() -> None:
    text = "One. Two. Three. Four."
    assert sentence_ends(text) == [4, 9, 16]
    assert sentence_ends(text, 5, 16) == [9]
    assert split_sentences("1. First item\n2. Second item") == ["1. First item\n2. Second item"]


def test_blocks_offsets_and_kinds() -> None:
    text = (
        "# **Title** #\n\nIntro line one\nline two.\n\n- item\n- item\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```py\nx = 1\n\n# not a heading\n```\n  ## `Sub` _title_\n~~~\nopen"
    )
    blocks = parse_blocks(text)
    assert [b.kind for b in blocks] == ["heading", "paragraph", "list", "table", "code", "heading", "code"]
    assert [(b.level, b.title) for b in blocks if b.kind == "heading"] == [(1, "Title"), (2, "Sub title")]
    for b in blocks:
        piece = text[b.start : b.end]
        assert piece == piece.strip()
    assert text[blocks[3].start : blocks[3].end] == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert text[blocks[4].start : blocks[4].end].endswith("# not a heading\n```")
    assert text[blocks[-1].start : blocks[-1].end] == "~~~\nopen"  # an unclosed fence runs to the end
    assert parse_blocks(" \n\n\t ") == []


@pytest.mark.parametrize(
    ("raw", "title"),
    [("**ACT I**", "ACT I"), ("_SCENE I._ Elsinore", "SCENE I. Elsinore"), ("`fs.read()`", "fs.read()"),
     ("snake_case_name", "snake_case_name"), ("  *a* and __b__  ", "a and b")],
)  # fmt: skip
def test_clean_heading_title(raw: str, title: str) -> None:
    assert clean_heading_title(raw) == title


# --------------------------------------------------------------------------- hand-written documents

PROSE = " ".join(
    f"Sentence number {i} talks about e.g. the weather, the sea and Mr. Smith's {i * 3.5} boats." for i in range(60)
)

PLAY = (
    """# Hamlet

## ACT I

### SCENE I. Elsinore. A platform before the castle.

_FRANCISCO at his post. Enter to him BERNARDO_

"""
    + "\n\n".join(
        f"**BERNARDO**  \nWho's there? Line {i} of the watch.  \nNay, answer me: stand, and unfold yourself."
        for i in range(12)
    )
    + """

### SCENE II. A room of state in the castle.

"""
    + "\n\n".join(f"**KING CLAUDIUS**  \nThough yet of Hamlet our dear brother's death {i}." for i in range(10))
    + """

## ACT II

### SCENE I. A room in Polonius' house.

**LORD POLONIUS**  \nGive him this money and these notes, Reynaldo.
"""
)


def test_prose_breaks_on_sentence_boundaries() -> None:
    chunks = run(PROSE, 200, 600)
    assert len(chunks) > 5
    for piece in texts(PROSE, chunks):
        assert piece.startswith("Sentence number") and piece.endswith("boats.")
        assert len(piece) >= 200


def test_heading_paths_and_heading_breaks() -> None:
    chunks = run(PLAY, 150, 500)
    pieces = texts(PLAY, chunks)
    assert pieces[0].startswith("# Hamlet\n\n## ACT I\n\n### SCENE I.")
    assert chunks[0].heading_path == ("Hamlet", "ACT I", "SCENE I. Elsinore. A platform before the castle.")
    scene2 = next(i for i, p in enumerate(pieces) if p.startswith("### SCENE II."))
    assert chunks[scene2].heading_path == ("Hamlet", "ACT I", "SCENE II. A room of state in the castle.")
    assert chunks[scene2 - 1].heading_path[-1].startswith("SCENE I.")
    act2 = next(i for i, p in enumerate(pieces) if "## ACT II" in p)
    assert pieces[act2].startswith("## ACT II\n\n### SCENE I.")
    assert chunks[act2].heading_path == ("Hamlet", "ACT II", "SCENE I. A room in Polonius' house.")
    # The last chunk of a scene is not cut short to make room for the next scene: it has min_chars.
    assert all(len(p) >= 150 for p in pieces[:-1])


def test_short_section_continues_into_the_next_one() -> None:
    text = "# A\n\nTiny.\n\n# B\n\n" + PROSE[:300]
    chunks = run(text, 100, 1000)
    assert len(chunks) == 1 and chunks[0].heading_path == ("A",)
    chunks = run(text, 5, 1000)
    assert texts(text, chunks)[0] == "# A\n\nTiny." and chunks[1].heading_path == ("B",)
    chunks = run(text, 5, 1000, respect_headings=False)
    assert len(chunks) == 1


def test_table_and_code_block_stay_whole() -> None:
    table = "| name | value |\n| --- | --- |\n" + "\n".join(f"| row {i} | {i * i} |" for i in range(12))
    code = "```python\n" + "\n".join(f"x{i} = {i}  # a comment. Another one." for i in range(8)) + "\n```"
    text = f"{PROSE[:700]}\n\n{table}\n\n{PROSE[:500]}\n\n## Code\n\n{code}\n\nAfter the code."
    assert len(table) < 300 and len(code) < 300
    chunks = run(text, 100, 800)
    pieces = texts(text, chunks)
    assert any(table in p for p in pieces)
    assert any(f"## Code\n\n{code}" in p for p in pieces)  # the heading stays with its code block


def test_big_table_and_code_split_between_rows() -> None:
    table = "| n | square |\n| --- | --- |\n" + "\n".join(f"| {i} | {i * i} |" for i in range(200))
    code = "```\n" + "\n".join(f"print({i}, 'a. b. c.')" for i in range(150)) + "\n```"
    text = f"Intro.\n\n{table}\n\n{code}"
    chunks = run(text, 100, 500)
    for piece in texts(text, chunks):
        for line in filter(None, piece.splitlines()):
            assert line.startswith(("|", "print(", "```", "Intro."))
            assert line.endswith(("|", ")", "```", "Intro.")), line


def test_long_sentence_splits_at_whitespace() -> None:
    sentence = "This sentence " + " ".join(f"goes on and on {i}" for i in range(80)) + " until it ends."
    text = f"Short one. {sentence} Another short one."
    chunks = run(text, 100, 300)
    assert len(chunks) > 3
    words = set(text.split())
    for piece in texts(text, chunks):
        assert set(piece.split()) <= words  # no word was cut


def test_character_fallback_without_whitespace() -> None:
    text = "x" * 1000
    chunks = run(text, 50, 300)
    assert [c.end - c.start for c in chunks] == [300, 300, 300, 100]


def test_tiny_document_is_one_chunk() -> None:
    assert texts("  Hello there.  ", run("  Hello there.  ", 400, 1500)) == ["Hello there."]
    assert run("", 400, 1500) == [] and run(" \n\n ", 400, 1500) == []


def test_regression_glued_heading_and_code_block_after_a_large_code_block() -> None:
    # Found by a stress run: the break searched before a glued heading+code block fell inside that block.
    text = (
        "```py\n_i_ e.g. gamma. end. 3.14 **B** b; _i_ e.g. Delta? xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx **B** alpha 3.14 e.g. "
        "alpha e.g. Beta _i_ Delta? _i_ b; Delta? Beta end. etc. a, Mr.\nMr. _i_ etc. b; etc. 3.14 "
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx Beta  \n  ###\tZed! (see.)\n````\n###### _i_ **B** gamma. end. Mr. ##\n```py\n"
        " | 3.14 | gamma. | xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | _i_ |\n | a, | gamma. |\nb; alpha "
    )
    pieces = texts(text, run(text, 108, 128))
    assert pieces[-1].startswith("###### _i_ **B** gamma. end. Mr. ##\n```py")


def test_chunk_document_ids_slices_and_locators() -> None:
    pages = [f"Page {p} text. " + PROSE[p * 300 : p * 300 + 180] for p in range(1, 9)]
    text, spans, pos = "", [], 0
    for p, page in enumerate(pages, start=1):
        spans.append(SourceSpan(start=pos, end=pos + len(page), locator=f"page {p}", page=p))
        text += page + "\n\n"
        pos = len(text)
    doc = Document(doc_id="abcd1234abcd1234", source_path="x.pdf", format="pdf", title="x", text=text,
                   n_chars=len(text), spans=spans)  # fmt: skip
    chunks = chunk_document(doc, ChunkConfig(min_chars=250, max_chars=700))
    assert [c.chunk_id for c in chunks] == [f"abcd1234abcd1234-{i:04d}" for i in range(len(chunks))]
    for i, c in enumerate(chunks):
        assert c.index == i and c.doc_id == doc.doc_id
        assert doc.text[c.char_start : c.char_end] == c.text and c.n_chars == len(c.text) <= 700
        expected = [s.locator for s in spans if s.start < c.char_end and s.end > c.char_start]
        assert c.locators == expected and c.locators
    assert any(len(c.locators) > 1 for c in chunks)


# --------------------------------------------------------------------------- property tests

_word = st.text(alphabet="abcdefghijKLMNxyz0123456789", min_size=1, max_size=12)
_punct = st.sampled_from(["", "", "", ".", ",", "?", "!", "...", ";", ":", ".)", '."', " e.g.", " Mr.", " 3.14"])
_sentence = st.lists(st.tuples(_word, _punct), min_size=1, max_size=25).map(lambda ws: " ".join(w + p for w, p in ws))
_indent = st.sampled_from(["", "", "", " ", "   ", "    "])
_line = st.one_of(
    _sentence,
    _sentence,
    st.tuples(
        _indent, st.integers(1, 7), st.sampled_from([" ", "\t", ""]), _sentence, st.sampled_from(["", " ##"])
    ).map(lambda t: t[0] + "#" * t[1] + t[2] + t[3] + t[4]),
    st.tuples(_indent, st.lists(_word, min_size=1, max_size=4)).map(lambda t: t[0] + "| " + " | ".join(t[1]) + " |"),
    st.sampled_from(["```", "```py", "~~~", "````", "  ```", "``` `x`", "- item", "1. one", "   ", "\t", "x" * 90]),
    st.just(""),
)
_text = st.lists(_line, max_size=60).map("\n".join)
_table = st.lists(st.lists(_word, min_size=1, max_size=4), min_size=1, max_size=20).map(
    lambda rows: "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
)
_code = st.tuples(st.sampled_from(["```", "~~~", "```py"]), st.lists(_sentence, max_size=20), st.booleans()).map(
    lambda t: "\n".join([t[0], *t[1], *([t[0][:3]] if t[2] else [])])
)
_block = st.one_of(_sentence, st.lists(_sentence, min_size=1, max_size=5).map("\n".join), _line, _table, _code)
_separator = st.sampled_from(["\n", "\n\n", "\n\n", "\n  \n\n"])
_document = st.lists(st.tuples(_block, _separator), max_size=15).map(lambda bs: "".join(b + sep for b, sep in bs))


@settings(max_examples=500, deadline=None)
@given(text=_text, min_chars=st.integers(1, 150), extra=st.integers(0, 300), respect=st.booleans())
def test_properties_random_markdown(text: str, min_chars: int, extra: int, respect: bool) -> None:
    run(text, min_chars, min_chars + extra, respect)


@settings(max_examples=500, deadline=None)
@given(text=_document, min_chars=st.integers(1, 150), extra=st.integers(0, 300), respect=st.booleans())
def test_properties_random_documents(text: str, min_chars: int, extra: int, respect: bool) -> None:
    run(text, min_chars, min_chars + extra, respect)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="ab .\n#|`", max_size=400), min_chars=st.integers(1, 40), extra=st.integers(0, 60))
def test_properties_random_characters(text: str, min_chars: int, extra: int) -> None:
    run(text, min_chars, min_chars + extra)


@settings(max_examples=100, deadline=None)
@given(text=_text, min_chars=st.integers(1, 150), extra=st.integers(0, 300))
def test_properties_chunk_document(text: str, min_chars: int, extra: int) -> None:
    doc = Document(doc_id="0123456789abcdef", source_path="r.md", format="md", title="r", text=text,
                   n_chars=len(text), spans=[SourceSpan(start=0, end=len(text) // 2, locator="first half")])  # fmt: skip
    cfg = ChunkConfig(min_chars=min_chars, max_chars=min_chars + extra)
    chunks = chunk_document(doc, cfg)
    for i, c in enumerate(chunks):
        assert c.chunk_id == f"0123456789abcdef-{i:04d}" and c.index == i
        assert text[c.char_start : c.char_end] == c.text and c.n_chars == len(c.text) <= cfg.max_chars
        assert c.locators == (["first half"] if c.char_start < len(text) // 2 else [])
    assert "".join(re.split(r"\s+", text)) == "".join("".join(c.text.split()) for c in chunks)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(_text, _document))
def test_parse_blocks_matches_the_line_by_line_reference(text: str) -> None:
    assert parse_blocks(text) == reference_blocks(text)


@settings(max_examples=200, deadline=None)
@given(text=_text, lo=st.integers(0, 2000), width=st.integers(0, 2000))
def test_last_sentence_end_matches_full_scan(text: str, lo: int, width: int) -> None:
    hi = lo + width
    expected = max((e for e in sentence_ends(text) if lo <= e <= hi), default=-1)
    assert last_sentence_end(text, lo, hi) == expected
