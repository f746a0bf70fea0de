"""Mind maps (``doctune generate mindmap``): tree shape, citations, labels, coverage and grow pass, markmap, HTML,
and the recipe end to end with a scripted generator."""

from __future__ import annotations

import json
import re

import pytest

from doctune.chunking import chunk_document
from doctune.config import ChunkConfig, ModelSpec
from doctune.config_knowledge import MindmapConfig
from doctune.knowledge.mindmap import build_mindmap, coverage, label_problem, source_label, to_markmap
from doctune.knowledge.mindmap_html import write_mindmap_html
from doctune.knowledge.rows import MindMapNode
from doctune.llm.base import BackendError, Message
from doctune.llm.client import LLMClient
from doctune.llm.fake import FakeBackend
from doctune.records import Document, Example
from doctune.stages import generate

from genutil import build_workspace

GARDEN = """# Garden Guide

Tomatoes need six hours of direct sunlight every day to ripen well. Water the roots deeply twice a week in dry weather.

## Soil

Loamy soil drains quickly and holds enough moisture for most vegetables. Compost adds nutrients that feed earthworms and soil microbes.

## Pests

Aphids suck sap from young shoots and spread plant viruses. Ladybirds eat hundreds of aphids during their short lives.

### Traps

Sticky yellow traps catch whiteflies before they lay eggs on the leaves. Copper tape around pots keeps <slugs> away from seedlings.

### Script

```python
def water(plant):
    return plant.soak(litres=2)
```
"""


def _sentence_of(messages: list[Message]) -> str:
    return re.search(r"Sentence: (.*)", messages[-1].content).group(1)


def _first_three(messages: list[Message]) -> str:
    """A good title: the sentence's first three words."""
    return " ".join(_sentence_of(messages).split()[:3])


FakeBackend.register_script("mm-good", _first_three)
FakeBackend.register_script("mm-invented", lambda m: "Gardening wisdom")


def _backend(model: str) -> FakeBackend:
    return FakeBackend(ModelSpec(backend="fake", model=model))


def _client(model: str) -> LLMClient:
    return LLMClient(_backend(model))


@pytest.fixture
def garden() -> tuple[Document, list]:
    doc = Document(
        doc_id="garden", source_path="garden.md", format="md", title="Garden Guide", text=GARDEN, n_chars=len(GARDEN)
    )
    return doc, chunk_document(doc, ChunkConfig(min_chars=60, max_chars=200))


def _points(nodes: list[MindMapNode]) -> list[MindMapNode]:
    return [n for n in nodes if n.kind == "point"]


def test_tree_shape_and_verbatim_citations(garden):
    doc, chunks = garden
    nodes, _ = build_mindmap(doc, chunks, MindmapConfig(initial_points=3, model_labels=False))
    by_id = {n.node_id: n for n in nodes}
    assert nodes[0].kind == "root" and nodes[0].label == "Garden Guide" and nodes[0].level == 0
    headings = {n.label: n for n in nodes if n.kind == "heading"}
    # the top heading repeats the title: it is the root, not a heading of its own
    assert list(headings) == ["Soil", "Pests", "Traps", "Script"]
    assert headings["Soil"].parent_id == nodes[0].node_id and headings["Soil"].level == 1
    assert headings["Traps"].parent_id == headings["Pests"].node_id and headings["Traps"].level == 2
    chunk_by_id = {c.chunk_id: c for c in chunks}
    for point in _points(nodes):
        cit = point.citation
        assert doc.text[cit.char_start : cit.char_end] == cit.quote
        assert cit.chunk_id == point.chunk_id
        deepest = chunk_by_id[point.chunk_id].heading_path[1:]  # without the title
        parent = by_id[point.parent_id]
        assert parent.label == (deepest[-1] if deepest else doc.title)
        assert point.level == parent.level + 1
    # the first sentence after a heading line is citable (it is the best sentence of the Soil chunk)
    quotes = [p.citation.quote for p in _points(nodes)]
    assert any(q.startswith("Loamy soil drains quickly") for q in quotes)
    # ids are stable across runs
    again, _ = build_mindmap(doc, chunks, MindmapConfig(initial_points=3, model_labels=False))
    assert [n.node_id for n in again] == [n.node_id for n in nodes]
    assert len({n.node_id for n in nodes}) == len(nodes)


