"""The knowledge graph: merged edges with their citations, communities and their summaries, exports."""

from __future__ import annotations

import json

import networkx as nx

from doctune.config import ModelSpec
from doctune.knowledge.canonical import canonicalise
from doctune.knowledge.graph import (
    assign_communities,
    build_edges,
    edge_statement,
    graph_stats,
    summarise_communities,
    write_graph_json,
    write_graphml,
)
from doctune.knowledge.graph_html import write_graph_html
from doctune.knowledge.rows import KGMention, KGRelation
from doctune.llm import LLMClient
from doctune.llm.fake import FakeBackend
from doctune.records import Citation

TEXT = {
    "c1": "The S language was developed at Bell Laboratories by John Chambers.",
    "c2": "John Chambers worked at Bell Laboratories for many years.",
    "c3": "S was developed at Bell Laboratories, John Chambers says.",
    "c4": "Python was influenced by Modula-3, and Guido van Rossum designed Python.",
    "c5": "Guido van Rossum knew Modula-3 well.",
    "c6": "A <script>alert(1)</script> tag is not a language.",
}


def cite(chunk: str, start: int = 0) -> Citation:
    quote = TEXT[chunk]
    return Citation(
        quote=quote, doc_id="d1", chunk_id=chunk, char_start=start, char_end=start + len(quote), method="exact", score=1
    )


def rel(i: int, source: str, relation: str, target: str, chunk: str, start: int = 0) -> KGRelation:
    return KGRelation(
        relation_id=f"r{i}",
        chunk_id=chunk,
        doc_id="d1",
        source=source,
        relation=relation,
        target=target,
        citation=cite(chunk, start),
    )


def mention(name: str, type: str, chunk: str) -> KGMention:
    return KGMention(mention_id=f"m-{name}", chunk_id=chunk, doc_id="d1", name=name, type=type, citation=cite(chunk))


MENTIONS = [
    mention("S language", "software", "c1"),
    mention("S", "software", "c3"),
    mention("S", "software", "c3"),  # the most frequent form: the canonical name
    mention("Bell Laboratories", "organization", "c1"),
    mention("John Chambers", "person", "c1"),
    mention("Python", "software", "c4"),
    mention("Modula-3", "software", "c4"),
    mention("Guido van Rossum", "person", "c4"),
    mention("<script>alert(1)</script>", "other", "c6"),
]
RELATIONS = [
    rel(1, "S language", "was developed at", "Bell Laboratories", "c1"),
    rel(2, "S", "was developed at", "Bell Laboratories", "c3", start=500),  # same edge, second citation
    rel(3, "S", "was developed at", "Bell Laboratories", "c3", start=500),  # the same citation again: not counted
    rel(4, "John Chambers", "worked at", "Bell Laboratories", "c2"),
    rel(5, "S language", "was developed by", "John Chambers", "c1"),
    rel(6, "S", "is", "the S language", "c1"),  # a self-loop once names are canonical
    rel(7, "Python", "was influenced by", "Modula-3", "c4"),
    rel(8, "Guido van Rossum", "designed", "Python", "c4"),
    rel(9, "Guido van Rossum", "knew", "Modula-3", "c5"),
]


def graph():
    canon = canonicalise(MENTIONS, RELATIONS)
    edges = build_edges(RELATIONS, canon)
    nodes, groups = assign_communities(canon.nodes, edges, seed=0)
    return canon, nodes, edges, groups


def test_edges_merge_citations_and_drop_self_loops():
    canon, _nodes, edges, _groups = graph()
    s, bell = canon.node_of["S"], canon.node_of["Bell Laboratories"]
    assert canon.node_of["S language"] == s
    assert len(edges) == 6  # 9 relations: two repeats of one edge, one self-loop
    developed = next(e for e in edges if (e.source, e.target) == (s, bell))
    assert [c.chunk_id for c in developed.citations] == ["c1", "c3"] and developed.weight == 2.0
    assert developed.chunk_ids == ["c1", "c3"] and developed.doc_ids == ["d1"]
    assert all(e.source != e.target for e in edges)
    assert build_edges(RELATIONS, canon)[0].edge_id == edges[0].edge_id  # stable ids
    names = {n.node_id: n.name for n in canon.nodes}
    assert edge_statement(developed, names) == "S was developed at Bell Laboratories."


