"""The kg recipe end to end (`generate kg` on a small workspace with a scripted extractor), its artifacts and files,
the "does graph context help?" report on a fake bench, and `chat`'s /kg switch."""

from __future__ import annotations

import json

import networkx as nx

from doctune.evaluate.graph_context import graph_context_markdown, graph_context_report
from doctune.knowledge.context import CONTEXT_HEADER
from doctune.knowledge.rows import KGEdge, KGNode
from doctune.llm.fake import FakeBackend
from doctune.recipes.kg import KGRecipe
from doctune.records import Example
from doctune.stages import generate

from genutil import build_workspace

#: (source, type, relation, target, type, quote) the scripted extractor reports when the chunk holds the quote
FACTS = [
    ("Mercury", "place", "is the closest planet to", "Sun", "place", "Mercury is the closest planet to the Sun"),
    (
        "Sun",
        "place",
        "is a star at the centre of",
        "Solar System",
        "place",
        "The Sun is a star at the centre of the Solar System",
    ),
    ("Saturn", "place", "is famous for", "rings of ice", "other", "Saturn is famous for its bright rings of ice"),
    (
        "Nile",
        "place",
        "flows into",
        "Mediterranean Sea",
        "place",
        "The Nile flows north through eleven countries into the Mediterranean Sea",
    ),
    (
        "Danube",
        "place",
        "passes through",
        "Vienna",
        "place",
        "The Danube passes through four capital cities, including Vienna",
    ),
    (
        "Danube",
        "place",
        "passes through",
        "Budapest",
        "place",
        "The Danube passes through four capital cities, including Vienna and Budapest",
    ),
    # a relation whose quote is not in the document, and one whose quote names only one end: both rejected
    ("Mars", "place", "is", "red", "other", "Mars is the red planet"),
    ("Jupiter", "place", "is larger than", "Saturn", "place", "Jupiter is the largest planet"),
]


def extraction_script(messages) -> str:
    """Reports each fact whose anchor entity the chunk names (Mars rides along with Mercury: its quote is invented)."""
    text = messages[-1].content
    anchors = {"Mars": "Mercury"}
    entities, relations = {}, []
    for src, st, rel, tgt, tt, quote in FACTS:
        if anchors.get(src, src) not in text:
            continue
        entities[src] = {"name": src, "type": st, "description": ""}
        entities[tgt] = {"name": tgt, "type": tt, "description": ""}
        relations.append({"source": src, "relation": rel, "target": tgt, "description": "", "quote": quote})
    return json.dumps({"entities": list(entities.values()), "relations": relations})


FakeBackend.register_script("kg-script", extraction_script)


def _workspace(tmp_path):
    return build_workspace(
        tmp_path,
        {
            "models.generator": {"backend": "fake", "model": "kg-script"},
            "models.embedder": {"backend": "fake"},
            "kg.community_summaries": "extractive",
        },
    )


def test_generate_kg_writes_graph_artifacts_files_and_path_examples(tmp_path):
    cfg, ws = _workspace(tmp_path)
    result = generate.run(cfg, ws, "kg", progress=False)
    nodes = ws.read_rows("kg_nodes", KGNode, cfg)
    edges = ws.read_rows("kg_edges", KGEdge, cfg)
    names = {n.node_id: n.name for n in nodes}
    statements = {(names[e.source], e.relation, names[e.target]) for e in edges}
    assert ("Mercury", "is the closest planet to", "Sun") in statements
    assert ("Danube", "passes through", "Budapest") in statements
    assert not any(s[0] in ("Mars", "Jupiter") for s in statements)  # quote not found / one end not cited
    rejected = ws.manifest()["kg_relations"].errors
    assert {"quote_not_found", "endpoint_not_in_citation"} <= {r["reason"] for r in rejected}
    for edge in edges:  # every edge's citation is a verbatim span of its chunk
        assert edge.citations and all(c.quote for c in edge.citations)
    graph = nx.read_graphml(tmp_path / "kg" / "graph.graphml")
    assert graph.number_of_edges() == len(edges)
    assert all("citation" in data for *_, data in graph.edges(data=True))
    assert json.loads((tmp_path / "kg" / "graph.json").read_text())["nodes"]
    assert "<svg" in (tmp_path / "kg" / "graph.html").read_text()
    examples = ws.read_rows("examples_kg", Example, cfg)
    assert result.counts["examples"] == len(examples) > 0
    framed = [e for e in examples if e.field_values()["context"]]
    assert len(framed) * 2 == len(examples) and all(CONTEXT_HEADER in e.messages[1].content for e in framed)
    stats = ws.manifest()["examples_kg"].stats
    assert stats["strategy"] == "one_call" and stats["edges"] == len(edges) and stats["files"]["html"]


