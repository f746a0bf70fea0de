"""Mastodon and Twitter archive importers -> the ``posts`` artifact (fixtures in the real formats under
tests/data/social; network resolution only against a local fake status API)."""

from __future__ import annotations

import json
import shutil
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import DoctuneConfig
from doctune.config_social import SocialConfig
from doctune.ingest.social.archive import read_ytd
from doctune.ingest.social.detect import detect_archive
from doctune.ingest.social.html_text import html_to_text
from doctune.ingest.social.mastodon import import_mastodon
from doctune.ingest.social.scrub import scrub_text
from doctune.ingest.social.twitter import import_twitter
from doctune.records import Post
from doctune.stages import social_ingest
from doctune.workspace import Workspace

DATA = Path(__file__).parent / "data" / "social"
MASTODON = DATA / "mastodon"
TWITTER = DATA / "twitter"
FEED = DATA / "feeds" / "home_timeline.json"
SHARED = Path("/work/shared/corpus/federation_activitypub_fixtures.json")  # ../shared of the checkout, as elsewhere
ME = "mastodon:https://mastodon.social/users/jaywink/statuses/"


def zip_folder(folder: Path, out: Path, top: str = "") -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, top + f.relative_to(folder).as_posix())
    return out


def by_id(posts: list[Post]) -> dict[str, Post]:
    return {p.post_id: p for p in posts}


def ingest(tmp_path: Path, paths: list[Path], **social) -> tuple[list[Post], dict]:
    config = DoctuneConfig(workspace=str(tmp_path / "ws"), social=SocialConfig(**social))
    ws = Workspace(config.workspace)
    social_ingest.run(config, ws, paths=[str(p) for p in paths], progress=False)
    return ws.read_rows("posts", Post, config), ws.manifest()["posts"]


def test_html_to_text_paragraphs_links_mentions_entities() -> None:
    html = (
        '<p>Hi <span class="h-card"><a href="https://x.example/@bob" class="u-url mention">@<span>bob</span></a>'
        '</span> &amp; all<br>see <a href="https://example.org/a/very/long/path"><span class="invisible">https://'
        '</span><span class="ellipsis">example.org/a/very</span><span class="invisible">/long/path</span></a></p>'
        '<p>مرحبا <a href="https://example.org/x">…</a></p>'
    )
    assert html_to_text(html) == (
        "Hi @bob & all\nsee https://example.org/a/very/long/path\n\nمرحبا https://example.org/x"
    )


def test_mastodon_folder_posts_replies_boosts_errors() -> None:
    result = import_mastodon(MASTODON, SocialConfig())
    posts = by_id(result.posts)
    first = posts[ME + "1001"]
    assert first.kind == "post" and first.is_mine and first.author == "jaywink@mastodon.social"
    assert first.text.startswith("Reading about #python packaging & wheels: https://packaging.python.org/en/latest/")
    assert "@astdenis!\nSecond line <3" in first.text
    ja = posts[ME + "1002"]
    assert ja.text == "今日は東京で雨が降っています。傘を忘れた！" and ja.language == "ja"
    assert ja.content_warning == "天気の話" and ja.media_alt == ["雨の渋谷交差点の写真"]
    assert posts[ME + "1008"].text.startswith("مرحبا بالعالم") and posts[ME + "1008"].language == "ar"
    reply = posts[ME + "1003"]
    assert reply.kind == "reply" and reply.in_reply_to == "mastodon:https://remote.example/users/bob/statuses/111"
    assert posts[ME + "1010"].created_at == "2023-12-31T22:59:59Z"  # converted to UTC
    boost = posts[ME + "1006/activity"]
    assert boost.kind == "boost" and not boost.resolved
    assert boost.target == "mastodon:https://remote.example/users/bob/statuses/333"
    reasons = {e.source_path: e.reason for e in result.errors}
    assert reasons["outbox.json orderedItems[6]"].startswith("deleted_post: Tombstone")
    assert reasons["outbox.json orderedItems[8]"] == "unknown_activity_type: 'Follow'"
    assert reasons["outbox.json orderedItems[10]"].startswith("malformed_item")
    assert reasons["bookmarks.json orderedItems[1]"].startswith("malformed_item")
    assert ME + "1009" not in posts and result.excluded["direct_messages"] == 1  # a DM, left out
    assert ME + "1009" in by_id(import_mastodon(MASTODON, SocialConfig(include_direct_messages=True)).posts)
    assert {p.kind for p in result.posts} == {"post", "reply", "boost", "like", "bookmark"}


