"""Ingest readers: every format on the real example files, and bad inputs written at test time."""

from __future__ import annotations

import io
import logging
import random
import re
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from doctune.config import IngestConfig
from doctune.ingest.base import decode_text, shorten_title
from doctune.ingest.collect import collect_documents
from doctune.ingest.html_format import html_to_markdown, parse_html
from doctune.ingest.pdf_format import clean_page_text
from doctune.ingest.readers import READERS, Reader, UnreadableFileError, doc_id_of, read_document
from doctune.ingest.text_format import markdown_title

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HAMLET = EXAMPLES / "md" / "hamlet-act1-scene1.md"
NODE_FS = EXAMPLES / "md" / "nodejs-fs-excerpt.md"
PY_CLASSES = EXAMPLES / "html" / "python-tutorial-classes.html"
R_INTRO = EXAMPLES / "pdf" / "r-intro-excerpt.pdf"
MACRODATA = EXAMPLES / "csv" / "macrodata-excerpt.csv"
SONNETS = EXAMPLES / "txt" / "shakespeare-sonnets-1-6.txt"
AREOPAGITICA = EXAMPLES / "txt" / "milton-areopagitica-opening.txt"


@pytest.fixture
def cfg() -> IngestConfig:
    return IngestConfig()


def _normalised_source(path: Path) -> str:
    return path.read_bytes().decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def _lines(text: str) -> list[str]:
    return text.split("\n")


# --- the example corpus ---------------------------------------------------------------------------------------


def test_examples_all_ingest_within_the_size_budget(cfg: IngestConfig) -> None:
    docs, errors = collect_documents([EXAMPLES / sub for sub in ("md", "html", "pdf", "csv", "txt")], cfg)
    assert errors == []
    assert {doc.format for doc in docs} == {"md", "html", "pdf", "csv", "txt"}
    assert 40_000 <= sum(doc.n_chars for doc in docs) <= 60_000
    for doc in docs:
        assert doc.n_chars == len(doc.text)
        assert doc.doc_id == doc_id_of((EXAMPLES / doc.source_path).read_bytes())  # relative to the ingest root
        assert re.fullmatch(r"[0-9a-f]{16}", doc.doc_id)


@pytest.mark.parametrize("path", [SONNETS, AREOPAGITICA])
def test_txt_text_is_the_normalised_source(path: Path, cfg: IngestConfig) -> None:
    doc = read_document(path, cfg)
    assert doc.format == "txt"
    assert doc.text == _normalised_source(path)
    assert "\r" not in doc.text
    assert doc.spans == []


def test_txt_crlf_source_keeps_offsets_per_line(cfg: IngestConfig) -> None:
    raw = AREOPAGITICA.read_bytes()
    assert b"\r\n" in raw  # the example deliberately keeps its CRLF line endings
    doc = read_document(AREOPAGITICA, cfg)
    assert doc.title == "AREOPAGITICA"
    assert _lines(doc.text) == raw.decode("utf-8").split("\r\n")
    start = doc.text.index("They, who to states and governors")
    assert doc.text[start:].startswith("They, who to states and governors of the Commonwealth direct their\nspeech")


def test_sonnets_title_is_first_line(cfg: IngestConfig) -> None:
    assert read_document(SONNETS, cfg).title == "THE SONNETS"


def test_markdown_text_is_the_source_with_headings(cfg: IngestConfig) -> None:
    doc = read_document(HAMLET, cfg)
    assert doc.format == "md"
    assert doc.text == _normalised_source(HAMLET)
    assert doc.title == "Hamlet"
    lines = _lines(doc.text)
    for heading in ("# Hamlet", "## ACT I", "### SCENE I. Elsinore. A platform before the castle."):
        assert heading in lines
        assert doc.text[doc.text.index(heading) :].startswith(heading)


def test_markdown_keeps_code_blocks_and_tables(cfg: IngestConfig) -> None:
    doc = read_document(NODE_FS, cfg)
    assert doc.title == "File system"
    assert doc.text == _normalised_source(NODE_FS)
    lines = _lines(doc.text)
    assert "```mjs" in lines and "```cjs" in lines
    assert "#### File modes" in lines
    assert "| Constant               | Octal   | Description              |" in lines


def test_html_main_text_as_markdown(cfg: IngestConfig) -> None:
    doc = read_document(PY_CLASSES, cfg)
    assert doc.format == "html"
    assert doc.title == "9. Classes"
    lines = _lines(doc.text)
    for heading in (
        "# 9. Classes",
        "## 9.1. A Word About Names and Objects",
        "## 9.2. Python Scopes and Namespaces",
        "### 9.2.1. Scopes and Namespaces Example",
    ):
        assert heading in lines
    assert "¶" not in doc.text
    # navigation, sidebar, search box and footer are gone
    for boilerplate in ("Table of Contents", "Previous topic", "Quick search", "Report a Bug", "Copyright"):
        assert boilerplate not in doc.text
    # prose is unwrapped, inline markup kept
    assert "Creating a new class creates a new *type* of object" in doc.text
    assert "the `nonlocal` statement can be used" in doc.text


