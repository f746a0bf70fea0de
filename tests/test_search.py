"""Personal search (``doctune search``): FTS5/BM25 index over posts, embeddings, their fusion, filters and the CLI."""

from __future__ import annotations

import json
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import DoctuneConfig
from doctune.records import Post
from doctune.search import parse_query, rrf
from doctune.search.query import mark_snippet
from doctune.stages.search import build_index, close_searchers, index_root, search
from doctune.workspace import StaleArtifactError, Workspace

runner = CliRunner()


def post(pid: str, text: str, **kw) -> Post:
    fields = {
        "post_id": f"mastodon:{pid}",
        "platform": "mastodon",
        "kind": "post",
        "author": "@me@example.social",
        "is_mine": True,
        "created_at": "2024-01-01T10:00:00Z",
        "text": text,
        "resolved": True,
        "url": f"https://example.social/@me/{pid}",
        "source_file": "outbox.json",
        "locator": f"orderedItems[{pid}]",
    }
    fields.update(kw)
    return Post(**fields)


def make_ws(root, posts: list[Post], **config) -> tuple[DoctuneConfig, Workspace]:
    cfg = DoctuneConfig.model_validate({"workspace": str(root), **config})
    ws = Workspace(root)
    ws.start_run("ingest", cfg).write_artifact("posts", posts, Post)
    return cfg, ws


KEYWORD_ONLY = {"search": {"embed": False}}
FAKE_EMBEDDER = {"models": {"embedder": {"backend": "fake"}}}


@pytest.fixture(autouse=True)
def _close_searchers():
    yield
    close_searchers()


MIXED = [
    post("cafe", "Tried the new café near the station: excellent croissants."),
    post("ja", "東京タワーに行った。夜景がきれいだった。"),
    post("ja2", "京都の紅葉はとても美しい"),
    post("ar", "ذهبت إلى السوق اليوم واشتريت الخبز"),
    post("de", "Über die Brücke zur Universität gefahren."),
    post("alt", "Photo from the hike", media_alt=["A snowy mountain ridge under a blue sky"]),
    post("cw", "spoilers below, you have been warned", content_warning="Dune ending"),
    post("other", "Someone else's post about bread", author="@baker@bread.town", is_mine=False, kind="feed"),
    post("like", "", resolved=False, kind="like", target="mastodon:x", url=""),
    post("leak", "Debugging a memory leak in the scheduler all afternoon."),
]


def ids(hits) -> list[str]:
    return [h.post_id.split(":", 1)[1] for h in hits]


def test_non_latin_accents_alt_text_and_content_warnings(tmp_path):
    cfg, ws = make_ws(tmp_path, MIXED, **KEYWORD_ONLY)
    assert ids(search(cfg, ws, "cafe")) == ["cafe"]  # remove_diacritics 2
    assert ids(search(cfg, ws, "CAFÉ")) == ["cafe"]
    assert ids(search(cfg, ws, "uber brucke")) == ["de"]
    assert ids(search(cfg, ws, "السوق")) == ["ar"]
    assert ids(search(cfg, ws, "東京タワー")) == ["ja"]  # trigram table: a run of 3+ characters inside a sentence
    assert ids(search(cfg, ws, "東京")) == ["ja"]  # 2 characters: scanned, and 京都 is not 東京
    assert ids(search(cfg, ws, "紅葉")) == ["ja2"]
    hit = search(cfg, ws, "mountain")[0]
    assert (hit.post_id, hit.field) == ("mastodon:alt", "alt") and "**mountain**" in hit.snippet
    hit = search(cfg, ws, "dune")[0]
    assert (hit.post_id, hit.field) == ("mastodon:cw", "content_warning")
    assert ids(search(cfg, ws, "baker")) == ["other"]  # the author is indexed
    assert search(cfg, ws, "東京")[0].snippet.startswith("**東京**")
    assert ids(search(cfg, ws, "sched*")) == ["leak"]
    assert ids(search(cfg, ws, '"leak memory"')) == []  # a phrase keeps its order
    assert ids(search(cfg, ws, '"memory leak"')) == ["leak"]


