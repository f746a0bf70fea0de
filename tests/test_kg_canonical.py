"""Canonical names of the knowledge graph: aliases merged, different entities kept apart, merges listed."""

from __future__ import annotations

import numpy as np

from doctune.knowledge.canonical import canonicalise, guard_blocks, is_abbreviation, person_parts
from doctune.knowledge.rows import KGMention, KGRelation
from doctune.records import Citation


def cite(quote: str, doc: str = "d1", chunk: str = "c1") -> Citation:
    return Citation(quote=quote, doc_id=doc, chunk_id=chunk, char_start=0, char_end=len(quote), method="exact", score=1)


def mention(name: str, type: str = "software", doc: str = "d1", chunk: str = "c1", quote: str = "", desc: str = ""):
    return KGMention(
        mention_id=f"m-{name}-{chunk}-{type}",
        chunk_id=chunk,
        doc_id=doc,
        name=name,
        type=type,
        description=desc,
        citation=cite(quote or name, doc, chunk),
    )


def same(canon, *names: str) -> bool:
    return len({canon.node_of[n] for n in names}) == 1


def apart(canon, *names: str) -> bool:
    return len({canon.node_of[n] for n in names}) == len(names)


def reasons(canon) -> dict[str, str]:
    return {m.merged: m.reason for m in canon.merges}


def test_case_plural_article_merge_by_key():
    mentions = [mention("Python class", "concept"), mention("python classes", "concept"), mention("Python")]
    canon = canonicalise([*mentions, mention("Python class", "concept", chunk="c2")])
    assert same(canon, "Python class", "python classes")
    assert apart(canon, "Python class", "Python")  # "class" is not a generic noun of the alias rule
    assert reasons(canon) == {"python classes": "same_key"}
    node = next(n for n in canon.nodes if n.node_id == canon.node_of["Python class"])
    assert node.name == "Python class" and node.mentions == 3 and node.type == "concept"


def test_articles_and_generic_noun_alias():
    canon = canonicalise(
        [mention("S"), mention("S"), mention("the S language"), mention("R"), mention("R environment")]
    )
    assert same(canon, "S", "the S language")
    assert same(canon, "R", "R environment")
    assert apart(canon, "S", "R")  # one-letter names never merge by similarity
    node = next(n for n in canon.nodes if n.node_id == canon.node_of["S"])
    assert node.name == "S" and node.aliases == ["the S language"]  # the most frequent form is canonical
    assert reasons(canon)["the S language"] == "alias"
    canon = canonicalise(
        [mention("methods"), mention("methods package"), mention("q"), mention("q()"), mention("help()")]
    )
    assert same(canon, "methods", "methods package") and same(canon, "q", "q()")
    assert sorted(reasons(canon).values()) == ["alias", "alias"]


def test_generic_noun_needs_the_bare_entity():
    canon = canonicalise([mention("X Window System"), mention("UNIX")])
    assert apart(canon, "X Window System", "UNIX")
    assert [n.name for n in canon.nodes] == ["X Window System", "UNIX"]


def test_long_name_with_abbreviation_in_parentheses():
    quote = "packages are on the Comprehensive R Archive Network (CRAN) and elsewhere"
    mentions = [
        mention("Comprehensive R Archive Network", "organization", quote=quote),
        mention("CRAN", "organization", doc="d2", chunk="c9"),  # another document: only the quote links them
        mention("Object Oriented Programming", "concept", desc="OOP (Object Oriented Programming) is a style"),
        mention("OOP", "concept", doc="d3", chunk="c7"),
    ]
    canon = canonicalise(mentions)
    assert same(canon, "Comprehensive R Archive Network", "CRAN")
    assert same(canon, "Object Oriented Programming", "OOP")
    assert reasons(canon)["CRAN"] == "alias" and reasons(canon)["OOP"] == "alias"
    node = next(n for n in canon.nodes if n.node_id == canon.node_of["CRAN"])
    assert node.name == "Comprehensive R Archive Network" and node.doc_ids == ["d1", "d2"]


def test_parenthesis_that_is_not_an_abbreviation_merges_nothing():
    quote = "written by John Chambers (Bell Laboratories) in 1998"
    canon = canonicalise(
        [mention("John Chambers", "person", quote=quote), mention("Bell Laboratories", "organization")]
    )
    assert apart(canon, "John Chambers", "Bell Laboratories")
    assert not is_abbreviation("Bell Laboratories", "John Chambers")


def test_acronym_of_a_multi_word_name_of_the_same_document():
    mentions = [
        mention("Statistical Analysis System", doc="d1"),
        mention("SAS", doc="d1", chunk="c2"),
        mention("Graphical User Interface", "concept", doc="d1"),
        mention("GUI", "concept", doc="d2"),  # another document: not merged
    ]
    canon = canonicalise(mentions)
    assert same(canon, "Statistical Analysis System", "SAS")
    assert reasons(canon)["SAS"] == "acronym"
    assert apart(canon, "Graphical User Interface", "GUI")


def test_person_name_variants():
    names = ["John M. Chambers", "John Chambers", "J. M. Chambers", "Chambers"]
    canon = canonicalise([mention(n, "person", chunk=f"c{i}") for i, n in enumerate(names)])
    assert same(canon, *names)
    assert {m.merged: m.reason for m in canon.merges} == {n: "person_name" for n in names[1:]}
    assert canon.nodes[0].name == "John M. Chambers"  # all seen once: the longest form
    assert person_parts("Guido van Rossum") == ("guido", "van rossum")
    assert person_parts("Chambers, John") == ("john", "chambers")