def test_html_code_examples_are_fenced_and_exact(cfg: IngestConfig) -> None:
    text = read_document(PY_CLASSES, cfg).text
    fences = re.findall(r"^(```[\w+-]*)\n(.*?)\n```$", text, flags=re.S | re.M)
    assert len(fences) == 2
    (lang, code), (_, output) = fences
    assert lang == "```python3"
    assert code.startswith('def scope_test():\n    def do_local():\n        spam = "local spam"\n\n    def do_nonlocal')
    assert code.endswith('print("In global scope:", spam)')
    assert output.splitlines()[0] == "After local assignment: test spam"


def test_html_lists_and_footnotes(cfg: IngestConfig) -> None:
    text = read_document(PY_CLASSES, cfg).text
    assert "- the innermost scope, which is searched first, contains the local names" in _lines(text)
    assert "Module objects have a secret read-only attribute called `__dict__`" in text


def test_pdf_spans_are_pages(cfg: IngestConfig) -> None:
    doc = read_document(R_INTRO, cfg)
    assert doc.format == "pdf"
    assert doc.title == "An Introduction to R (excerpt)"
    reader = PdfReader(R_INTRO)
    assert [span.page for span in doc.spans] == list(range(1, len(reader.pages) + 1))
    assert [span.locator for span in doc.spans] == [f"page {n}" for n in range(1, 7)]
    for span, page in zip(doc.spans, reader.pages, strict=True):
        assert doc.text[span.start : span.end] == clean_page_text(page.extract_text())
    for before, after in zip(doc.spans, doc.spans[1:], strict=False):
        assert doc.text[before.end : after.start] == "\n\n"
    assert doc.spans[0].start == 0 and doc.spans[-1].end == len(doc.text)
    assert doc.text[doc.spans[0].start : doc.spans[0].end].startswith("An Introduction to R")
    assert "Preface" in doc.text[doc.spans[2].start : doc.spans[2].end]


def test_csv_blocks_repeat_the_header(cfg: IngestConfig) -> None:
    doc = read_document(MACRODATA, cfg)
    assert doc.format == "csv"
    header = "| year | quarter | realgdp | realcons | realinv | realgovt | realdpi | cpi | m1 | tbilrate | unemp | pop"
    assert [span.locator for span in doc.spans] == ["rows 1-40", "rows 41-80"]
    blocks = doc.text.split("\n\n")
    assert len(blocks) == 2
    for span, block in zip(doc.spans, blocks, strict=True):
        assert doc.text[span.start : span.end] == block
        lines = block.split("\n")
        assert lines[0].startswith(header)
        assert set(lines[1].replace("|", "").split()) == {"---"}
        assert len(lines) == 2 + 40
    assert blocks[0].split("\n")[2] == (
        "| 1959 | 1 | 2710.349 | 1707.4 | 286.898 | 470.045 | 1886.9 | 28.980 | 139.7 | 2.82 | 5.8 | 177.146 | 0 | 0 |"
    )


def test_csv_rows_per_block_setting(cfg: IngestConfig) -> None:
    doc = read_document(MACRODATA, cfg.model_copy(update={"csv_rows_per_block": 25}))
    assert [span.locator for span in doc.spans] == ["rows 1-25", "rows 26-50", "rows 51-75", "rows 76-80"]
    last = doc.text[doc.spans[-1].start : doc.spans[-1].end].split("\n")
    assert last[0].startswith("| year | quarter |") and len(last) == 2 + 5
    assert last[-1].startswith("| 1978 | 4 |")


# --- formats on small inputs ----------------------------------------------------------------------------------


def test_csv_escapes_pipes_pads_ragged_rows_and_sniffs_delimiter(tmp_path: Path, cfg: IngestConfig) -> None:
    path = tmp_path / "people.csv"
    path.write_text('name;note;city\nann;"a|b";paris\nbob;x\n\n;;\ncy;"multi\nline";rome;extra\n', encoding="utf-8")
    doc = read_document(path, cfg)
    assert doc.text.split("\n") == [
        "| name | note | city | column 4 |",
        "| --- | --- | --- | --- |",
        "| ann | a\\|b | paris |  |",
        "| bob | x |  |  |",
        "| cy | multi line | rome | extra |",
    ]
    assert [span.locator for span in doc.spans] == ["rows 1-3"]
    assert doc.title == "people"


