"""The synthetic Mastodon account: real export and API shapes, replies that resolve, the voice, determinism, the demo
config, and the ceiling (exact AUC* against brute force, realised AUC against scikit-learn)."""

from __future__ import annotations

import itertools
import json
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from doctune.cli import app
from doctune.testing.synthetic_account import (
    ARCHIVE_NAME,
    LIKE_RATE,
    AccountSizes,
    best_possible_auc,
    generate_account,
    realised_auc,
)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path("/work/shared/corpus/federation_activitypub_fixtures.json")
API_STATUS_KEYS = {"id", "created_at", "in_reply_to_id", "in_reply_to_account_id", "sensitive", "spoiler_text",
                   "visibility", "language", "uri", "url", "content", "reblog", "account", "media_attachments",
                   "mentions", "tags", "emojis", "favourited", "reblogged", "bookmarked"}  # fmt: skip


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    out = tmp_path_factory.mktemp("account")
    summary = generate_account(out, seed=0)
    with zipfile.ZipFile(out / ARCHIVE_NAME) as zf:
        archive = {n: zf.read(n) for n in zf.namelist()}
    data = {n: json.loads(b) for n, b in archive.items() if n.endswith(".json")}
    feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    unseen = json.loads((out / "feed_unseen.json").read_text(encoding="utf-8"))
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    return summary, archive, data, feed, unseen, truth


def brute_force_auc_star(p: list[float]) -> float:
    num = den = 0.0
    for i, j in itertools.permutations(range(len(p)), 2):
        w = p[i] * (1 - p[j])
        den += w
        num += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    return num / den


def test_best_possible_auc_matches_brute_force_with_ties():
    rng = np.random.default_rng(3)
    for n in (2, 3, 7, 25):
        for _ in range(5):
            p = rng.choice([0.05, 0.2, 0.2, 0.5, 0.7, 0.9, 0.99], size=n).tolist()  # ties on purpose
            assert best_possible_auc(p) == pytest.approx(brute_force_auc_star(p), abs=1e-12)
            q = rng.random(n).tolist()
            assert best_possible_auc(q) == pytest.approx(brute_force_auc_star(q), abs=1e-12)
    assert best_possible_auc([0.3, 0.3, 0.3]) == pytest.approx(0.5)
    assert best_possible_auc([0.0, 1.0]) == pytest.approx(1.0)


def test_realised_auc_matches_sklearn():
    rng = np.random.default_rng(5)
    for n in (5, 40, 300):
        y = rng.random(n) < 0.3
        y[0], y[1] = True, False
        scores = np.round(rng.random(n), 1)  # many ties
        assert realised_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert np.isnan(realised_auc([True, True], [0.1, 0.2]))


def test_archive_has_the_export_files_in_the_real_shapes(account):
    _, archive, data, _, _, _ = account
    assert {"outbox.json", "likes.json", "bookmarks.json", "actor.json", "avatar.png"} <= set(archive)
    fixtures = json.loads(FIXTURES.read_text(encoding="utf-8"))
    outbox = data["outbox.json"]
    assert outbox["type"] == "OrderedCollection" and outbox["totalItems"] == len(outbox["orderedItems"])
    kinds = {a["type"] for a in outbox["orderedItems"]}
    assert kinds == {"Create", "Announce", "Delete"}
    shape = {"Create": fixtures["ACTIVITYPUB_POST"], "Announce": fixtures["ACTIVITYPUB_SHARE"],
             "Delete": fixtures["ACTIVITYPUB_RETRACTION"]}  # fmt: skip
    not_in_export = {"@context", "signature", "instrument"}  # an export's activities carry neither
    for activity in outbox["orderedItems"]:
        ref = shape[activity["type"]]
        assert set(ref) - not_in_export <= set(activity), activity["id"]
        if activity["type"] == "Create":
            assert set(ref["object"]) <= set(activity["object"])
            assert activity["object"]["content"].startswith("<p>")
            for att in activity["object"]["attachment"]:
                assert att["url"] in archive and att["name"]  # media in the zip, with alt text
        elif activity["type"] == "Announce":
            assert isinstance(activity["object"], str)
        else:
            assert set(activity["object"]) == set(ref["object"]) and activity["object"]["type"] == "Tombstone"
    for name in ("likes.json", "bookmarks.json"):
        assert data[name]["type"] == "OrderedCollection" and all(
            u.startswith("https://") for u in data[name]["orderedItems"]
        )
    assert set(fixtures["ACTIVITYPUB_PROFILE"]) - {"publicKey", "image"} <= set(data["actor.json"])