FTS_SYNTAX = [
    '"',
    '""',
    '"unterminated phrase',
    "AND",
    "OR NOT",
    "memory AND",
    "(",
    ")",
    "(memory OR leak",
    "*",
    "mem*",
    "-leak",
    "NEAR(memory leak)",
    "text:memory",
    "^memory",
    "{text alt}:memory",
    "memory + leak",
    "it's",
    'a"b',
    "%_\\",
    "東",
    "東京*",
    "",
    "   ",
    "\x00",
]


@pytest.mark.parametrize("query", FTS_SYNTAX)
def test_fts_syntax_is_only_text(tmp_path, query):
    cfg, ws = make_ws(tmp_path, MIXED, **KEYWORD_ONLY)
    hits = search(cfg, ws, query)  # never raises
    if "memory" in query and ":" not in query:  # x:memory is the phrase "x memory"
        assert "mastodon:leak" in [h.post_id for h in hits], query


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40))
def test_any_query_never_errors(tmp_path_factory, query):
    root = tmp_path_factory.getbasetemp() / "any-query"
    if not (root / "manifest.json").exists():
        make_ws(root, MIXED, **KEYWORD_ONLY)
    cfg = DoctuneConfig.model_validate({"workspace": str(root), **KEYWORD_ONLY})
    search(cfg, Workspace(root), query)
    parse_query(query).fts("OR")


def test_filters_kind_dates_and_owner(tmp_path):
    posts = [
        post("jan", "bread recipe", created_at="2024-01-15T08:00:00Z"),
        post("feb", "bread again", created_at="2024-02-29T23:59:59Z", kind="reply"),
        post("mar", "more bread", created_at="2024-03-01T00:00:00Z", kind="boost"),
        post("feed", "bread from someone", created_at="2024-02-10T12:00:00Z", kind="feed", is_mine=False),
        post("nodate", "bread of unknown age", created_at=""),
    ]
    cfg, ws = make_ws(tmp_path / "my posts ?#%20", posts, **KEYWORD_ONLY)  # any folder name
    assert set(ids(search(cfg, ws, "bread"))) == {"jan", "feb", "mar", "feed", "nodate"}
    assert set(ids(search(cfg, ws, "bread", kind="reply"))) == {"feb"}
    assert set(ids(search(cfg, ws, "bread", kind=["reply", "boost"]))) == {"feb", "mar"}
    assert set(ids(search(cfg, ws, "bread", kind="reply,boost"))) == {"feb", "mar"}
    assert set(ids(search(cfg, ws, "bread", since="2024-02-01", until="2024-02-29"))) == {"feb", "feed"}  # whole day
    assert set(ids(search(cfg, ws, "bread", since="2024-03-01"))) == {"mar"}
    assert set(ids(search(cfg, ws, "bread", until="2024-01-15T08:00:00Z"))) == {"jan"}  # inclusive to the second
    assert set(ids(search(cfg, ws, "bread", mine=False))) == {"feed"}
    assert len(search(cfg, ws, "bread", limit=2)) == 2
    with pytest.raises(ValueError, match="unknown kind 'tweet'"):
        search(cfg, ws, "bread", kind="tweet")
    with pytest.raises(ValueError, match="'yesterday' is not a date"):
        search(cfg, ws, "bread", since="yesterday")


def test_index_rebuilt_only_when_posts_change(tmp_path):
    posts = MIXED[:5]
    cfg, ws = make_ws(tmp_path, posts, **FAKE_EMBEDDER)
    first = build_index(cfg, ws)
    assert first.stats["rebuilt"] and first.counts["embedded now"] == 5 and first.counts["posts"] == 5
    db = index_root(cfg, ws) / "search.sqlite"
    stamp = db.stat().st_mtime_ns
    second = build_index(cfg, ws)
    assert not second.stats["rebuilt"] and second.counts["embedded now"] == 0
    assert db.stat().st_mtime_ns == stamp
    assert ids(search(cfg, ws, "cafe")) == ["cafe"]

    # a new import adds a post: the index is rebuilt, only the new post is embedded, the old vectors are removed
    ws.start_run("ingest", cfg).write_artifact("posts", [*posts, MIXED[5]], Post)
    assert ids(search(cfg, ws, "mountain"))[0] == "alt"  # search notices the change and rebuilds first
    third = build_index(cfg, ws)
    assert not third.stats["rebuilt"] and third.counts["posts"] == 6
    assert len(list(index_root(cfg, ws).glob("vectors-*.npy"))) == 1
    ws.start_run("ingest", cfg).write_artifact("posts", [*posts, MIXED[5], MIXED[6]], Post)
    assert build_index(cfg, ws).counts["embedded now"] == 1


