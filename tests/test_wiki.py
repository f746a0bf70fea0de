"""The auto-wiki: seeds, span and one_call articles (every sentence cited and verified), the spider's budget and
depth, the static site (links, backlinks, search, escaping) and the recipe end to end through `generate wiki`."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from doctune.config import DoctuneConfig
from doctune.config_knowledge import WikiConfig
from doctune.knowledge.claims import cite_in_chunk, verify_claim
from doctune.knowledge.graph import assign_communities
from doctune.knowledge.rows import KGEdge, KGNode, WikiArticle
from doctune.knowledge.wiki import choose_seeds, spider, trim_headings, write_article
from doctune.knowledge.wiki_links import Linker, plain_markdown
from doctune.knowledge.wiki_site import write_wiki_site
from doctune.llm.base import BackendError
from doctune.llm.client import LLMClient
from doctune.llm.fake import FakeBackend
from doctune.records import Chunk, Document, Example
from doctune.stages import generate
from doctune.workspace import Workspace

TEXT = (
    "Guido van Rossum created Python at CWI. Python is a programming language that supports classes and modules. "
    "Python was first released in 1991. CWI is a research institute in Amsterdam. "
    "Guido van Rossum worked at CWI for many years. Amsterdam is the capital of the <Netherlands> & more."
)
DOC = Document(
    doc_id="d1", source_path="python.txt", format="txt", title="Python <history>", text=TEXT, n_chars=len(TEXT)
)
CHUNK = Chunk(chunk_id="c1", doc_id="d1", index=0, text=TEXT, char_start=0, char_end=len(TEXT), n_chars=len(TEXT))


def _cite(quote: str):
    citation = cite_in_chunk(quote, CHUNK)
    assert citation is not None, quote
    return citation


def _node(node_id: str, name: str, quote: str, mentions: int, aliases=()) -> KGNode:
    return KGNode(
        node_id=node_id,
        name=name,
        type="other",
        aliases=list(aliases),
        citation=_cite(quote),
        chunk_ids=["c1"],
        doc_ids=["d1"],
        mentions=mentions,
    )


def _edge(edge_id: str, source: str, relation: str, target: str, quote: str) -> KGEdge:
    return KGEdge(
        edge_id=edge_id, source=source, target=target, relation=relation, citations=[_cite(quote)], chunk_ids=["c1"]
    )


def graph() -> tuple[list[KGNode], list[KGEdge]]:
    """Four entities; one edge ("was invented by") whose statement has a word its quote lacks."""
    nodes = [
        _node("n-python", "Python", "Python is a programming language", 4),
        _node("n-guido", "Guido van Rossum", "Guido van Rossum created Python", 2, aliases=["Guido"]),
        _node("n-cwi", "CWI", "CWI is a research institute", 3),
        _node("n-amsterdam", "Amsterdam", "Amsterdam is the capital", 2),
    ]
    edges = [
        _edge("e1", "n-guido", "created", "n-python", "Guido van Rossum created Python at CWI."),
        _edge("e2", "n-guido", "worked at", "n-cwi", "Guido van Rossum worked at CWI for many years."),
        _edge("e3", "n-cwi", "is a research institute in", "n-amsterdam", "CWI is a research institute in Amsterdam."),
        _edge("e4", "n-python", "was invented by", "n-cwi", "Guido van Rossum created Python at CWI."),
    ]
    nodes, _ = assign_communities(nodes, edges)
    return nodes, edges


def _by_id(nodes):
    return {n.node_id: n for n in nodes}


def test_seeds_by_degree_and_by_topic():
    nodes, _ = graph()
    degrees = {n.node_id: n.degree for n in nodes}
    assert degrees == {"n-python": 2, "n-guido": 2, "n-cwi": 3, "n-amsterdam": 1}
    # degree first, then mentions (Python 4 > Guido 2)
    assert choose_seeds(nodes, WikiConfig(seed_articles=3)) == ["n-cwi", "n-python", "n-guido"]
    # a topic matched by name key ("the amsterdam" -> "amsterdam"), an alias, an unknown topic ignored
    cfg = WikiConfig(seed_articles=3, topics=["the Amsterdam", "Guido", "Mars"])
    assert choose_seeds(nodes, cfg) == ["n-amsterdam", "n-guido", "n-cwi"]


def test_span_article_cites_verified_sentences_and_links_other_nodes():
    nodes, edges = graph()
    article, reason = write_article(_by_id(nodes)["n-python"], _by_id(nodes), edges, {"c1": CHUNK}, WikiConfig())
    assert reason == "" and article is not None
    assert article.article_id == "python" and article.title == "Python"
    assert len(article.sentences) >= 4
    for s in article.sentences:  # every sentence: a real span of the document, and the verifier accepts it
        c = s.citation
        assert s.verified and TEXT[c.char_start : c.char_end] == c.quote
        assert verify_claim(s.text, c.quote, topic="Python").grounded
    texts = [s.text for s in article.sentences]
    assert texts[0] == "Python is a programming language that supports classes and modules."  # the lead
    assert "Guido van Rossum created Python." in texts  # the relation statement
    assert "Python was first released in 1991." in texts  # a verbatim source sentence naming the node
    assert len(set(texts)) == len(texts)
    # the unsupported relation ("invented" is not in its quote) is dropped and counted
    assert "Python was invented by CWI." not in texts and article.dropped_sentences == 1
    md = article.markdown
    assert md.startswith("# Python\n") and "## Relations" in md and "## In the sources" in md
    assert "- [[Guido van Rossum]] created Python.[^2]" in md
    assert "[[CWI]]" in md and "[[Python]]" not in md  # the article does not link to itself
    assert set(article.links) == {"guido-van-rossum", "cwi"}
    assert f"[^{len(texts)}]: " in md and "[doc d1, chunk c1, chars " in md
    plain = plain_markdown(md)
    assert "[[" not in plain and "[^" not in plain and "chars" not in plain and "Guido van Rossum created" in plain


def test_min_sentences_gives_a_reason():
    nodes, edges = graph()
    cfg = WikiConfig(min_sentences=8)
    article, reason = write_article(_by_id(nodes)["n-amsterdam"], _by_id(nodes), edges, {"c1": CHUNK}, cfg)
    assert article is None and reason == "too_few_verified_sentences"
    articles, errors = spider(nodes, edges, [CHUNK], WikiConfig(seed_articles=4, min_sentences=8))
    assert articles == [] and {e["reason"] for e in errors} == {"too_few_verified_sentences"} and len(errors) == 4


def test_spider_stops_at_budget_and_records_depth():
    nodes, edges = graph()
    articles, errors = spider(nodes, edges, [CHUNK], WikiConfig(seed_articles=1, max_articles=3, min_sentences=1))
    assert [a.depth for a in articles] == [0, 1, 1] and errors == []
    assert articles[0].node_id == "n-cwi"
    assert {a.article_id for a in articles[1:]} <= set(articles[0].links)  # reached by following CWI's links
    everything, _ = spider(nodes, edges, [CHUNK], WikiConfig(seed_articles=1, max_articles=10, min_sentences=1))
    assert len(everything) == 4 and max(a.depth for a in everything) >= 1


def test_one_call_keeps_only_marked_supported_sentences():
    nodes, edges = graph()
    reply = (
        "Python is a programming language that supports [[classes]]. [1] "
        "Python is the fastest language on Mars [2]. "
        "Guido van Rossum created Python."
    )
    backend = FakeBackend().add_replies(reply)
    cfg = WikiConfig(min_sentences=1)
    node = _by_id(nodes)["n-python"]
    article, reason = write_article(
        node, _by_id(nodes), edges, {"c1": CHUNK}, cfg, strategy="one_call", client=LLMClient(backend)
    )
    assert reason == "" and article is not None
    assert [s.text for s in article.sentences] == ["Python is a programming language that supports classes."]
    assert article.sentences[0].citation.quote.startswith("Python is a programming language")
    assert article.dropped_sentences == 2
    facts = backend.requests[0]["messages"][1].content
    assert "[1] Python is a programming language" in facts and "Guido van Rossum created Python." in facts
    # a failed call: the span article instead, recorded
    failing = LLMClient(FakeBackend().add_replies(*[BackendError("down")] * 10), sleep=lambda _s: None)
    article, reason = write_article(node, _by_id(nodes), edges, {"c1": CHUNK}, cfg, "one_call", client=failing)
    assert article is not None and reason.startswith("one_call_failed") and "## Relations" in article.markdown
    failing = LLMClient(FakeBackend().add_replies(*[BackendError("down")] * 10), sleep=lambda _s: None)
    written, errors = spider(nodes, edges, [CHUNK], WikiConfig(seed_articles=1, max_articles=1), "one_call", failing)
    assert len(written) == 1 and errors[0]["reason"] == "one_call_fallback"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href", ""))


def test_site_pages_links_backlinks_search_and_escaping(tmp_path):
    nodes, edges = graph()
    articles, _ = spider(nodes, edges, [CHUNK], WikiConfig(seed_articles=1, max_articles=2, min_sentences=1))
    index = write_wiki_site(articles, {"d1": DOC}, tmp_path / "wiki", title="My <wiki>")
    assert index == tmp_path / "wiki" / "index.html"
    pages = {p.name for p in (tmp_path / "wiki").glob("*.html")}
    assert pages == {"index.html", *(f"{a.article_id}.html" for a in articles)}
    for page in pages:
        html = (tmp_path / "wiki" / page).read_text(encoding="utf-8")
        assert "http://" not in html and "https://" not in html and "<link" not in html  # self-contained
        parser = _Links()
        parser.feed(html)
        for href in parser.hrefs:  # every link resolves to a page that exists (or an anchor of the page)
            assert href.startswith("#") or (tmp_path / "wiki" / href).exists(), (page, href)
    cwi, other = articles[0], articles[1]
    cwi_html = (tmp_path / "wiki" / f"{cwi.article_id}.html").read_text(encoding="utf-8")
    other_html = (tmp_path / "wiki" / f"{other.article_id}.html").read_text(encoding="utf-8")
    assert f'<a href="{other.article_id}.html"' in cwi_html
    missing = [a for a in ("python", "guido-van-rossum", "amsterdam") if a != other.article_id]
    assert any('<span class="missing"' in cwi_html and f"{a}.html" not in cwi_html for a in missing)
    links_here = other_html.split("What links here", 1)[1]
    assert f'<a href="{cwi.article_id}.html">CWI</a>' in links_here  # the backlink
    assert "Python &lt;history&gt;" in cwi_html and "<history>" not in cwi_html  # document title, escaped
    assert 'id="note-1"' in cwi_html and 'href="#note-1"' in cwi_html
    index_html = index.read_text(encoding="utf-8")
    assert "My &lt;wiki&gt;" in index_html and 'id="search"' in index_html
    found = re.search(r'<script type="application/json" id="search-index">(.*?)</script>', index_html, re.DOTALL)
    entries = json.loads(found.group(1))
    assert {e["id"] for e in entries} == {a.article_id for a in articles}
    assert all(e["text"] and "[[" not in e["text"] for e in entries)


def test_site_escapes_article_text(tmp_path):
    nodes, edges = graph()
    article, _ = write_article(_by_id(nodes)["n-amsterdam"], _by_id(nodes), edges, {"c1": CHUNK}, WikiConfig())
    assert article is not None and any("<Netherlands>" in s.text for s in article.sentences)
    write_wiki_site([article], {"d1": DOC}, tmp_path)
    html = (tmp_path / f"{article.article_id}.html").read_text(encoding="utf-8")
    assert "&lt;Netherlands&gt; &amp; more" in html and "<Netherlands>" not in html
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<Netherlands>" not in index.split('id="search-index">', 1)[1]  # escaped inside the JSON too


def kg_workspace(root, strategy="span", generator=None):
    """A workspace with documents, chunks and the graph's kg_nodes/kg_edges written through the artifact API."""
    cfg = DoctuneConfig.model_validate(
        {
            "workspace": str(root),
            "models": {"generator": generator or {"backend": "fake", "model": "wiki-none"}},
            "generate": {"strategy": strategy},
            "wiki": {"seed_articles": 2, "max_articles": 3, "min_sentences": 1},
        }
    )
    ws = Workspace(root)
    ws.start_run("ingest", cfg).write_artifact("documents", [DOC], Document)
    ws.start_run("chunk", cfg).write_artifact("chunks", [CHUNK], Chunk, inputs=["documents"])
    nodes, edges = graph()
    run = ws.start_run("generate kg", cfg)
    run.write_artifact("kg_nodes", nodes, KGNode, inputs=["documents", "chunks"])
    run.write_artifact("kg_edges", edges, KGEdge, inputs=["documents", "chunks"])
    return cfg, ws


