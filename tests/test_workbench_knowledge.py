"""The knowledge page: what `generate kg|wiki|mindmap|dialogue` made (written here by hand through the real artifact
API, the graph files by the real writer), their numbers, the files served by /files, the "not made yet" lines,
and the graph view in a real browser."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from doctune.knowledge.build import write_graph_files
from doctune.knowledge.rows import KGCommunity, KGEdge, KGMerge, KGNode, MindMapNode, WikiArticle, WikiSentence
from doctune.records import Chunk, Citation, Document, Example
from doctune.serve import create_app
from doctune.serve.knowledge import format_value, mindmap_coverage, stat_pairs
from workbench import chromium_page, live_server

from genutil import build_workspace

KG_STATS = {
    "strategy": "span",
    "chunks": 5,
    "outcomes": {"items": 4, "no_reply": 1},
    "relations_rejected": {"endpoint not in span": 3, "not grounded": 2},
    "nodes": 3,
    "edges": 2,
    "communities": 1,
    "merges": {"alias": 1, "same_key": 1},
    "files": {"html": "kg/graph.html"},
}
DIALOGUE_STATS = {"verified_claim_share": 0.875, "persona_distinctness": 0.42, "turns_per_dialogue": 6.0}


def cite(chunk: Chunk, quote: str) -> Citation:
    start = chunk.text.index(quote)
    return Citation(
        quote=quote, doc_id=chunk.doc_id, chunk_id=chunk.chunk_id, char_start=chunk.char_start + start,
        char_end=chunk.char_start + start + len(quote), method="exact", score=1.0,
    )  # fmt: skip


def knowledge_workspace(tmp_path):
    """documents and chunks, then every knowledge artifact and file as the recipes write them."""
    cfg, ws = build_workspace(tmp_path / "ws")
    chunks = ws.read_rows("chunks", Chunk)
    docs = ws.read_rows("documents", Document)
    sun = next(c for c in chunks if "The Sun is a star" in c.text)
    c_sun = cite(sun, "The Sun is a star")
    nodes = [
        KGNode(node_id="n-sun", name="Sun", type="concept", aliases=["the Sun", "Suns"], citation=c_sun,
               chunk_ids=[sun.chunk_id], doc_ids=[sun.doc_id], mentions=3, degree=2, community=0),
        KGNode(node_id="n-star", name="star", type="concept", chunk_ids=[sun.chunk_id], mentions=1, degree=1, community=0),
        KGNode(node_id="n-ss", name="Solar System", type="concept", chunk_ids=[sun.chunk_id], degree=1, community=0),
    ]  # fmt: skip
    edges = [
        KGEdge(edge_id="e1", source="n-sun", target="n-star", relation="is a", citations=[c_sun]),
        KGEdge(edge_id="e2", source="n-sun", target="n-ss", relation="is at the centre of",
               citations=[cite(sun, "The Sun is a star at the centre of the Solar System")]),
    ]  # fmt: skip
    communities = [
        KGCommunity(community_id=0, title="Sun & stars", node_ids=["n-sun", "n-star", "n-ss"],
                    summary="The Sun is a star at the centre of the <Solar System>.", citations=[c_sun])
    ]  # fmt: skip
    merges = [
        KGMerge(node_id="n-sun", canonical="Sun", merged="the Sun", reason="same_key"),
        KGMerge(node_id="n-sun", canonical="Sun", merged="Suns", reason="alias", score=0.93),
    ]
    run = ws.start_run("generate kg", cfg)
    run.write_artifact("kg_nodes", nodes, KGNode)
    run.write_artifact("kg_edges", edges, KGEdge)
    run.write_artifact("kg_communities", communities, KGCommunity)
    run.write_artifact("kg_merges", merges, KGMerge)
    path_q = Example(example_id="kg-1", recipe="kg", unit_id="q1", group="g", messages=[
        {"role": "user", "content": "What is the Sun?"}, {"role": "assistant", "content": "A star."}])  # fmt: skip
    run.write_artifact("examples_kg", [path_q], Example, stats=KG_STATS)
    write_graph_files(ws, nodes, edges, communities, merges, docs)

    sentence = WikiSentence(text="The Sun is a star.", citation=c_sun, verified=True)
    articles = [
        WikiArticle(article_id="sun", title="Sun", node_id="n-sun", markdown="The Sun is a star. [[solar-system]]",
                    sentences=[sentence, sentence.model_copy(update={"verified": False})], links=["solar-system"],
                    dropped_sentences=1),
        WikiArticle(article_id="solar-system", title="Solar <System>", markdown="x", sentences=[sentence], depth=1),
    ]  # fmt: skip
    ws.start_run("generate wiki", cfg).write_artifact("wiki_articles", articles, WikiArticle)
    (ws.root / "wiki").mkdir()
    for a in articles:
        (ws.root / "wiki" / f"{a.article_id}.html").write_text(f"<h1>article {a.article_id}</h1>", encoding="utf-8")
    (ws.root / "wiki" / "index.html").write_text("<h1>wiki index</h1>", encoding="utf-8")

    solar = [c for c in chunks if c.doc_id == "doc0"]
    assert len(solar) >= 3, "the test needs a document of three chunks or more"
    point = {"doc_id": "doc0", "parent_id": "root", "level": 1, "kind": "point", "supported": True}
    map_nodes = [
        MindMapNode(node_id="root", doc_id="doc0", level=0, label="solar", kind="root"),
        MindMapNode(node_id="p1", label="Sun a star", chunk_id=solar[0].chunk_id, **point),
        MindMapNode(node_id="p2", label="grown", stage="grown", chunk_id=solar[1].chunk_id, **point),
        MindMapNode(node_id="p3", label="unsupported", stage="grown", chunk_id=solar[2].chunk_id,
                    **{**point, "supported": False}),
    ]  # fmt: skip
    ws.start_run("generate mindmap", cfg).write_artifact("mindmap_nodes", map_nodes, MindMapNode)
    (ws.root / "mindmap").mkdir()
    (ws.root / "mindmap" / "index.html").write_text("<h1>mind maps</h1>", encoding="utf-8")
    (ws.root / "mindmap" / "solar-doc0.md").write_text("# solar\n", encoding="utf-8")

    dialogues = [
        Example(example_id=f"dialogue-{i}", recipe="dialogue", unit_id=f"doc0:{i}", group="doc0", doc_ids=["doc0"],
                messages=[{"role": "user", "content": f"Novice asks question {i} <b>?</b>"},
                          {"role": "assistant", "content": f"Expert answers {i}."}])
        for i in range(4)
    ]  # fmt: skip
    ws.start_run("generate dialogue", cfg).write_artifact("examples_dialogue", dialogues, Example, stats=DIALOGUE_STATS)
    return cfg, ws, len(solar)


def section(page: str, name: str) -> str:
    return re.search(rf'<section class="card" id="{name}">(.*?)</section>', page, re.DOTALL).group(1)


def test_every_section_shows_what_its_recipe_made(tmp_path):
    cfg, ws, n_solar = knowledge_workspace(tmp_path)
    page = TestClient(create_app(ws, cfg)).get("/knowledge").text
    assert '<a href="/knowledge" class="active">Knowledge</a>' in page
    assert "Not made yet" not in page

    kg = section(page, "kg")
    for stat, text in [("strategy", "span"), ("nodes", "3"), ("edges", "2"), ("communities", "1"),
                       ("merges", "alias 1 · same_key 1"), ("outcomes", "items 4 · no_reply 1"),
                       ("relations_rejected", "endpoint not in span 3 · not grounded 2")]:  # fmt: skip
        assert f'<dd data-stat="{stat}">{text}</dd>' in kg, stat
    assert 'data-stat="files"' not in kg
    assert "The Sun is a star at the centre of the &lt;Solar System&gt;." in kg  # the summary, escaped
    assert "Sun &amp; stars" in kg
    assert re.search(r"<td>Sun</td><td[^>]*>&larr;</td><td>Suns</td><td>alias</td><td>0.930</td>", kg)
    assert '<a href="/files/kg/graph.html" target="_blank"' in kg
    assert '<a href="/files/kg/graph.graphml" download>' in kg and '<a href="/files/kg/graph.json" download>' in kg
    assert '<iframe class="graph" id="kg-frame" src="/files/kg/graph.html" sandbox="allow-scripts"' in kg

    wiki = section(page, "wiki")
    assert '<a href="/files/wiki/sun.html" target="_blank" rel="noopener">Sun</a>' in wiki
    assert "Solar &lt;System&gt;</a>" in wiki and '<a href="/files/wiki/index.html"' in wiki
    sun_row = re.search(r'<tr data-id="sun">(.*?)</tr>', wiki, re.DOTALL).group(1)
    assert re.findall(r"<td>(\d+)</td>", sun_row) == ["0", "2", "1", "1", "1"]  # depth, sentences, verified, ...

    mind = section(page, "mindmap")
    before, after = round(100 / n_solar), round(200 / n_solar)
    row = re.search(r'<tr data-doc="doc0">(.*?)</tr>', mind, re.DOTALL).group(1)
    assert f"<td>{n_solar}</td>" in row
    assert re.search(rf"{before}%\s*&rarr;\s*{after}%", row), row
    assert '<a href="/files/mindmap/index.html"' in mind and "solar-doc0.md" in mind

    dlg = section(page, "dialogue")
    for stat, text in [("dialogues", "4"), ("verified_claim_share", "0.875"), ("persona_distinctness", "0.420"),
                       ("turns_per_dialogue", "6.000")]:  # fmt: skip
        assert f'<dd data-stat="{stat}">{text}</dd>' in dlg, stat
    assert "Novice asks question 0 &lt;b&gt;?&lt;/b&gt;" in dlg and "Expert answers 2." in dlg
    assert "question 3" not in dlg  # the first three only
    assert '<a href="/browse?recipe=dialogue"' in dlg


def test_the_linked_files_are_served(tmp_path):
    cfg, ws, _ = knowledge_workspace(tmp_path)
    http = TestClient(create_app(ws, cfg))
    graph = http.get("/files/kg/graph.html")
    assert graph.status_code == 200 and graph.headers["content-type"].startswith("text/html")
    assert 'id="kg-data"' in graph.text and "Solar System" in graph.text
    assert "<graphml" in http.get("/files/kg/graph.graphml").text
    assert {n["name"] for n in http.get("/files/kg/graph.json").json()["nodes"]} == {"Sun", "star", "Solar System"}
    assert "article sun" in http.get("/files/wiki/sun.html").text
    assert "wiki index" in http.get("/files/wiki/index.html").text
    assert "mind maps" in http.get("/files/mindmap/index.html").text
    assert http.get("/files/wiki/missing.html").status_code == 404


def test_an_empty_workspace_says_what_to_run(tmp_path):
    cfg, ws = build_workspace(tmp_path / "ws")
    page = TestClient(create_app(ws, cfg)).get("/knowledge").text
    for recipe in ("kg", "wiki", "mindmap", "dialogue"):
        assert f"Not made yet: run <code>doctune generate {recipe}</code>." in section(page, recipe)
    assert "<iframe" not in page


def test_mindmap_coverage_counts_supported_points_per_stage():
    def node(i: str, chunk: str, stage: str = "initial", supported: bool = True, doc: str = "d") -> MindMapNode:
        return MindMapNode(node_id=i, doc_id=doc, level=1, label=i, kind="point", stage=stage, chunk_id=chunk,
                           supported=supported)  # fmt: skip

    nodes = [
        MindMapNode(node_id="r", doc_id="d", level=0, label="Doc D", kind="root"),
        node("a", "c1"), node("b", "c1", "grown"), node("c", "c2", "grown"), node("d", "c3", "grown", False),
        node("e", "x9", "grown", doc="other"),  # a chunk the chunks artifact does not list for its document
    ]  # fmt: skip
    by_doc = {"d": ["c1", "c2", "c3", "c4"], "other": ["x1", "x2"]}
    got = {d["doc_id"]: d for d in mindmap_coverage(nodes, by_doc)}
    assert (got["d"]["title"], got["d"]["before"], got["d"]["after"], got["d"]["grown"]) == ("Doc D", 0.25, 0.5, 3)
    assert (got["other"]["before"], got["other"]["after"], got["other"]["title"]) == (0.0, 0.0, "other")
    assert mindmap_coverage(nodes, None)[0]["after"] is None  # no chunks artifact: unknown, not 0
    assert stat_pairs({"b": 1, "a": {"x": 2}, "files": {"h": "p"}, "nested": {"d": {"x": 1}}}, ["b"]) == [
        ("b", "1"), ("a", "x 2")]  # fmt: skip
    assert format_value(0.5) == "0.500" and format_value(True) == "yes"


def test_the_page_and_its_graph_view_load_in_a_browser(tmp_path):
    cfg, ws, _ = knowledge_workspace(tmp_path)
    errors: list[str] = []
    with live_server(create_app(ws, cfg)) as url, chromium_page() as page:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/knowledge")
        assert page.locator("#kg-frame").count() == 1
        frame = page.frame_locator("#kg-frame")
        frame.locator("#graph").wait_for()  # the graph view's SVG, inside the sandboxed frame
        assert frame.locator("#kg-data").count() == 1
        assert page.locator("#kg-merges tbody tr").count() == 2
    assert errors == []
    assert json.loads((ws.root / "kg" / "graph.json").read_text())["edges"]