def test_unreachable_embedder_is_reported_and_keyword_search_goes_on(tmp_path):
    with socket.socket() as s:  # a local port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = {"backend": "openai", "model": "emb", "base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 0}
    cfg, ws = make_ws(tmp_path, MIXED, models={"embedder": spec})
    result = build_index(cfg, ws)
    assert result.counts["posts"] == len(MIXED)
    assert [e["unit_id"] for e in result.errors] == ["embeddings"]
    assert "keyword only" in result.errors[0]["reason"] and str(port) not in result.errors[0]["reason"]
    assert ids(search(cfg, ws, "cafe")) == ["cafe"]


def test_missing_posts_is_one_clear_error(tmp_path):
    cfg = DoctuneConfig.model_validate({"workspace": str(tmp_path)})
    with pytest.raises(StaleArtifactError, match="artifact 'posts' is missing"):
        search(cfg, Workspace(tmp_path), "x")


def test_rrf_and_snippet():
    fused = rrf([1, 2, 3], [3, 4], rrf_k=60)
    assert [f[0] for f in fused] == [3, 1, 2, 4]  # found by both first
    assert fused[0][2:] == (3, 1)
    assert [f[0] for f in rrf([1, 2], [2, 1], rrf_k=60, keyword_weight=2.0)] == [1, 2]
    text = "Le Café de Flore: the cafe is cafeteria-like; " + "x " * 200 + "café again"
    snip = mark_snippet(text, parse_query("cafe").marks(), 60)
    assert snip.startswith("Le **Café** de Flore: the **cafe** is cafeteria") and snip.endswith("…")
    assert "**cafeteria" in mark_snippet(text, parse_query("cafe*").marks(), 60)
    late = mark_snippet("y " * 300 + "the memory leak", parse_query("leak").marks(), 40)
    assert late.startswith("…") and "**leak**" in late


# a small labelled set: "kitten vaccination" shares no word with the posts about it (only embeddings find them);
# "ZX-7731 firmware" is one exact code among near-identical codes (embeddings rank the wrong ones first)
LABELLED_CORPUS = {
    "cat": "My cat knocked the coffee mug off the desk again this morning.",
    "fw": "Weekend: painted the fence, visited mum, and finally got the ZX-7731 firmware onto the attic router; then "
    "pizza.",
    "rain": "Rain all weekend, so I stayed in and baked bread.",
    "train": "The train to Lyon was late by forty minutes.",
    "novel": "Reading a long novel about sailors in the nineteenth century.",
    "election": "Election results are coming in tonight across the country.",
    "bike": "New tyres on the bicycle make the commute much smoother.",
    "cafe": "Tried the new café near the station: excellent croissants.",
    "leak": "Debugging a memory leak in the scheduler all afternoon.",
    "garden": "The garden tomatoes are finally ripe.",
    "football": "Watched the football final with friends, what a match.",
    "dog": "Walked the neighbour's dog in the park before work.",
    "router": "Our router update breaks IPv6 for some users.",
    "birds": "A heron stood in the river for an hour, perfectly still.",
    "puppy": "Puppies at the shelter need foster homes this winter.",
    "vet": "Took the hamster to the vet, he is fine.",
    "laptop": "My laptop fan is loud whenever the build runs.",
    "concert": "The concert last night was too loud but wonderful.",
    "soup": "Made a big pot of lentil soup for the week.",
    "code": "Code review took the whole morning today.",
    "form": "Long day: meetings, groceries, laundry, a call with mum, and somewhere in between I finally sent form "
    "4417B. Then dinner and a film.",
    "inv1": "Paid the invoice for the plumber today.",
    "inv2": "Another invoice from the electricity company, higher than last month.",
    "inv3": "Invoices for the freelance work are all sent.",
    "shots": "Took my young cat for her first shots, she was brave.",
    "fish": "The aquarium fish seem happier with the new filter.",
    "zx1": "ZX-7713 firmware is out.",
    "zx2": "ZX-7137 firmware changelog, nothing exciting.",
    "zx3": "Router firmware ZX-7371 bricked my unit.",
    "cat2": "The cat sleeps on the radiator all day in winter.",
    "cat3": "Adopted two tiny cats from the shelter, they hide under the sofa.",
    "vet2": "The vet says the cat needs her booster jab next month.",
    "horse": "Riding lessons again: the horse knows more than I do.",
}
LABELS = {"kitten vaccination": {"shots", "vet2"}, "ZX-7731 firmware": {"fw"}}