def test_feed_is_mastodon_api_status_json(account):
    _, _, _, feed, unseen, _ = account
    for status in feed + unseen:
        assert set(status) >= API_STATUS_KEYS and status["content"].startswith("<p>")
        assert status["favourited"] is False  # saved before I acted on it: labels only in likes.json
    assert [s["created_at"] for s in feed] == sorted((s["created_at"] for s in feed), reverse=True)
    assert max(s["created_at"] for s in feed) < min(s["created_at"] for s in unseen)
    ids = {s["id"] for s in feed}
    threaded = [s for s in feed if s["in_reply_to_id"]]
    assert threaded and all(s["in_reply_to_id"] in ids for s in threaded)
    assert {s["language"] for s in feed} == {"en", "de", "ja"}
    assert any(s["spoiler_text"] for s in feed) and any(m["description"] for s in feed for m in s["media_attachments"])


def test_replies_resolve_against_the_feed_and_the_special_cases_are_there(account):
    summary, _, data, feed, _, truth = account
    notes = [a["object"] for a in data["outbox.json"]["orderedItems"] if a["type"] == "Create"]
    feed_uris = {s["uri"] for s in feed}
    replies = [n for n in notes if n["inReplyTo"]]
    unknown = [n for n in replies if n["inReplyTo"] not in feed_uris]
    assert len(replies) == summary.counts["replies"] == 90
    assert len(unknown) == summary.counts["replies_unknown_parent"] > 0
    assert all(n["inReplyTo"] == n["inReplyToAtomUri"] for n in replies)
    assert sum(bool(n["summary"]) for n in notes) == summary.counts["content_warnings"] > 0
    assert sum(bool(n["attachment"]) for n in notes) == summary.counts["with_media"] > 0
    non_latin = [n for n in notes if any(0x3040 <= ord(c) <= 0x9FFF for c in n["content"])]
    assert len(non_latin) == summary.counts["non_latin"] > 0
    boosts = [a for a in data["outbox.json"]["orderedItems"] if a["type"] == "Announce"]
    assert len(boosts) == 25 and sum(a["object"] not in feed_uris for a in boosts) == summary.counts["boosts_unknown"]
    published = sorted(a["published"] for a in data["outbox.json"]["orderedItems"])
    assert published[0] < "2024-02-01" and published[-1] > "2024-11-15"  # spread over the year: a time split works
    assert truth["counts"] == summary.counts


def test_my_voice_is_recognisable(account):
    _, _, data, feed, _, _ = account
    notes = [a["object"] for a in data["outbox.json"]["orderedItems"] if a["type"] == "Create"]
    mine = [n["content"].split("</span></a></span>")[-1] for n in notes]
    lower = sum(t == t.lower() for t in mine) / len(mine)
    theirs = sum(s["content"] == s["content"].lower() for s in feed) / len(feed)
    assert lower > 0.8 and theirs < 0.2
    emoji = sum(any(e in t for e in "🌱✨🎛🚲🍞") for t in mine) / len(mine)
    assert emoji > 0.4 and not any(any(e in s["content"] for e in "🌱✨🎛🚲🍞") for s in feed)