def test_mastodon_zip_resolves_from_archive_and_feed(tmp_path: Path) -> None:
    archive = zip_folder(MASTODON, tmp_path / "archive-20240101.zip", top="archive/")  # one extra folder level
    assert detect_archive(archive) == "mastodon"
    posts, rec = ingest(tmp_path, [archive], feeds=[str(FEED)])
    rows = by_id(posts)
    parent = rows["mastodon:https://remote.example/users/bob/statuses/111"]
    assert parent.kind == "feed" and parent.resolved and parent.text == "Tabs or spaces? I say tabs."
    assert parent.author == "bob@remote.example" and not parent.is_mine
    boost = rows[ME + "1006/activity"]
    assert (
        boost.resolved
        and boost.text == "A release worth boosting: v2.0 is out!"
        and boost.author == "bob@remote.example"
    )
    like = rows["mastodon:like:https://remote.example/users/dave/statuses/444"]
    assert like.resolved and like.text == "Look at this sunset." and like.media_alt == ["Orange sunset over the sea"]
    assert like.created_at == "2023-01-06T08:00:00Z" and like.content_warning == "pretty sky"
    own_like = rows["mastodon:like:" + ME.removeprefix("mastodon:") + "1008"]
    assert own_like.resolved and own_like.text.startswith("مرحبا")  # liked my own post: from the archive
    unknown_like = rows["mastodon:like:https://other.example/users/carol/statuses/555"]
    assert not unknown_like.resolved and unknown_like.text == ""
    unknown_parent = rows["mastodon:https://other.example/users/carol/statuses/222"]
    assert not unknown_parent.resolved and unknown_parent.kind == "feed"
    feed_reply = rows["mastodon:https://remote.example/users/erin/statuses/999"]
    assert feed_reply.in_reply_to == "mastodon:https://remote.example/users/bob/statuses/111"
    assert len(posts) == len(rows)  # one row per post_id
    stats = rec.stats
    assert stats["unresolved_parents"] == 1 and stats["unresolved_likes"] == 1
    assert stats["resolved_from"] == {"feeds": 3, "archive": 1}
    assert stats["errors_by_reason"]["deleted_post"] == 1 and stats["excluded"] == {"direct_messages": 1}
    assert stats["per_file"]["outbox.json"] == 9 and stats["per_file"]["home_timeline.json"] == 4
    assert any(e["source_path"] == "outbox.json orderedItems[8]" for e in rec.errors)


def test_truncated_outbox_keeps_what_was_read(tmp_path: Path) -> None:
    folder = tmp_path / "cut"
    shutil.copytree(MASTODON, folder)
    text = (MASTODON / "outbox.json").read_text(encoding="utf-8")
    cut = text.index('"id": "https://mastodon.social/users/jaywink/statuses/1004/activity"') + 40
    (folder / "outbox.json").write_text(text[:cut], encoding="utf-8")
    result = import_mastodon(folder, SocialConfig())
    assert {p.post_id for p in result.posts if p.source_file == "outbox.json"} == {
        ME + n for n in ("1001", "1002", "1003")
    }
    truncated = [e for e in result.errors if e.reason.startswith("truncated_file")]
    assert (
        len(truncated) == 1
        and truncated[0].source_path == "outbox.json"
        and "3 items before kept" in truncated[0].reason
    )
    # a file cut anywhere never raises
    for n in range(0, len(text), 997):
        (folder / "outbox.json").write_text(text[:n], encoding="utf-8")
        import_mastodon(folder, SocialConfig())
    assert read_ytd('window.YTD.tweets.part0 = [ {"tweet": {}}, {"tw').problem.startswith("item 1: truncated")


