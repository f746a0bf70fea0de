"""`doctune rank FEED`: liked topics first, shown posts remembered, feed parsing and HTML escaping."""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml
from typer.testing import CliRunner

from doctune.cli import app
from doctune.rank.feed import read_feed
from doctune.rank.report import RankedPost, write_html
from test_personal_recipes import _text, personal_workspace


def _feed(path: Path) -> Path:
    rng = random.Random(7)
    items = []
    for i in range(12):
        topic = ["cats", "astronomy", "football"][i % 3]
        items.append(
            {
                "id": f"9{i}",
                "uri": f"https://example.social/users/u/statuses/9{i}",
                "created_at": f"2025-02-{i + 1:02d}T12:00:00.000Z",
                "content": f"<p>{_text(rng, topic)}</p>",
                "account": {"acct": f"u{i}@example.social"},
                "url": f"https://example.social/@u/9{i}",
                "language": "en",
            }
        )
    items.append(
        {
            "type": "Note",
            "id": "https://x.example/n/1",
            "content": "<p>kitten purr &lt;script&gt;</p>",
            "attributedTo": "https://x.example/users/a",
            "published": "2025-02-20T00:00:00Z",
        }
    )
    items.append({"no": "id here"})
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def _run(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), "-q", "rank", *args], catch_exceptions=False)


def test_feed_reader_reports_bad_items(tmp_path):
    posts, errors = read_feed(_feed(tmp_path / "feed.json"))
    assert len(posts) == 13 and len(errors) == 1 and errors[0]["source_path"] == "feed.json [13]"
    note = posts[-1]
    assert note.text == "kitten purr <script>" and note.author == "https://x.example/users/a"


def test_rank_liked_topics_first_and_remembers_shown(tmp_path):
    _, ws = personal_workspace(tmp_path / "ws")
    conf = tmp_path / "doctune.yaml"
    conf.write_text(yaml.safe_dump({"models": {"embedder": {"backend": "fake", "options": {"dims": 512}}}}))
    feed = _feed(tmp_path / "feed.json")
    html = tmp_path / "out.html"
    result = CliRunner().invoke(
        app,
        ["--workspace", str(ws.root), "-c", str(conf), "rank", str(feed), "--top", "4", "--html", str(html)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(next((ws.root / "reports" / "rank").glob("rank-*.json")).read_text())
    assert report["scorer"] == "baseline"
    top = [r["text"] for r in report["rows"]]
    assert len(top) == 4 and not any("referee" in t or "striker" in t for t in top[:3])
    assert "<script>" not in html.read_text()
    shown_first = {r["post_id"] for r in report["rows"]}

    again = CliRunner().invoke(
        app, ["--workspace", str(ws.root), "-c", str(conf), "rank", str(feed), "--top", "4"], catch_exceptions=False
    )
    assert again.exit_code == 0, again.output
    second = json.loads(sorted((ws.root / "reports" / "rank").glob("rank-*.json"))[-1].read_text())
    assert not shown_first & {r["post_id"] for r in second["rows"]}  # shown ones skipped

    third = CliRunner().invoke(
        app,
        ["--workspace", str(ws.root), "-c", str(conf), "rank", str(feed), "--include-shown", "--top", "20"],
        catch_exceptions=False,
    )
    assert third.exit_code == 0, third.output
    last = json.loads(sorted((ws.root / "reports" / "rank").glob("rank-*.json"))[-1].read_text())
    assert {r["post_id"] for r in last["rows"] if r["shown_before"]} >= shown_first


def test_html_escapes_post_text(tmp_path):
    row = RankedPost(
        1, "p", "<b>eve</b>", "2025", "<script>alert(1)</script> & co", "javascript:x", 0.9, 0.9, None, False
    )
    page = write_html([row], tmp_path / "r.html", "t <i>").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "&lt;b&gt;eve&lt;/b&gt;" in page and "javascript:" not in page


def test_rank_missing_feed_is_one_line_error(tmp_path):
    result = _run(tmp_path, str(tmp_path / "nope.json"))
    assert result.exit_code == 1 and "no such feed file" in result.output