def test_labels_and_ceiling_are_consistent_with_the_files(account):
    summary, _, data, feed, unseen, truth = account
    rows = truth["feed"]
    assert len(rows) == len(feed) + len(unseen)
    likes = set(data["likes.json"]["orderedItems"])
    seen_rows = [r for r in rows if r["seen"]]
    assert {r["uri"] for r in seen_rows if r["liked"]} == likes & {s["uri"] for s in feed}
    assert len(likes) - len(likes & {s["uri"] for s in feed}) == summary.counts["likes_unknown"] > 0
    assert np.mean([r["p"] for r in rows]) == pytest.approx(LIKE_RATE, abs=1e-6)  # the threshold's calibration
    p = [r["p"] for r in seen_rows]
    y = [r["liked"] for r in seen_rows]
    c = truth["ceilings"]["seen"]
    assert c["auc_star"] == pytest.approx(best_possible_auc(p)) == pytest.approx(summary.ceilings["seen"].auc_star)
    assert c["auc_realised"] == pytest.approx(roc_auc_score(y, p))
    assert 0.7 < c["auc_star"] < 0.95  # noisy but learnable
    assert set(truth["ceilings"]) == {"seen", "test", "unseen"}


def test_same_seed_same_bytes_other_seed_other_account(account, tmp_path):
    summary = account[0]
    again = generate_account(tmp_path / "again", seed=0)
    for name, path in summary.files.items():
        assert again.files[name].read_bytes() == path.read_bytes(), name
    other = generate_account(tmp_path / "other", seed=1, sizes=AccountSizes(feed=60, unseen=10, posts=20, replies=12))
    assert other.files["feed"].read_bytes() != summary.files["feed"].read_bytes()
    assert other.counts["replies"] == 12 and other.counts["feed_seen"] == 60


def test_demo_config_is_valid_and_points_at_the_generated_files():
    result = CliRunner().invoke(app, ["validate", str(REPO / "examples" / "personal.yaml")])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    text = (REPO / "examples" / "personal.yaml").read_text(encoding="utf-8")
    assert f"examples/personal/{ARCHIVE_NAME}" in text and "examples/personal/feed.json" in text
    assert "recipes: [replies, likes]" in text


def test_the_social_importer_reads_the_account_with_the_expected_counts(account, tmp_path):
    from doctune.config import DoctuneConfig
    from doctune.records import Post
    from doctune.stages import social_ingest
    from doctune.workspace import Workspace

    summary = account[0]
    config = DoctuneConfig(workspace=str(tmp_path / "ws"), social={"feeds": [str(summary.files["feed"])]})
    workspace = Workspace(config.workspace)
    result = social_ingest.run(config, workspace, paths=[str(summary.files["archive"])], progress=False)
    c = summary.counts
    rows = workspace.read_rows("posts", Post, config)
    kinds = Counter(p.kind for p in rows)
    assert kinds["post"] == c["posts"] and kinds["reply"] == c["replies"] and kinds["boost"] == c["boosts"]
    assert kinds["like"] == c["likes"] and kinds["bookmark"] == c["bookmarks"]
    assert kinds["feed"] == c["feed_seen"] + c["replies_unknown_parent"]  # unknown parents kept as unresolved rows
    assert result.stats["errors_by_reason"] == {"deleted_post": c["deleted"]}
    assert result.stats["unresolved_parents"] == c["replies_unknown_parent"]
    assert result.stats["unresolved_likes"] == c["likes_unknown"]
    assert result.stats["unresolved_boosts"] == c["boosts_unknown"]
    by_id = {p.post_id: p for p in rows}
    replies = [p for p in rows if p.kind == "reply"]
    resolved = [p for p in replies if by_id[p.in_reply_to].resolved]
    assert len(resolved) == c["replies"] - c["replies_unknown_parent"]
    assert sum(p.language == "ja" for p in rows if p.kind in ("post", "reply")) == c["non_latin"]
    assert sum(bool(p.content_warning) for p in rows if p.kind in ("post", "reply")) == c["content_warnings"]
    assert all("<" not in p.text for p in rows)  # HTML converted