def test_grow_covers_every_chunk_with_a_sentence_and_reports_code(garden):
    doc, chunks = garden
    nodes, stats = build_mindmap(doc, chunks, MindmapConfig(initial_points=1, model_labels=False, grow=True))
    prose = [c for c in chunks if "```" not in c.text]
    assert len(prose) == len(chunks) - 1
    assert stats["coverage_before"] == pytest.approx(1 / len(chunks))
    assert stats["coverage_after"] == pytest.approx(len(prose) / len(chunks))
    assert stats["coverage_before"] < stats["coverage_after"]
    assert stats["points_initial"] == 1 and stats["points_grown"] == len(prose) - 1
    assert {p.stage for p in _points(nodes)} == {"initial", "grown"}
    code = next(c for c in chunks if "```" in c.text)
    assert stats["uncovered"] == [{"chunk_id": code.chunk_id, "reason": stats["uncovered"][0]["reason"]}]
    assert "no citable sentence" in stats["uncovered"][0]["reason"]
    assert coverage(nodes, prose) == 1.0
    _, off_stats = build_mindmap(doc, chunks, MindmapConfig(initial_points=1, model_labels=False, grow=False))
    assert off_stats["coverage_after"] == off_stats["coverage_before"] and off_stats["points_grown"] == 0
    assert any("grow is off" in u["reason"] for u in off_stats["uncovered"])


def test_coverage_counts_only_supported_points(garden):
    doc, chunks = garden
    nodes, _ = build_mindmap(doc, chunks, MindmapConfig(initial_points=2, model_labels=False, grow=False))
    points = _points(nodes)
    assert coverage(nodes, chunks) == len({p.chunk_id for p in points}) / len(chunks)
    refused = [p.model_copy(update={"supported": False}) for p in points]
    assert coverage(refused, chunks) == 0.0


def test_model_labels_accepted_or_replaced_by_source_labels(garden):
    doc, chunks = garden
    cfg = MindmapConfig(initial_points=2, model_labels=True, grow=False)
    good, good_stats = build_mindmap(doc, chunks, cfg, _client("mm-good"))
    assert good_stats["labels_by_model"] == 2 and good_stats["labels_from_source"] == 0
    for p in _points(good):
        assert p.label_method == "model" and p.label == " ".join(p.citation.quote.split()[:3])
        assert p.supported
    bad, bad_stats = build_mindmap(doc, chunks, cfg, _client("mm-invented"))
    assert bad_stats["labels_by_model"] == 0 and bad_stats["model_labels_refused"] == 2
    for p in _points(bad):
        assert p.label_method == "source" and "wisdom" not in p.label.lower()
        assert p.label == source_label(p.citation.quote, cfg.label_words) and p.supported
    failing = _backend("mm-good").add_replies(BackendError("down"), BackendError("down"))
    failed, failed_stats = build_mindmap(doc, chunks, cfg, LLMClient(failing, max_retries=0))
    assert failed_stats["labels_from_source"] == 2 and all(p.supported for p in _points(failed))


def test_label_rules():
    sentence = "Mercury is the closest planet to the Sun and has no moons."
    assert source_label(sentence, 6) == "Mercury is the closest planet"
    assert source_label("Dams on rivers generate power.", 6) == "Dams on rivers generate power"
    assert source_label("For example, the set of built-in names is a namespace.", 6) == "Set of built-in names"
    assert label_problem("Closest planet", sentence, 6) == ""
    assert "not in the sentence" in label_problem("Hottest planet", sentence, 6)
    assert "words" in label_problem("Mercury is the closest planet to the Sun", sentence, 6)
    assert label_problem("Mercury has 3 moons", "Mercury has no moons at all today.", 6) != ""
    assert label_problem("", sentence, 6) == "empty"