def test_shared_activitypub_payloads_in_an_outbox(tmp_path: Path) -> None:
    shared = json.loads(SHARED.read_text(encoding="utf-8"))
    folder = tmp_path / "mastodon"
    shutil.copytree(MASTODON, folder)
    outbox = json.loads((folder / "outbox.json").read_text(encoding="utf-8"))
    names = ["ACTIVITYPUB_POST_IMAGES", "ACTIVITYPUB_POST_WITH_MENTIONS", "ACTIVITYPUB_SHARE", "ACTIVITYPUB_COMMENT"]
    names += ["ACTIVITYPUB_RETRACTION", "ACTIVITYPUB_FOLLOW", "ACTIVITYPUB_PROFILE"]
    outbox["orderedItems"] = [shared[n] for n in names]
    (folder / "outbox.json").write_text(json.dumps(outbox), encoding="utf-8")
    result = import_mastodon(folder, SocialConfig())
    rows = by_id(result.posts)
    images = rows[ME + "102611770245850345"]
    assert images.text == "image test" and images.media_alt == [] and images.language == "en"
    assert rows[ME + "102750454691863505"].text == "@jaywink need a mention payload - here!"
    share = rows[ME + "102560701449465612/activity"]
    assert share.kind == "boost" and share.target.endswith("/users/Gargron/statuses/102559779793316012")
    comment = rows["mastodon:https://diaspodon.fr/users/jaywink/statuses/102356911717767237"]
    assert comment.kind == "reply" and comment.in_reply_to.startswith("mastodon:https://dev.jasonrobinson.me/")
    reasons = sorted(e.reason.split(":")[0] for e in result.errors if e.source_path.startswith("outbox.json"))
    assert reasons == ["deleted_post", "unknown_activity_type", "unknown_activity_type"]


def test_twitter_folder_and_zip(tmp_path: Path) -> None:
    result = import_twitter(TWITTER, SocialConfig())
    rows = by_id(result.posts)
    first = rows["twitter:1500000000000000001"]
    assert first.text == "Reading about packaging & wheels https://packaging.python.org/en/latest/ #python"
    assert first.created_at == "2018-10-10T20:19:24Z" and first.author == "ada" and first.kind == "post"
    assert first.url == "https://twitter.com/ada/status/1500000000000000001"
    reply = rows["twitter:1500000000000000002"]
    assert reply.kind == "reply" and reply.in_reply_to == "twitter:1000"
    rt = rows["twitter:1500000000000000004"]
    assert rt.kind == "boost" and rt.author == "grace" and rt.text == "Compilers are just translators with opinions."
    long = rows["twitter:1600000000000000005"]
    assert (
        long.text.endswith("so importers must read note-tweet.js.") and "https://example.org/local-first" in long.text
    )
    ja = rows["twitter:1500000000000000006"]
    assert ja.text == "東京の雨の写真" and ja.media_alt == ["渋谷の交差点、雨の夜"] and ja.language == "ja"
    assert "twitter:1500000000000000007" in rows  # tweets-part1.js
    with_text, without = rows["twitter:like:1700000000000000001"], rows["twitter:like:1700000000000000002"]
    assert with_text.resolved and with_text.text.endswith("apples & vinegar.")
    assert not without.resolved and without.text == "" and without.target == "twitter:1700000000000000002"
    assert not [p for p in result.posts if "dm" in p.post_id] and result.excluded["direct_messages"] == 2
    assert [e.source_path for e in result.errors] == ["data/tweets.js [6].tweet"]
    dms = [p for p in import_twitter(TWITTER, SocialConfig(include_direct_messages=True)).posts if ":dm:" in p.post_id]
    assert {(p.kind, p.is_mine, p.text) for p in dms} == {
        ("feed", False, "private answer"),
        ("reply", True, "private hello from me"),
    }

    archive = zip_folder(TWITTER, tmp_path / "twitter-2024.zip")
    assert detect_archive(archive) == "twitter"
    posts, rec = ingest(tmp_path, [archive])
    rows = by_id(posts)
    assert rows["twitter:1500000000000000003"].conversation == "twitter:1500000000000000001"  # self thread
    assert not rows["twitter:1000"].resolved and rec.stats["unresolved_parents"] == 1
    assert rec.stats["unresolved_likes"] == 1 and rec.stats["kinds"]["like"] == 2