@pytest.mark.slow
def test_hybrid_beats_keyword_and_embedding_alone(tmp_path):
    """Recall at 3 on the labelled set, with the real all-MiniLM-L6-v2 (offline, from its package)."""
    cfg, ws = make_ws(tmp_path, [post(k, t) for k, t in LABELLED_CORPUS.items()])

    def recall_at_3(**mode) -> float:
        found = [len(rel & set(ids(search(cfg, ws, q, limit=3, **mode)))) / len(rel) for q, rel in LABELS.items()]
        return sum(found) / len(found)

    keyword, embedding, hybrid = recall_at_3(keyword_only=True), recall_at_3(embedding_only=True), recall_at_3()
    assert (keyword, embedding, hybrid) == (0.5, 0.5, 1.0)

    # one query holding both needs: the exact code and the meaning; only the fusion has both kinds in its top 3
    query = "kitten vaccination ZX-7731"
    assert "fw" in ids(search(cfg, ws, query, limit=3, keyword_only=True))
    assert not {"shots", "vet2"} & set(ids(search(cfg, ws, query, limit=3, keyword_only=True)))
    assert "fw" not in ids(search(cfg, ws, query, limit=3, embedding_only=True))
    top = search(cfg, ws, query, limit=3)
    assert "fw" in ids(top) and {"shots", "vet2"} & set(ids(top))
    assert {h.post_id: h.found_by for h in top}["mastodon:fw"][0] == "keyword"
    assert any(h.found_by == ["embedding"] for h in top)
    # a rerun embeds nothing: the vectors are on disk, keyed by the posts' sha256
    assert build_index(cfg, ws).counts["embedded now"] == 0


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def test_cli_table_json_and_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no doctune.yaml: the defaults the posts were written with
    ws_dir = tmp_path / "work"
    make_ws(ws_dir, MIXED)
    base = ["--workspace", str(ws_dir), "search"]
    res = cli(*base, "cafe", "--keyword-only")
    assert res.exit_code == 0, res.output
    assert "https://example.social/@me/cafe" in res.output and "2024-01-01 10:00" in res.output
    res = cli(*base, "bread", "--json", "--set", "search.embed=false", "--others")
    assert res.exit_code == 0, res.output
    hits = json.loads(res.output)["hits"]
    assert [h["post_id"] for h in hits] == ["mastodon:other"] and hits[0]["found_by"] == ["keyword"]
    res = cli(*base, "(bread AND", "--kind", "feed", "--since", "2023-12-31", "--keyword-only")
    assert res.exit_code == 0 and "bread" in res.output
    res = cli(*base, "nothing-like-this-anywhere", "--keyword-only")
    assert res.exit_code == 0 and "no post matches" in res.output
    for bad in (["--kind", "tweet"], ["--since", "last week"]):
        res = cli(*base, "bread", *bad)
        assert res.exit_code == 1
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: search: "), res.output
    res = cli("--workspace", str(tmp_path / "empty"), "search", "bread")
    assert res.exit_code == 1 and "artifact 'posts' is missing" in res.output
    assert not os.path.exists(tmp_path / "empty" / "index")