def test_recipe_end_to_end(tmp_path):
    cfg, ws = kg_workspace(tmp_path)
    result = generate.run(cfg, ws, "wiki", progress=False)
    articles = ws.read_rows("wiki_articles", WikiArticle, cfg)
    examples = ws.read_rows("examples_wiki", Example, cfg)
    assert len(articles) == 3 and sorted(a.depth for a in articles) == [0, 0, 1]
    assert len(examples) == 6 and result.counts["examples"] == 6
    by_kind = {}
    for ex in examples:
        fields = ex.field_values()
        by_kind.setdefault(fields["kind"], []).append(ex)
        assert ex.group == fields["article_id"] and ex.doc_ids == ["d1"]
    python = next(e for e in by_kind["lead"] if e.field_values()["title"] == "Python")
    assert python.messages[0].content == "What is Python?"
    assert python.target == "Python is a programming language that supports classes and modules."
    article_ex = by_kind["article"][0]
    assert article_ex.messages[0].content.startswith("Write a short wiki article about ")
    assert "[[" not in article_ex.target and "[^" not in article_ex.target
    stats = result.stats
    assert stats["articles"] == 3 and stats["site"] == "wiki/index.html" and stats["depth"] == {"0": 2, "1": 1}
    assert 0 < stats["verified_share"] < 1 and stats["dropped_sentences"] >= 1 and stats["strategy"] == "span"
    assert (ws.root / "wiki" / "index.html").exists()
    assert all((ws.root / "wiki" / f"{a.article_id}.html").exists() for a in articles)