def test_html_without_main_content_markers_falls_back_to_structure(tmp_path: Path, cfg: IngestConfig) -> None:
    page = """<?xml version="1.0" encoding="utf-8"?>
<html><head><title>Tiny page - Example site</title><script>var tracking = 1;</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<main><h1>Tiny <a class="headerlink" href="#t">¶</a></h1><p>Some <em>short</em> text.<br>Second line.</p>
<h2>Steps</h2><ol start="3"><li>three</li><li>four<ul><li>nested</li></ul></li></ol>
<pre><code class="language-js">let x = 1;

let y = 2;</code></pre>
<table><tr><th>key</th><th>value</th></tr><tr><td>a</td><td>1|2</td></tr><tr><td>b</td></tr></table>
<blockquote><p>quoted</p></blockquote></main>
<footer>Copyright me</footer></body></html>"""
    path = tmp_path / "tiny.htm"
    path.write_text(page, encoding="utf-8")
    doc = read_document(path, cfg)
    assert doc.title == "Tiny"
    assert doc.text == "\n".join(
        [
            "# Tiny",
            "",
            "Some *short* text.",
            "Second line.",
            "",
            "## Steps",
            "",
            "3. three",
            "4. four",
            "   - nested",
            "",
            "```js",
            "let x = 1;",
            "",
            "let y = 2;",
            "```",
            "",
            "| key | value |",
            "| --- | --- |",
            "| a | 1\\|2 |",
            "| b |  |",
            "",
            "> quoted",
        ]
    )


def test_html_title_falls_back_to_title_element(tmp_path: Path, cfg: IngestConfig) -> None:
    path = tmp_path / "plain.html"
    path.write_text("<html><head><title>Only a title</title></head><body><p>Hello there.</p></body></html>")
    doc = read_document(path, cfg)
    assert (doc.title, doc.text) == ("Only a title", "Hello there.")
    assert html_to_markdown(parse_html("<p>a <b>bold</b> move</p>")) == "a **bold** move"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("---\ntitle: 'From front matter'\n---\n# Heading\n", "From front matter"),
        ("intro\n\n```\n# not a heading\n```\n\n## Real heading ##\n", "Real heading"),
        ("Setext title\n============\n\nbody\n", "Setext title"),
        ("<!-- comment -->\n\nFirst line of prose\nsecond\n", "First line of prose"),
        ("   \n", None),
    ],
)
def test_markdown_title(text: str, title: str | None) -> None:
    assert markdown_title(text) == title


def test_long_titles_are_shortened() -> None:
    title = shorten_title("word " * 40)
    assert len(title) <= 80 and title.endswith("…")


def test_markdown_crlf_and_bom_are_normalised(tmp_path: Path, cfg: IngestConfig) -> None:
    path = tmp_path / "notes.MD"
    path.write_bytes(b"\xef\xbb\xbf# Notes\r\nline one\rline two\r\n")
    doc = read_document(path, cfg)
    assert doc.text == "# Notes\nline one\nline two\n"
    assert doc.title == "Notes"
    assert doc.format == "md"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("héllo wörld\nline 2", "utf-16"),
        ("ünïcode", "utf-32"),
        ("plain", "utf-8-sig"),
        ("Le café était très crème, naïve façade. Ça coûte cher – voilà.\n" * 3, "cp1252"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.\n" * 3, "cp1250"),
        ("Привет, как дела? Это тестовый текст.\n" * 3, "koi8-r"),
    ],
)
def test_decode_text(text: str, encoding: str) -> None:
    assert decode_text(text.encode(encoding)) == text


def test_pdf_without_text_and_encrypted_pdf(tmp_path: Path, cfg: IngestConfig) -> None:
    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    (tmp_path / "scan.pdf").write_bytes(_pdf_bytes(blank))
    locked = PdfWriter(clone_from=R_INTRO)
    locked.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    (tmp_path / "locked.pdf").write_bytes(_pdf_bytes(locked))
    docs, errors = collect_documents([tmp_path], cfg)
    assert docs == []
    assert {Path(e.source_path).name: e.reason for e in errors} == {
        "locked.pdf": "encrypted PDF (password required)",
        "scan.pdf": "no extractable text (scanned PDF?)",
    }