def test_markmap_output(garden):
    doc, chunks = garden
    nodes, _ = build_mindmap(doc, chunks, MindmapConfig(initial_points=1, model_labels=False))
    text = to_markmap(doc, nodes)
    assert text.startswith("---\nmarkmap:\n  colorFreezeLevel: 2\n---\n")
    lines = text.splitlines()
    assert "# Garden Guide" in lines and "## Soil" in lines and "### Traps" in lines
    bullets = [x for x in lines if x.startswith("- ")]
    assert len(bullets) == len(_points(nodes))
    pattern = re.compile(r"^- (.+) <!-- cite (\S+) (\d+)-(\d+) -->$")
    for line, point in zip(bullets, _points(nodes), strict=True):
        m = pattern.match(line)
        assert m, line
        assert m.group(2) == point.chunk_id
        assert doc.text[int(m.group(3)) : int(m.group(4))] == point.citation.quote
    # a point appears under its own heading: the Traps point after "### Traps", before "### Script"
    traps = next(p for p in _points(nodes) if p.parent_id == next(n.node_id for n in nodes if n.label == "Traps"))
    at = next(i for i, x in enumerate(lines) if traps.chunk_id in x)
    assert lines.index("### Traps") < at < lines.index("### Script")


def test_html_written_and_escaped(garden, tmp_path):
    doc, chunks = garden
    nodes, stats = build_mindmap(doc, chunks, MindmapConfig(initial_points=1, model_labels=False))
    evil = doc.model_copy(update={"title": "Garden <script>alert(1)</script>"})
    i = next(i for i, n in enumerate(nodes) if n.kind == "point")
    quote = nodes[i].citation.model_copy(update={"quote": 'keeps <slugs> & "snails" away'})
    nodes[i] = nodes[i].model_copy(update={"label": "Tape <marquee>", "citation": quote, "supported": False})
    path = write_mindmap_html([(evil, nodes, stats)], tmp_path / "mm" / "index.html")
    page = path.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "keeps &lt;slugs&gt; &amp; &quot;snails&quot; away" in page and "<slugs>" not in page
    assert "Tape &lt;marquee&gt;" in page and "<marquee>" not in page
    assert 'class="badge unsupported"' in page
    assert 'class="badge grown"' in page
    assert f"{stats['coverage_before']:.0%} &rarr; {stats['coverage_after']:.0%}" in page
    assert "http://" not in page and "https://" not in page


def test_recipe_end_to_end(tmp_path):
    config, workspace = build_workspace(
        tmp_path,
        {
            "models.generator": {"backend": "fake", "model": "mm-good", "max_concurrency": 2},
            "mindmap": {"initial_points": 2},
            "chunk": {"min_chars": 60, "max_chars": 200},
        },
    )
    result = generate.run(config, workspace, "mindmap", progress=False)
    examples = workspace.read_rows("examples_mindmap", Example, config)
    nodes = workspace.read_rows("mindmap_nodes", MindMapNode, config)
    assert result.counts["examples"] == len(examples) > 0
    outlines = [e for e in examples if e.field_values()["kind"] == "outline"]
    assert {e.group for e in outlines} == {"doc0", "doc1"}
    solar = next(e for e in outlines if e.group == "doc0")
    assert solar.messages[0].content == "Outline the main points of solar."
    supported = [n for n in nodes if n.doc_id == "doc0" and n.kind == "point" and n.supported]
    for point in supported:
        assert f"- {point.label}" in solar.target
    sections = [e for e in examples if e.field_values()["kind"] == "section"]
    assert any("section 'Outer planets'" in e.messages[0].content for e in sections)
    stats = result.stats
    assert stats["coverage_after"] == 1.0 and stats["coverage_before"] < 1.0
    assert set(stats["documents"]) == {"doc0", "doc1"} and stats["labels_by_model"] > 0
    maps = sorted(p.name for p in (tmp_path / "mindmap").iterdir())
    assert "index.html" in maps and sum(1 for m in maps if m.endswith(".md")) == 2
    assert json.loads(json.dumps(stats))  # plain data