def test_cli_detects_archives_and_accepts_as(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    archive = zip_folder(MASTODON, tmp_path / "mastodon.zip")
    res = runner.invoke(app, ["--workspace", "w1", "ingest", str(archive)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "posts ->" in res.output and "unknown_activity_type" in res.output
    assert Workspace(tmp_path / "w1").manifest()["posts"].stats["archives"] == {"mastodon": 1}
    res = runner.invoke(app, ["--workspace", "w2", "ingest", "--as", "twitter", str(TWITTER)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert Workspace(tmp_path / "w2").manifest()["posts"].stats["archives"] == {"twitter": 1}
    assert Workspace(tmp_path / "w2").manifest()["posts"].stats["owners"] == ["@ada"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("not an archive")
    res = runner.invoke(app, ["--workspace", "w3", "ingest", "--as", "twitter", "notes"], catch_exceptions=False)
    assert res.exit_code == 1 and "no post could be read" in res.output


class _StatusAPI:
    """A local Mastodon status API: GET /api/v1/statuses/<id>; 222 exists, everything else is 404."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.paths.append(self.path)
                host = f"http://{self.headers['Host']}"
                if self.path == "/api/v1/statuses/222":
                    body = json.dumps(
                        {
                            "id": "222",
                            "uri": f"{host}/users/carol/statuses/222",
                            "url": f"{host}/@carol/222",
                            "created_at": "2023-01-05T08:00:00.000Z",
                            "content": "<p>Have you tried <strong>Zig</strong>?</p>",
                            "language": "en",
                            "spoiler_text": "",
                            "in_reply_to_id": None,
                            "account": {"acct": "carol", "url": f"{host}/@carol"},
                            "media_attachments": [],
                        }
                    ).encode()
                    self.send_response(200)
                else:
                    body = b'{"error": "Record not found"}'
                    self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_network_resolution_only_when_enabled(tmp_path: Path) -> None:
    api = _StatusAPI()
    try:
        folder = tmp_path / "mastodon"
        shutil.copytree(MASTODON, folder)
        for name in ("outbox.json", "likes.json"):
            text = (folder / name).read_text(encoding="utf-8").replace("https://other.example", api.host)
            (folder / name).write_text(text, encoding="utf-8")
        # the feed resolves everything at remote.example: only the fake server's posts are left to fetch
        posts, rec = ingest(tmp_path / "off", [folder], feeds=[str(FEED)])
        assert api.paths == [] and rec.stats["unresolved_parents"] == 1 and rec.stats["network"] == {}

        on = {"resolve_network": True, "network_requests_per_minute": 6000, "feeds": [str(FEED)]}
        posts, rec = ingest(tmp_path / "on", [folder], **on)
        assert sorted(api.paths) == ["/api/v1/statuses/222", "/api/v1/statuses/555"]
        parent = by_id(posts)[f"mastodon:{api.host}/users/carol/statuses/222"]
        assert (
            parent.resolved
            and parent.text == "Have you tried Zig?"
            and parent.author == "carol@127.0.0.1:" + api.host.split(":")[-1]
        )
        assert rec.stats["unresolved_parents"] == 0 and rec.stats["unresolved_likes"] == 1  # 555: 404
        assert rec.stats["resolved_from"]["network"] == 1
        assert rec.stats["network"]["requests"] == 2

        ingest(tmp_path / "on", [folder], **on)  # same workspace: answers (and the 404) come from the cache
        assert len(api.paths) == 2
    finally:
        api.close()


def test_scrub_text() -> None:
    text = "Mail ada@example.com or call +44 20 7946 0958, on 2023-01-05; cc @bob @bob@remote.example and me @ada"
    out = scrub_text(text, SocialConfig(scrub_handles=True), own_handles=["@ada"])
    assert out == "Mail [email] or call [phone], on 2023-01-05; cc @user @user and me @ada"
    assert scrub_text(text, SocialConfig(scrub_emails=False, scrub_phones=False)) == text


def test_doctune_run_imports_archives_named_in_the_config(tmp_path: Path) -> None:
    """An archive in ingest.paths is planned as `ingest posts` (not read as a document) and is current after."""
    from doctune.config import DoctuneConfig
    from doctune.stages import social_ingest
    from doctune.stages.pipeline import steps
    from doctune.workspace import Workspace

    archive = str(Path(__file__).parent / "data" / "social" / "mastodon")
    cfg = DoctuneConfig.model_validate(
        {"workspace": str(tmp_path), "ingest": {"paths": [archive]}, "recipes": ["likes"]}
    )
    names = [s.name for s in steps(cfg)]
    assert names[0] == "ingest posts" and "ingest" not in names, names
    ws = Workspace(tmp_path)
    assert not social_ingest.posts_current(cfg, ws)
    result = social_ingest.run(cfg, ws, progress=False)
    assert result.counts["posts"] > 0 and social_ingest.posts_current(cfg, ws)
