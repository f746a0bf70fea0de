"""Graph context for a question, path questions over the graph, the kg recipe's grader and its own check."""

from __future__ import annotations

import json

from doctune.knowledge.context import CONTEXT_HEADER, GraphIndex, with_context
from doctune.knowledge.paths import path_questions
from doctune.knowledge.rows import KGEdge, KGNode
from doctune.recipes.kg import IDK, KGRecipe
from doctune.records import Citation


def _cite(quote: str, chunk: str = "c1") -> Citation:
    return Citation(
        quote=quote, doc_id="d1", chunk_id=chunk, char_start=0, char_end=len(quote), method="exact", score=100
    )


def _graph() -> GraphIndex:
    nodes = [
        KGNode(node_id="r", name="R", type="software", doc_ids=["d1"]),
        KGNode(node_id="s", name="S language", type="software", aliases=["S"], doc_ids=["d1"]),
        KGNode(node_id="bell", name="Bell Laboratories", type="organization", doc_ids=["d1"]),
        KGNode(node_id="chambers", name="John M. Chambers", type="person", aliases=["John Chambers"]),
        KGNode(node_id="becker", name="Rick Becker", type="person"),
        KGNode(node_id="sas", name="SAS", type="software"),
    ]
    q1 = "R can be regarded as an implementation of the S language"
    q2 = "the S language which was developed at Bell Laboratories by Rick Becker, John Chambers"
    edges = [
        KGEdge(edge_id="e1", source="r", target="s", relation="is an implementation of", citations=[_cite(q1)]),
        KGEdge(edge_id="e2", source="s", target="bell", relation="was developed at", citations=[_cite(q2)]),
        KGEdge(edge_id="e3", source="s", target="becker", relation="was developed by", citations=[_cite(q2)]),
        KGEdge(edge_id="e4", source="s", target="chambers", relation="was developed by", citations=[_cite(q2)]),
    ]
    return GraphIndex(nodes, edges)


def test_find_nodes_by_name_and_alias_longest_first_and_short_names_case_sensitive():
    index = _graph()
    assert index.find_nodes("Was the S language made at Bell Laboratories?") == ["s", "bell"]
    assert index.find_nodes("what did john chambers write") == ["chambers"]
    assert index.find_nodes("a story about s and r in lower case") == []  # R and S only as written
    assert index.find_nodes("R and S") == ["r", "s"]


def test_context_puts_relations_between_named_entities_first_and_is_capped():
    index = _graph()
    edges = index.context_edges("How is R related to the S language?", k=2)
    assert edges[0].edge_id == "e1" and len(edges) == 2
    text = index.format_context(edges)
    assert text.startswith(CONTEXT_HEADER) and "- R is an implementation of S language." in text
    assert index.context_for("Nothing the graph knows.", 5) == ""
    assert with_context("Q?", "") == "Q?" and with_context("Q?", text).endswith("Question: Q?")


def test_path_questions_one_and_two_hops_with_every_right_answer_and_citations():
    index = _graph()
    questions = path_questions(index, max_two_hop=10)
    by_text = {q.question: q for q in questions}
    tail = by_text["Complete from the documents: S language was developed by ___."]
    assert set(tail.answers) == {"becker", "chambers"} and tail.hops == 1 and tail.citations
    head = by_text["Complete from the documents: ___ was developed at Bell Laboratories."]
    assert head.answers == ["s"] and head.direction == "head"
    two = [q for q in questions if q.hops == 2]
    assert two and all(len(q.edge_ids) == 2 and len(q.citations) == 2 for q in two)
    chain = next(q for q in two if q.answers == ["bell"])
    assert chain.question == "Complete from the documents: R is an implementation of X, and X was developed at ___."
    assert "S language" not in chain.question and chain.answer.startswith("Bell Laboratories.")
    for q in questions:  # no question names its own answer
        assert not set(index.find_nodes(q.question)) & set(q.answers)


def test_kg_examples_grader_and_its_check():
    from doctune.config import DoctuneConfig

    index = _graph()
    recipe = KGRecipe()
    config = DoctuneConfig()
    questions = path_questions(index, 10)
    examples = [ex for q in questions for ex in recipe.path_examples(q, index, config)]
    assert len(examples) == 2 * len(questions)
    framed = [e for e in examples if e.field_values()["context"]]
    assert all(CONTEXT_HEADER in e.messages[1].content for e in framed)
    assert all(e.messages[-1].role == "assistant" for e in examples)
    recipe._index = index
    ex = next(e for e in examples if "developed by ___" in e.messages[1].content and not e.field_values()["context"])
    assert recipe.accuracy(ex, "Rick Becker") == 1.0
    assert recipe.accuracy(ex, "It was John Chambers.") == 1.0
    assert recipe.accuracy(ex, "Bell Laboratories") == 0.0  # a wrong entity
    assert recipe.accuracy(ex, "Rick Becker and SAS") == 0.0  # a right one listed with a wrong one
    assert recipe.accuracy(ex, IDK) == 0.0
    assert recipe.accuracy(ex, "") == 0.0
    check = recipe.check_grader([e.model_copy(update={"split": "eval"}) for e in examples])
    assert check["passed"] and check["agreement"] == 1.0, json.dumps(check["failures"])
    assert {"reference", "echo", "dont_know", "wrong_entity"} <= set(check["cases"])
    split = recipe.split_examples(examples, config)
    for ex_id in {e.field_values()["path_id"] for e in examples}:  # both forms of a path share a split
        places = {name for name, rows in split.items() for e in rows if e.field_values()["path_id"] == ex_id}
        assert len(places) == 1