def test_persons_sharing_a_surname_stay_apart():
    names = ["Rick Becker", "Richard A. Becker", "Becker", "Mary Smith", "John Smith", "J. Smith", "Smith"]
    canon = canonicalise([mention(n, "person") for n in names])
    assert apart(canon, "Rick Becker", "Richard A. Becker", "Becker")  # nicknames are not guessed; bare is ambiguous
    assert same(canon, "John Smith", "J. Smith")
    assert apart(canon, "Mary Smith", "John Smith", "Smith")
    # an initial that fits two first names is ambiguous: it stays alone
    canon = canonicalise([mention(n, "person") for n in ["John Smith", "James Smith", "J. Smith"]])
    assert apart(canon, "John Smith", "James Smith", "J. Smith")


def test_same_name_different_type_is_one_node_of_the_majority_type():
    canon = canonicalise([mention("Python"), mention("python", "concept"), mention("Python", "software", chunk="c2")])
    assert same(canon, "Python", "python")
    assert len(canon.nodes) == 1 and canon.nodes[0].type == "software" and canon.nodes[0].mentions == 3


def fake_embed(vectors: dict[str, list[float]]):
    def embed(texts: list[str]) -> np.ndarray:
        return np.array([vectors.get(t, [0.0, 0.0, 1.0]) for t in texts])

    return embed


def test_embedding_merges_and_guards():
    pairs = [
        ("matrix", "matrices of numbers"),  # may merge
        ("Python 2", "Python 3"),
        ("C", "C++"),
        ("Modula-2", "Modula-3"),
        ("Smalltalk", "Smalltalk-80"),
        ("statistics", "Statistics Bureau"),  # different types
    ]
    vectors: dict[str, list[float]] = {}
    for i, (a, b) in enumerate(pairs):  # each pair its own direction, the second a hair off the first
        vectors[a] = [1.0 if d == i else 0.0 for d in range(len(pairs))]
        vectors[b] = [1.0 if d == i else 0.1 if d == (i + 1) % len(pairs) else 0.0 for d in range(len(pairs))]
    types = {"matrix": "concept", "matrices of numbers": "concept", "statistics": "concept"}
    types["Statistics Bureau"] = "organization"
    mentions = [mention(n, types.get(n, "software")) for n in vectors]
    canon = canonicalise(mentions, embed=fake_embed(vectors), merge_similarity=0.9)
    assert same(canon, "matrix", "matrices of numbers")
    assert len(canon.merges) == 1
    merge = canon.merges[0]
    assert merge.reason == "embedding" and 0.99 <= merge.score < 1.0
    for a, b in pairs[1:]:
        assert apart(canon, a, b), (a, b)
    assert guard_blocks("C", "C++") and guard_blocks("Python 2", "Python 3") and not guard_blocks("help", "help()")
    # below the threshold: no merge
    canon = canonicalise(mentions, embed=fake_embed(vectors), merge_similarity=0.999)
    assert apart(canon, "matrix", "matrices of numbers")


def test_embedding_chain_cannot_bridge_a_guard():
    vectors = {"Python 2": [1.0, 0.0], "Python version": [1.0, 0.0], "Python 3": [1.0, 0.0]}
    canon = canonicalise([mention(n) for n in vectors], embed=fake_embed(vectors))
    assert apart(canon, "Python 2", "Python 3")


def test_failing_embedder_costs_only_embedding_merges():
    def broken(texts):
        raise RuntimeError("no model")

    canon = canonicalise([mention("Python"), mention("python")], embed=broken)
    assert same(canon, "Python", "python")


def test_transitive_merges_and_relation_endpoints():
    quote = "the Comprehensive R Archive Network (CRAN) mirrors"
    mentions = [
        mention("Comprehensive R Archive Network", "organization", quote=quote),
        mention("CRAN", "organization"),
        mention("CRAN project", "organization"),  # alias of CRAN (generic noun), so of the long name too
    ]
    relations = [
        KGRelation(
            relation_id="r1",
            chunk_id="c5",
            doc_id="d1",
            source="CRAN",
            relation="is hosted at",
            target="Vienna University",
            citation=cite("CRAN is hosted at Vienna University", chunk="c5"),
        )
    ]
    canon = canonicalise(mentions, relations)
    assert same(canon, "Comprehensive R Archive Network", "CRAN", "CRAN project")
    vienna = next(n for n in canon.nodes if n.node_id == canon.node_of["Vienna University"])
    assert vienna.type == "other" and vienna.mentions == 0 and vienna.chunk_ids == ["c5"]
    assert {m.merged for m in canon.merges} == {"CRAN", "CRAN project"}
    assert all(m.canonical == "Comprehensive R Archive Network" for m in canon.merges)


def test_node_ids_stable_and_unique():
    mentions = [mention("C"), mention("C++"), mention("C#")]
    first, again = canonicalise(mentions), canonicalise(list(reversed(mentions)))
    assert first.node_of["C"] == "n-c"
    assert len(set(first.node_of.values())) == 3
    assert first.node_of == again.node_of