def test_bad_input_ends_with_a_reason():
    nodes, edges = graph()
    lost = KGNode(node_id="n-lost", name="Lost", type="other", chunk_ids=["nowhere"], mentions=9, degree=9)
    dangling = _edge("e9", "n-lost", "points to", "n-ghost", "CWI is a research institute in Amsterdam.")
    articles, errors = spider([lost, *nodes], [*edges, dangling], [CHUNK], WikiConfig(seed_articles=2, min_sentences=1))
    assert {"unit_id": "n-lost", "reason": "too_few_verified_sentences", "detail": "Lost"} in errors
    assert [a.node_id for a in articles][:1] == ["n-cwi"] and len(articles) == 4


def test_recipe_one_call_through_the_job_runner(tmp_path):
    reply = "CWI is a research institute in Amsterdam. [1]"
    generator = {"backend": "fake", "options": {"default_reply": reply}, "max_concurrency": 2}
    cfg, ws = kg_workspace(tmp_path, "one_call", generator)
    result = generate.run(cfg, ws, "wiki", progress=False)
    articles = {a.node_id: a for a in ws.read_rows("wiki_articles", WikiArticle, cfg)}
    assert result.stats["strategy"] == "one_call"
    # CWI's fact [1] is its lead sentence: the model's article is kept as written
    assert [s.text for s in articles["n-cwi"].sentences] == ["CWI is a research institute in Amsterdam."]
    # for the others fact [1] does not say it: the span article instead, recorded with the reason
    fallbacks = [e for e in result.errors if e["reason"] == "one_call_fallback"]
    assert len(fallbacks) == len(articles) - 1 == result.stats["one_call_fallbacks"] == 2
    assert all(len(articles[e["unit_id"]].sentences) > 1 for e in fallbacks)


def test_links_and_heading_trimming():
    r = KGNode(node_id="n-r", name="R", type="software")
    cls = KGNode(node_id="n-class", name="class", type="concept")
    linker = Linker([r, cls])
    text, ids = linker.link("Write to R-help@R-project.org about R classes and R.", own="")
    assert text == "Write to R-help@R-project.org about [[R]] [[class|classes]] and R." and ids == ["r", "class"]
    assert trim_headings("1\nPreface\nThis introduction to R is derived.") == "This introduction to R is derived."
    assert trim_headings("Intro\n\n## 9.2. Scopes\n\nBefore classes, scopes.") == "Before classes, scopes."
    assert trim_headings("1.2 Related software\nR is an implementation.") == "R is an implementation."
    prose = "It was written in 1990 by\nBill Venables and David Smith."
    assert trim_headings(prose) == prose  # a wrapped line of prose is not a heading
