"""Entity and relation extraction per chunk: the rules (mentions, relation candidates), the relation check, and the
two task shapes (span with a labelling model, one structured call) with scripted fake models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctune.chunking import chunk_document
from doctune.config import DoctuneConfig, ModelSpec
from doctune.config_knowledge import KGConfig
from doctune.ingest.collect import collect_documents
from doctune.knowledge.claims import cite_in_chunk
from doctune.knowledge.extract import OneCallExtractor, SpanExtractor, extract_chunks
from doctune.knowledge.mentions import entity_type, find_mentions
from doctune.knowledge.relations import check_relation, sentence_relations, text_units
from doctune.knowledge.rows import ENTITY_TYPES
from doctune.llm import BackendError, CallParams, LLMClient
from doctune.llm.fake import FakeBackend
from doctune.records import Chunk

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

PREFACE = (
    "This manual was written by W. N. Venables and David M. Smith when at the\n"
    "University of Adelaide. Copyright 1997 R Core Team.\n"
    "R can be regarded as an implementation of the S language which was developed at Bell\n"
    "Laboratories by Rick Becker, John Chambers and Allan Wilks, and also forms the basis of\n"
    "the S-Plus systems. It includes a well developed programming language (called ‘S’).\n"
    "Thus whereas SAS and SPSS will give copious output, R will give minimal output.\n"
    "To quit the R program the command is q(). The command help.start() opens a browser.\n"
)
CLASSES = (
    "# 9. Classes\n\n"
    "Python’s class mechanism is a mixture of the class mechanisms found in C++ and Modula-3. "
    "In a sense the set of attributes of an object also form a namespace.\n\n"
    "A *namespace* is a mapping from names to objects. Objects have individuality. "
    "This is known as aliasing in other languages. Members are *public* in C++.\n\n"
    "The `global` statement can be used to indicate that variables live in the global scope. "
    "The method `__init__` is called when an instance is created.\n"
)


def chunk_of(text: str, chunk_id: str = "c1", doc_id: str = "d1") -> Chunk:
    return Chunk(chunk_id=chunk_id, doc_id=doc_id, index=0, text=text, char_start=0, char_end=len(text),
                 n_chars=len(text))  # fmt: skip


def names_types(chunk: Chunk) -> dict[str, str]:
    return {m.name: m.type for m in find_mentions(chunk)}


def client_for(name: str, script) -> LLMClient:
    FakeBackend.register_script(name, script)
    return LLMClient(FakeBackend(ModelSpec(backend="fake", model=name, max_concurrency=2)), sleep=lambda _s: None)


# --- mentions ---------------------------------------------------------------------------------------------------


def test_mentions_of_a_preface_persons_organisations_acronyms_and_code():
    found = names_types(chunk_of(PREFACE))
    assert found["W. N. Venables"] == "person"
    assert found["David M. Smith"] == "person"  # "and" between two persons splits them
    assert found["Rick Becker"] == found["John Chambers"] == found["Allan Wilks"] == "person"
    assert found["University of Adelaide"] == "organization"
    assert found["Bell Laboratories"] == "organization"
    assert found["R Core Team"] == "organization"
    assert found["S language"] == "software" and found["R program"] == "software"
    assert found["S-Plus"] == "software" and found["SAS"] == "software" and found["SPSS"] == "software"
    assert found["q()"] == "software" and found["help.start()"] == "software"
    assert "R" in found
    # stop words and sentence-initial common words are not names
    for word in ("This", "Copyright", "Thus", "To", "It", "The", "SAS and SPSS"):
        assert word not in found, word
    assert all(t in ENTITY_TYPES for t in found.values())


def test_mentions_of_a_tutorial_concepts_code_and_products():
    mentions = find_mentions(chunk_of(CLASSES))
    found = {m.name: m.type for m in mentions}
    assert found["Python"] == "software"  # "Python’s" without the possessive
    assert found["C++"] == "software" and found["Modula-3"] == "software"
    assert found["namespace"] == "concept"
    assert found["aliasing"] == "concept"
    assert found["global statement"] == "software" and found["__init__"] == "software"
    assert "public" not in found  # "are *public*": an adjective, not a term
    assert "Objects" not in found and "Classes" not in found  # sentence-initial only, and the heading is skipped
    by_name = {m.name: m for m in mentions}
    namespace = by_name["namespace"]
    assert namespace.citation is not None and namespace.citation.quote in CLASSES
    assert namespace.citation.quote.startswith("In a sense the set of attributes")  # the first sentence naming it
    assert by_name["aliasing"].description == "This is known as aliasing in other languages."
    assert by_name["C++"].description == ""
    assert len({m.mention_id for m in mentions}) == len(mentions)
    assert find_mentions(chunk_of(CLASSES))[0].mention_id == mentions[0].mention_id  # stable ids


def test_a_quoted_capital_is_that_letter_and_a_quoted_term_is_a_concept():
    text = "It has a programming language (called ‘S’). The term “character string” is used here."
    found = names_types(chunk_of(text))
    assert found["S"] == "software"
    assert found["character string"] == "concept"


def test_entity_type_rules():
    assert entity_type("Statistical Models in S", "They are covered in Statistical Models in S edited by J.") == (
        "publication"
    )
    assert entity_type("John M. Chambers", "") == "person"
    assert entity_type("Bell Laboratories", "") == "organization"
    assert entity_type("Adelaide", "") == "place"
    assert entity_type("help()", "") == "software"
    assert entity_type("UNIX", "") == "software"
    assert entity_type("mapping", "") == "concept"


def test_units_split_title_lines_lists_and_headings():
    text = (
        "Preface\nThis introduction to R is short.\n1.1 The R environment\nR is a suite:\n• a language, and\n• tools."
    )
    units = text_units(text)
    assert [u.text for u in units][:2] == ["Preface", "This introduction to R is short."]
    assert any(u.kind == "heading" and u.text == "1.1 The R environment" for u in units)
    assert all(text[u.start : u.end] == u.text for u in units)
    assert sum(u.text.startswith("•") for u in units) == 2


# --- relation candidates and the relation check ---------------------------------------------------------------


def test_relation_candidates_share_the_phrase_of_a_coordinated_list_and_read_the_passive():
    chunk = chunk_of(PREFACE)
    cands = sentence_relations(chunk, find_mentions(chunk), max_words=8)
    triples = {(c.source, c.phrase, c.target) for c in cands}
    assert ("R", "can be regarded as an implementation of", "S language") in triples
    assert ("S language", "was developed at", "Bell Laboratories") in triples
    for person in ("Rick Becker", "John Chambers", "Allan Wilks"):
        assert ("S language", "was developed by", person) in triples
        assert not any(s == "Bell Laboratories" and t == person for s, _, t in triples)
    assert ("David M. Smith", "when at", "University of Adelaide") in triples
    assert not any({s, t} == {"SAS", "R"} for s, _, t in triples)  # a comma ends the clause
    for cand in cands:
        assert cand.sentence in chunk.text and cite_in_chunk(cand.sentence, chunk) is not None
    short = sentence_relations(chunk, find_mentions(chunk), max_words=1)
    assert short and all(len(c.phrase.split()) == 1 for c in short)
    assert not any(c.target == "S language" for c in short)  # "can be regarded as ..." is longer than one word


def test_no_relation_from_the_object_of_a_preposition_or_across_a_clause():
    chunk = chunk_of("Documentation for S-Plus can be used with R. SAS and SPSS are programs, unlike R.")
    assert sentence_relations(chunk, find_mentions(chunk), max_words=8) == []
    chunk = chunk_of("The features of S are covered in Statistical Models in S edited by Trevor J. Hastie.")
    (cand,) = sentence_relations(chunk, find_mentions(chunk), max_words=8)  # not "S are covered in ..."
    assert (cand.source, cand.phrase, cand.target) == ("Statistical Models in S", "edited by", "Trevor J. Hastie")


def test_no_relation_from_a_noun_modifier_across_a_conjunction_or_ending_in_a_modifier():
    text = "A *namespace* is a mapping. Most namespaces are currently implemented as Python dictionaries."
    assert sentence_relations(chunk_of(text), find_mentions(chunk_of(text)), max_words=8) == []
    text = "A *scope* is a textual region of a Python program. The *scope* is a textual region of Python."
    triples = {
        (c.source, c.phrase, c.target) for c in sentence_relations(chunk_of(text), find_mentions(chunk_of(text)), 8)
    }
    assert triples == {("scope", "is a textual region of", "Python")}  # only where Python is not a modifier
    text = "Here Pascal is a language and Python is a snake. Pascal was written as the first Python."
    assert sentence_relations(chunk_of(text), find_mentions(chunk_of(text)), max_words=8) == []


def test_example_code_identifiers_and_common_capitalised_words_are_not_entities():
    text = (
        "In the expression `modname.funcname`, `modname` is a module object and `funcname` is an attribute of it. "
        "Use the `global` statement, `help()` and `__dict__`. Note how *spam* changed; see the Web and the "
        "Start In field of Windows.\n\n```\ndef scope_test():\n    spam = 1\n```\n\nThe start is near."
    )
    found = names_types(chunk_of(text))
    assert not {"modname", "funcname", "modname.funcname", "spam", "Web", "Start"} & set(found)
    assert {"global statement", "help()", "__dict__", "Windows"} <= set(found)


def test_document_terms_are_found_in_every_chunk_of_the_document():
    first = chunk_of("A *namespace* is a mapping from names to objects.", "c1", "d1")
    second = chunk_of("Namespaces are created at different moments. The namespace of Python modules lives on.", "c2")
    other = chunk_of("The namespace of this other document.", "c3", "d2")
    client = client_for("kg-label-empty", _label_script(""))
    result = extract_chunks([first, second, other], client, "span", KGConfig(), progress=False)
    by_chunk = {(m.chunk_id, m.name, m.type) for m in result.mentions}
    assert ("c2", "namespace", "concept") in by_chunk  # defined in c1, found in c2 (plural, sentence start)
    assert not any(c == "c3" and n == "namespace" for c, n, _ in by_chunk)  # another document: not its term
    assert "namespace" not in {m.name for m in find_mentions(second)}  # without the document's terms


def test_check_relation_rejects_a_missing_endpoint_and_an_ungrounded_description():
    chunk = chunk_of(PREFACE)
    citation = cite_in_chunk("To quit the R program the command is q().", chunk)
    assert citation is not None
    assert check_relation("R program", "is quit with", "q()", citation) == []
    assert check_relation("R program", "is quit with", "SPSS", citation) == ["endpoint_not_in_citation"]
    assert check_relation("R program", "", "q()", citation) == ["empty_relation"]
    assert check_relation("R program", "is", "the R programs", citation) == ["self_loop"]
    assert check_relation("R program", "is an", "q()", citation) == ["bare_copula"]
    ungrounded = check_relation("R program", "is quit with", "q()", citation, description="It deletes every file.")
    assert "ungrounded" in ungrounded
    # an alias named in the span stands for the endpoint
    assert check_relation("Rprog", "is quit with", "q()", citation, aliases={"Rprog": ["R program"]}) == []


# --- span extraction -------------------------------------------------------------------------------------------


def _label_script(label: str):
    return lambda messages: label


def test_span_extraction_keeps_a_good_model_label():
    chunk = chunk_of("The S language was developed at Bell Laboratories.")
    client = client_for("kg-label-good", _label_script("developed at"))
    result = SpanExtractor(client, CallParams(max_tokens=16), KGConfig()).extract(chunk)
    assert result.outcome.status == "items"
    (rel,) = result.relations
    assert (rel.source, rel.relation, rel.target, rel.label_method) == (
        "S language", "developed at", "Bell Laboratories", "model"
    )  # fmt: skip
    assert rel.citation.quote == chunk.text
    request = client.backend.requests[0]["messages"][1].content
    assert "Bell Laboratories" in request and "1-6 words" in request


def test_span_extraction_falls_back_to_the_source_phrase():
    chunk = chunk_of("The S language was developed at Bell Laboratories.")
    invented = client_for("kg-label-invented", _label_script("was invented inside"))
    (rel,) = SpanExtractor(invented, CallParams(), KGConfig()).extract(chunk).relations
    assert (rel.relation, rel.label_method) == ("was developed at", "source")
    naming = client_for("kg-label-naming", _label_script("Bell Laboratories"))
    assert SpanExtractor(naming, CallParams(), KGConfig()).extract(chunk).relations[0].label_method == "source"
    vague = client_for("kg-label-vague", _label_script("is"))  # drops "star at the centre": another relation
    star = chunk_of("The Sun is a star at the centre of the Solar System.")
    (rel,) = SpanExtractor(vague, CallParams(), KGConfig()).extract(star).relations
    assert (rel.source, rel.relation, rel.target, rel.label_method) == (
        "Sun", "is a star at the centre of", "Solar System", "source"
    )  # fmt: skip
    failing = client_for("kg-label-down", lambda m: BackendError("down", kind="timeout"))
    result = SpanExtractor(failing, CallParams(), KGConfig()).extract(chunk)
    assert result.relations[0].label_method == "source"
    assert "timeout" in result.outcome.detail


def test_span_extraction_of_a_chunk_without_names_has_no_items():
    client = client_for("kg-label-none", _label_script("x"))
    result = SpanExtractor(client, CallParams(), KGConfig()).extract(chunk_of("it was fine and then it was not."))
    assert result.outcome.status == "no_items" and result.outcome.detail


# --- one call --------------------------------------------------------------------------------------------------

ONE_CALL_TEXT = "The S language was developed at Bell Laboratories. R is an implementation of the S language."


def _reply(relations: list[dict]) -> str:
    entities = [
        {"name": "S language", "type": "software", "description": "The S language was developed at Bell Laboratories."},
        {"name": "Bell Laboratories", "type": "Organization", "description": "Bell Laboratories invented the laser."},
        {"name": "R", "type": "software", "description": ""},
    ]
    return json.dumps({"entities": entities, "relations": relations})


def test_one_call_accepts_a_cited_relation_and_rejects_the_rest():
    relations = [
        {"source": "S language", "relation": "was developed at", "target": "Bell Laboratories",
         "description": "", "quote": "The S language was developed at Bell Laboratories."},
        {"source": "R", "relation": "implements", "target": "S language", "description": "",
         "quote": "R is a reimplementation written in Fortran of S."},
        {"source": "R", "relation": "is an implementation of", "target": "S language", "description": "", "quote": ""},
        {"source": "R", "relation": "is an implementation of", "target": "Python", "description": "",
         "quote": "R is an implementation of the S language."},
        {"source": "R", "relation": "is an implementation of", "target": "Bell Laboratories", "description": "",
         "quote": "R is an implementation of the S language."},
    ]  # fmt: skip
    client = client_for("kg-one-call", lambda m: _reply(relations))
    result = OneCallExtractor(client, CallParams(), KGConfig()).extract(chunk_of(ONE_CALL_TEXT))
    assert result.outcome.status == "items"
    assert [(r.source, r.target, r.method) for r in result.relations] == [("S language", "Bell Laboratories", "model")]
    assert [r["reason"] for r in result.rejected] == [
        "quote_not_found", "no_citation", "unknown_entity", "endpoint_not_in_citation"
    ]  # fmt: skip
    mentions = {m.name: m for m in result.mentions}
    assert mentions["Bell Laboratories"].type == "organization" and mentions["R"].method == "model"
    assert mentions["Bell Laboratories"].description == ""  # "invented the laser" is not in the text
    assert mentions["S language"].description.startswith("The S language")
    assert mentions["R"].citation is not None and mentions["R"].citation.quote.startswith("R is")


def test_one_call_failures_end_with_a_reason():
    chunk = chunk_of(ONE_CALL_TEXT)
    garbled = client_for("kg-one-call-garbled", lambda m: "entities: S, R (sorry, no JSON)")
    result = OneCallExtractor(garbled, CallParams(), KGConfig(), max_attempts=2).extract(chunk)
    assert result.outcome.status == "invalid" and not result.mentions and not result.relations
    down = client_for("kg-one-call-down", lambda m: BackendError("rate limited", kind="rate_limited"))
    result = OneCallExtractor(down, CallParams(), KGConfig()).extract(chunk)
    assert result.outcome.status == "rate_limited" and "rate limited" in result.outcome.detail


def test_extract_chunks_runs_every_chunk_and_a_crash_is_an_outcome(monkeypatch):
    chunks = [chunk_of(ONE_CALL_TEXT, "c1"), chunk_of("Nothing to see here.", "c2"), chunk_of(PREFACE, "c3")]
    client = client_for("kg-extract-all", _label_script(""))
    result = extract_chunks(chunks, client, "span", KGConfig(), progress=False)
    assert [o.unit_id for o in result.outcomes] == ["c1", "c2", "c3"]
    assert [o.status for o in result.outcomes] == ["items", "no_items", "items"]
    assert result.usage["calls"] >= 1 and {r.chunk_id for r in result.relations} == {"c1", "c3"}

    def boom(self, chunk):
        if chunk.chunk_id == "c2":
            raise RuntimeError("unexpected")
        return original(self, chunk)

    original = SpanExtractor.extract
    monkeypatch.setattr(SpanExtractor, "extract", boom)
    result = extract_chunks(chunks, client, "span", KGConfig(), progress=False)
    assert [o.status for o in result.outcomes] == ["items", "backend_error", "items"]
    assert "unexpected" in result.outcomes[1].detail
    with pytest.raises(ValueError):
        extract_chunks(chunks, client, "guess", KGConfig(), progress=False)


# --- the two example documents ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_chunks() -> dict[str, list[Chunk]]:
    cfg = DoctuneConfig()
    paths = [EXAMPLES / "pdf" / "r-intro-excerpt.pdf", EXAMPLES / "html" / "python-tutorial-classes.html"]
    docs, errors = collect_documents(paths, cfg.ingest)
    assert not errors and len(docs) == 2
    return {Path(d.source_path).stem: chunk_document(d, cfg.chunk) for d in docs}


@pytest.mark.parametrize("stem", ["r-intro-excerpt", "python-tutorial-classes"])
def test_span_extraction_over_the_example_documents(example_chunks, stem):
    chunks = example_chunks[stem]
    client = client_for("kg-label-empty", _label_script(""))  # every label is refused: source phrases only
    result = extract_chunks(chunks, client, "span", KGConfig(), progress=False)
    assert len(result.mentions) >= 15
    assert len(result.relations) >= {"r-intro-excerpt": 15, "python-tutorial-classes": 3}[stem]
    assert all(r.label_method == "source" for r in result.relations)
    by_chunk = {c.chunk_id: c for c in chunks}
    for rel in result.relations:
        chunk = by_chunk[rel.chunk_id]
        assert rel.citation.quote in chunk.text
        assert chunk.text[rel.citation.char_start - chunk.char_start : rel.citation.char_end - chunk.char_start] == (
            rel.citation.quote
        )
    names = {m.name for m in result.mentions}
    expected = {"r-intro-excerpt": {"University of Adelaide", "Bell Laboratories", "John M. Chambers", "S-Plus"},
                "python-tutorial-classes": {"Python", "C++", "Modula-3", "namespace", "__main__"}}  # fmt: skip
    assert expected[stem] <= names
    assert not names & {"The", "This", "Copyright", "Permission", "However", "Chapter", "Appendix", "Preface"}