def test_communities_find_two_clusters_and_isolated_nodes():
    canon, nodes, _edges, groups = graph()
    assert len(groups) == 2
    clusters = [{canon.node_of[n] for n in ("S", "Bell Laboratories", "John Chambers")}]
    clusters.append({canon.node_of[n] for n in ("Python", "Modula-3", "Guido van Rossum")})
    assert sorted(map(set, groups.values()), key=len) == sorted(clusters, key=len)
    by_id = {n.node_id: n for n in nodes}
    lonely = by_id[canon.node_of["<script>alert(1)</script>"]]
    assert lonely.community == -1 and lonely.degree == 0
    assert by_id[canon.node_of["Bell Laboratories"]].degree == 2
    stats = graph_stats(nodes, _edges, [])
    assert stats["isolated_nodes"] == 1 and stats["edges"] == 6 and stats["citations"] == 7


def test_extractive_summaries():
    canon, nodes, edges, groups = graph()
    communities = summarise_communities(groups, nodes, edges)
    assert len(communities) == 2 and all(c.method == "extractive" for c in communities)
    s_group = next(c for c in communities if canon.node_of["S"] in c.node_ids)
    assert s_group.summary.startswith("S was developed at Bell Laboratories.")  # the most cited relation first
    assert "Bell Laboratories" in s_group.title and len(s_group.citations) == 3


def scripted_client(name: str, script) -> LLMClient:
    FakeBackend.register_script(name, script)
    return LLMClient(FakeBackend(ModelSpec(backend="fake", model=name)), sleep=lambda _s: None)


def test_model_summary_keeps_only_verified_sentences():
    def reply(messages):
        if "Bell Laboratories" in messages[-1].content:
            return "S was developed at Bell Laboratories. S won the Turing award in 1999 in Stockholm."
        return "Everything here is unrelated gibberish about penguins."

    canon, nodes, edges, groups = graph()
    communities = summarise_communities(groups, nodes, edges, scripted_client("kg-community-test", reply), mode="model")
    s_group = next(c for c in communities if canon.node_of["S"] in c.node_ids)
    assert s_group.method == "model" and s_group.summary == "S was developed at Bell Laboratories."
    assert s_group.dropped_sentences == 1
    assert s_group.citations and "Bell Laboratories" in s_group.citations[0].quote
    other = next(c for c in communities if c is not s_group)
    assert other.method == "extractive" and other.dropped_sentences == 1  # nothing verified: extractive


def test_model_summary_failing_client_falls_back_to_extractive():
    client = LLMClient(FakeBackend(ModelSpec(backend="fake")), sleep=lambda _s: None)  # no reply: every call fails
    _canon, nodes, edges, groups = graph()
    communities = summarise_communities(groups, nodes, edges, client, mode="model")
    assert len(communities) == 2 and all(c.method == "extractive" and c.summary for c in communities)
    assert client.usage.failures == 2


def test_graphml_and_json_exports(tmp_path):
    canon, nodes, edges, groups = graph()
    communities = summarise_communities(groups, nodes, edges)
    path = write_graphml(nodes, edges, tmp_path / "kg" / "graph.graphml")
    back = nx.read_graphml(path, force_multigraph=True)
    assert back.number_of_nodes() == len(nodes) and back.number_of_edges() == len(edges)
    s, bell = canon.node_of["S"], canon.node_of["Bell Laboratories"]
    (data,) = [d for _u, _v, d in back.edges(s, data=True) if _v == bell]
    assert data["relation"] == "was developed at" and data["weight"] == 2.0
    assert TEXT["c1"] in data["citation"] and "chunk c1, chars 0-" in data["citation"]
    assert len(json.loads(data["citations_json"])) == 2
    assert back.nodes[s]["aliases"] == "S language; the S language" and back.nodes[s]["type"] == "software"

    out = write_graph_json(nodes, edges, communities, canon.merges, tmp_path / "kg" / "graph.json")
    loaded = json.loads(out.read_text())
    assert len(loaded["nodes"]) == len(nodes) and len(loaded["edges"]) == 6
    assert loaded["stats"]["communities"] == 2 and loaded["merges"][0]["merged"] == "S language"


def test_html_view_is_self_contained_and_escaped(tmp_path):
    _canon, nodes, edges, groups = graph()
    communities = summarise_communities(groups, nodes, edges)
    page = write_graph_html(nodes, edges, communities, tmp_path / "graph.html", title="Graph <of> docs").read_text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Graph &lt;of&gt; docs" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert page.count('class="node') == len(nodes) and page.count('class="edge"') == len(edges)
    assert "S was developed at Bell Laboratories." in page and 'id="community"' in page
    data = page.split('<script type="application/json" id="kg-data">')[1].split("</script>")[0]
    assert len(json.loads(data)["edges"]) == len(edges)

    empty = write_graph_html(nodes, [], [], tmp_path / "empty.html", title="no edges").read_text()
    assert empty.count('class="node') == len(nodes) and 'class="edge"' not in empty
    assert "<svg" in write_graph_html([], [], [], tmp_path / "none.html", title="nothing").read_text()