def _pdf_bytes(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --- collecting: errors, duplicates, folders ------------------------------------------------------------------


def test_bad_files_are_reported_and_good_files_still_read(tmp_path: Path, cfg: IngestConfig) -> None:
    rng = random.Random(7)
    bad = {
        "empty.txt": b"",
        "binary.txt": b"GIF89a\x00\x01\x02\x00\x00\xff",
        "latin-garbage.md": bytes(rng.randrange(0x80, 0x100) for _ in range(2000)),
        "corrupt.pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not really a pdf",
        "not-a-pdf.pdf": b"just some text in a file named .pdf",
        "header-only.csv": b"year,quarter,gdp\n",
        "empty-table.csv": b"\n ,, \n",
        "whitespace.md": b"  \n\n\t\n",
        "notes.xyz": b"an unknown format",
        "README": b"no extension at all",
    }
    for name, raw in bad.items():
        (tmp_path / name).write_bytes(raw)
    good = tmp_path / "good.md"
    shutil.copy(HAMLET, good)
    missing = tmp_path / "missing.txt"
    named = [tmp_path / name for name in sorted(bad)] + [good, missing]

    docs, errors = collect_documents(named, cfg)

    assert [doc.source_path for doc in docs] == ["good.md"]  # a file named directly: its name, never its path
    reasons = {e.source_path: e.reason for e in errors}
    assert set(reasons) == set(bad) | {"missing.txt"}
    assert reasons["empty.txt"] == "empty file"
    assert reasons["binary.txt"].startswith("binary file")
    assert reasons["latin-garbage.md"].startswith("cannot decode text (tried utf-8, utf-16")
    assert reasons["corrupt.pdf"].startswith("corrupt PDF: ")
    assert reasons["not-a-pdf.pdf"].startswith("corrupt PDF: ")
    assert reasons["header-only.csv"] == "CSV has a header row but no data rows"
    assert reasons["empty-table.csv"] == "empty CSV (no rows)"
    assert reasons["whitespace.md"] == "no text content (only whitespace)"
    assert reasons["notes.xyz"] == "unsupported format .xyz"
    assert reasons["README"] == "unsupported format (no file extension)"
    assert reasons["missing.txt"] == "no such file or directory"


def test_folder_walk_picks_configured_extensions(tmp_path: Path, cfg: IngestConfig) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "b" / "second.TXT").write_text("second file\n")
    (tmp_path / "a.txt").write_text("first file\n")
    (tmp_path / "data.json").write_text("{}")  # not in cfg.extensions: silently ignored
    (tmp_path / ".hidden.txt").write_text("hidden\n")
    (tmp_path / ".git" / "HEAD.txt").write_text("ref\n")
    docs, errors = collect_documents([tmp_path, tmp_path / "a.txt"], cfg)
    assert errors == []
    root = tmp_path.name  # paths are relative to the ingest root, under the root's own name
    assert [doc.source_path for doc in docs] == [f"{root}/a.txt", f"{root}/b/second.TXT"]
    only_md = cfg.model_copy(update={"extensions": [".MD"]})
    assert collect_documents([tmp_path], only_md) == ([], [])


def test_identical_files_become_one_document(
    tmp_path: Path, cfg: IngestConfig, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = tmp_path / "a" / "sonnets.txt", tmp_path / "b" / "copy.txt"
    for path in (first, second):
        path.parent.mkdir()
        shutil.copy(SONNETS, path)
    with caplog.at_level(logging.INFO, logger="doctune.ingest.collect"):
        docs, errors = collect_documents([tmp_path], cfg, progress=True)
    assert errors == []
    assert [doc.source_path for doc in docs] == [f"{tmp_path.name}/a/sonnets.txt"]
    assert any("b/copy.txt" in r.getMessage() and "a/sonnets.txt" in r.getMessage() for r in caplog.records)


def test_unexpected_reader_errors_do_not_stop_the_run(
    tmp_path: Path, cfg: IngestConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_reader(source: object, cfg: IngestConfig) -> None:
        raise RuntimeError("reader bug")

    monkeypatch.setitem(READERS, ".csv", Reader("csv", broken_reader))  # type: ignore[arg-type]
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    shutil.copy(SONNETS, tmp_path / "sonnets.txt")
    docs, errors = collect_documents([tmp_path], cfg)
    assert [Path(doc.source_path).name for doc in docs] == ["sonnets.txt"]
    assert [(Path(e.source_path).name, e.reason) for e in errors] == [("x.csv", "RuntimeError: reader bug")]


def test_size_and_min_chars_limits(tmp_path: Path, cfg: IngestConfig) -> None:
    path = tmp_path / "short.txt"
    path.write_text("tiny\n")
    with pytest.raises(UnreadableFileError, match=r"too little text \(4 chars, min_chars is 10\)"):
        read_document(path, cfg.model_copy(update={"min_chars": 10}))
    with pytest.raises(UnreadableFileError, match=r"^file too large"):
        read_document(SONNETS, cfg.model_copy(update={"max_file_mb": 0.001}))
    with pytest.raises(UnreadableFileError, match="no such file or directory"):
        read_document(tmp_path / "nope.txt", cfg)