class _Bench:
    """A stand-in for the evaluation bench: base never answers; the tuned model answers right when given context."""

    def __init__(self, examples):
        self.by_id = {e.example_id: e for e in examples}
        self.calls = 0

    def reply(self, model, key, messages, max_tokens):
        self.calls += 1
        ex = self.by_id[key]
        if model is None:
            return "I don't know."
        return ex.target if ex.field_values()["context"] else "I don't know."


class _Entry:
    id = "kg-tuned"
    base_model = "base"


def test_graph_context_report_pairs_with_and_without_context(tmp_path):
    cfg, ws = _workspace(tmp_path)
    generate.run(cfg, ws, "kg", progress=False)
    recipe = KGRecipe()
    examples = [e.model_copy(update={"split": "eval"}) for e in ws.read_rows("examples_kg", Example, cfg)]
    recipe.prepare_eval(cfg, ws, examples)
    assert recipe.grader_check["passed"], recipe.grader_check
    bench = _Bench(examples)
    report = graph_context_report(recipe, cfg, examples, [_Entry()], {"base": bench})
    row = report["models"][0]
    assert row["pairs"] == len(examples) // 2
    assert row["base"]["without_context"]["mean"] == 0 and row["base"]["with_context"]["mean"] == 0
    assert row["tuned"]["with_context"]["mean"] == 1.0 and row["tuned"]["without_context"]["mean"] == 0
    assert row["tuned"]["with_minus_without"]["mean"] == 1.0
    assert row["tuned_minus_base"]["with"]["mean"] == 1.0
    assert report["base_all_paths"]["pairs"] == row["pairs"]  # every example is in eval here
    assert report["base_all_paths"]["with_context"]["mean"] == 0
    table = graph_context_markdown(report)
    assert "with - without" in table and "1.000" in table


def test_chat_kg_switch_adds_graph_context_to_the_question(tmp_path, monkeypatch):
    from doctune.knowledge.context import GraphIndex
    from doctune.train import chat

    cfg, ws = _workspace(tmp_path)
    generate.run(cfg, ws, "kg", progress=False)
    index = GraphIndex(ws.read_rows("kg_nodes", KGNode, cfg), ws.read_rows("kg_edges", KGEdge, cfg))
    seen = []

    def fake_generate(model, tokenizer, messages, write, max_new_tokens=256):
        seen.append(messages[-1]["content"])
        return "ok"

    monkeypatch.setattr(chat, "generate_streamed", fake_generate)
    lines = iter(["What is Mercury close to?", "/kg on", "What is Mercury close to?", "/kg off", "Hi", "/exit"])
    out = []
    history = chat.chat_loop(
        None,
        None,
        None,
        read_line=lambda _: next(lines),
        write=out.append,
        graph_context=lambda q: index.context_for(q, 5),
    )
    assert seen[0] == "What is Mercury close to?"
    assert seen[1].startswith(CONTEXT_HEADER) and "Mercury is the closest planet to Sun." in seen[1]
    assert seen[2] == "Hi"
    assert [m["content"] for m in history if m["role"] == "user"] == ["What is Mercury close to?"] * 2 + ["Hi"]
    assert "kg: on\n" in out and "kg: off\n" in out
