"""The personal recipes (replies, likes, voice) on a synthetic posts artifact, the time split and likes metrics."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from doctune.config import DoctuneConfig
from doctune.evaluate.likes import precision_at_k, roc_auc, score_report
from doctune.rank.baseline import example_post_text, like_label, train_like_baseline
from doctune.recipes import get_recipe
from doctune.recipes.time_split import split_by_time
from doctune.records import Post
from doctune.workspace import Workspace

TOPICS = {
    "cats": "cat kitten purr whiskers meow tabby litter paws fur nap",
    "astronomy": "telescope galaxy nebula planet orbit comet eclipse stars jupiter saturn",
    "football": "goal striker referee penalty match league stadium offside keeper midfield",
}
LIKED = ("cats", "astronomy")


def _date(i: int) -> str:
    return f"2024-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}T{10 + i // 336 % 10:02d}:00:00Z"


def _text(rng: random.Random, topic: str) -> str:
    return " ".join(rng.sample(TOPICS[topic].split(), 5)) + " " + rng.choice(["today", "again", "now", "wow"])


def synthetic_posts(n_feed: int = 150) -> list[Post]:
    """Feed posts on three topics; I like the cats and astronomy ones (most of them), never football."""
    rng = random.Random(1)
    posts: list[Post] = []

    def post(pid: str, kind: str, mine: bool, i: int, text: str, **kw) -> Post:
        return Post(
            post_id=f"mastodon:{pid}",
            platform="mastodon",
            kind=kind,
            author=kw.pop("author", "@me" if mine else f"@user{i % 7}"),
            is_mine=mine,
            created_at=_date(i),
            text=text,
            resolved=bool(text),
            source_file="outbox.json",
            **kw,
        )

    for i in range(n_feed):
        topic = list(TOPICS)[i % 3]
        text = _text(rng, topic)
        if topic in LIKED and rng.random() < 0.6:
            posts.append(post(f"like{i}", "like", True, i, text, target=f"mastodon:f{i}", author=f"@user{i % 7}"))
        else:
            posts.append(post(f"f{i}", "feed", False, i, text))
    for i in range(40):  # my posts and replies to threads
        posts.append(post(f"p{i}", "post", True, i * 3, f"my thoughts on {_text(rng, 'cats')} #cats"))
        posts.append(post(f"root{i}", "feed", False, i * 3, "what do you think " + _text(rng, "astronomy")))
        posts.append(
            post(
                f"mid{i}",
                "feed",
                False,
                i * 3 + 1,
                "and also " + _text(rng, "astronomy"),
                in_reply_to=f"mastodon:root{i}",
            )
        )
        posts.append(
            post(
                f"r{i}",
                "reply",
                True,
                i * 3 + 2,
                "i agree " + _text(rng, "astronomy"),
                in_reply_to=f"mastodon:mid{i}",
                conversation=f"c{i}",
            )
        )
    posts.append(post("orphan", "reply", True, 500, "replying to something unknown", in_reply_to="mastodon:gone"))
    posts.append(post("unres", "like", True, 501, "", target="mastodon:unknown"))
    return posts


def personal_workspace(root: Path, posts: list[Post] | None = None, **over) -> tuple[DoctuneConfig, Workspace]:
    cfg = DoctuneConfig.model_validate(
        {"workspace": str(root), "models": {"embedder": {"backend": "fake", "options": {"dims": 512}}}, **over}
    )
    ws = Workspace(root)
    ws.start_run("ingest", cfg).write_artifact("posts", posts or synthetic_posts(), Post)
    return cfg, ws


def _split(name: str, cfg: DoctuneConfig, ws: Workspace):
    recipe = get_recipe(name, cfg)
    built = recipe.build_examples(cfg, ws, {}, progress=False)
    return recipe, built, recipe.split_examples(built.examples, cfg)


def test_time_split_no_eval_older_than_train():
    items = [("a", "2024-01-03"), ("b", "2024-01-01"), ("c", "2024-01-05"), ("d", "2024-01-05"), ("e", "2024-01-02")]
    out = split_by_time(items, lambda x: x[1], 0.2)
    assert {x[0] for x in out["eval"]} == {"c", "d"}  # the tie at the cut goes to eval whole
    assert max(x[1] for x in out["train"]) < min(x[1] for x in out["eval"])


@pytest.mark.parametrize("name", ["replies", "likes", "voice"])
def test_recipes_split_in_time_and_pass_checks(tmp_path, name):
    cfg, ws = personal_workspace(tmp_path)
    recipe, built, split = _split(name, cfg, ws)
    assert split["train"] and split["eval"]
    dates = {s: [e.field_values()["created_at"] for e in split[s]] for s in split}
    assert max(dates["train"]) < min(dates["eval"])
    assert all(recipe.check(e) == [] for e in built.examples)


def test_replies_thread_and_unresolved_parent(tmp_path):
    cfg, ws = personal_workspace(tmp_path)
    _, built, _ = _split("replies", cfg, ws)
    assert {"unit_id": "mastodon:orphan", "reason": "parent not resolved"} in built.errors
    ex = next(e for e in built.examples if e.unit_id == "mastodon:r3")
    user = ex.messages[1].content
    assert user.index("what do you think") < user.index("and also")  # ancestors in order, oldest first
    assert ex.field_values()["thread_len"] == 2 and ex.field_values()["parent_id"] == "mastodon:mid3"
    assert ex.target.startswith("i agree")


def test_likes_negatives_come_from_feed_posts(tmp_path):
    posts = synthetic_posts()
    cfg, ws = personal_workspace(tmp_path, posts)
    _, built, split = _split("likes", cfg, ws)
    feed_ids = {p.post_id for p in posts if p.kind == "feed"}
    negatives = [e for e in built.examples if e.field_values()["label"] == "no"]
    assert negatives and all(e.field_values()["post_id"] in feed_ids for e in negatives)
    assert {"unit_id": "mastodon:unres", "reason": "liked post not resolved"} in built.errors
    for chosen in split.values():  # balanced per split
        labels = [e.field_values()["label"] for e in chosen]
        assert labels.count("no") <= labels.count("yes")


def test_auc_and_precision_at_k_match_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(labels * 0.5 + rng.random(200), 1)  # ties included
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    order = np.argsort(-scores, kind="stable")
    assert precision_at_k(scores, labels, 10) == pytest.approx(labels[order[:10]].mean())
    report = score_report(scores.tolist(), labels.tolist(), ks=(10,), n_resamples=300)
    auc = report["roc_auc"]
    assert auc["low"] <= auc["mean"] <= auc["high"] and auc["high"] - auc["low"] < 0.3
    assert report["precision_at_k"]["10"]["n"] == 10


def test_baseline_learns_the_preference(tmp_path):
    cfg, ws = personal_workspace(tmp_path, likes={"balance": "weighted"})
    model, examples = train_like_baseline(cfg, ws)
    held = [e for e in examples if e.split == "eval"]
    scores = model.predict([example_post_text(e) for e in held])
    assert roc_auc(scores, [like_label(e) for e in held]) > 0.8


def test_voice_topic_comes_from_the_post(tmp_path):
    cfg, ws = personal_workspace(tmp_path)
    _, built, _ = _split("voice", cfg, ws)
    ex = built.examples[0]
    topic = ex.field_values()["topic"]
    assert topic.startswith("cats") and all(t.strip() in ex.target.lower() for t in topic.split(","))


def test_zero_shot_yes_probabilities_of_the_embedded_model(tmp_path):
    from doctune.evaluate.likes import bench_yes_probabilities
    from doctune.evaluate.perplexity import ModelBench
    from doctune.llm.hf import embedded_safetensors_dir

    cfg, ws = personal_workspace(tmp_path)
    _, built, _ = _split("likes", cfg, ws)
    probs = bench_yes_probabilities(ModelBench(embedded_safetensors_dir()), None, built.examples[:6])
    assert len(probs) == 6 and all(0.0 < p < 1.0 for p in probs)


def test_training_examples_are_scrubbed_as_configured(tmp_path):
    """social.scrub_*: e-mail addresses and phone numbers (and, when asked, other people's handles) never reach a
    training example; the owner's own handle stays."""
    cfg = DoctuneConfig.model_validate({"workspace": str(tmp_path), "social": {"scrub_handles": True}})
    ws = Workspace(tmp_path)
    posts = synthetic_posts(30)
    mine = next(i for i, p in enumerate(posts) if p.is_mine and p.kind in ("post", "reply"))
    posts[mine] = posts[mine].model_copy(
        update={"text": posts[mine].text + " mail me at jo.doe@example.org or +44 20 7946 0958, cc @bob@x.social @me"}
    )
    run = ws.start_run("ingest", cfg)
    run.write_artifact("posts", posts, Post, stats={"owners": ["me"]})
    texts = [
        m.content
        for name in ("voice", "replies")
        for ex in get_recipe(name, cfg).build_examples(cfg, ws, {}, progress=False).examples
        for m in ex.messages
    ]
    joined = "\n".join(texts)
    assert "jo.doe@example.org" not in joined and "7946" not in joined and "@bob" not in joined
    assert "[email]" in joined and "[phone]" in joined and "@me" in joined


def test_sounds_like_me_classifier_must_pass_its_check_on_held_out_posts():
    """A classifier that tells my held-out posts from others' passes; one that cannot (AUC 0.5) is not used."""
    from doctune.recipes.replies import RepliesRecipe

    posts = synthetic_posts(60)
    cut = sorted(p.created_at for p in posts)[len(posts) // 2]
    mine_texts = {p.text for p in posts if p.is_mine}

    class Perfect:
        def predict(self, texts):
            return [1.0 if t in mine_texts else 0.0 for t in texts]

    class Blind:
        def predict(self, texts):
            return [0.5 for _ in texts]

    good = RepliesRecipe.check_classifier(Perfect(), posts, cut, 0.8)
    bad = RepliesRecipe.check_classifier(Blind(), posts, cut, 0.8)
    assert good["passed"] and good["auc"] == 1.0, good
    assert not bad["passed"] and bad["auc"] == 0.5 and "not scored" in bad["reason"], bad


def test_replies_judge_scores_only_after_passing_its_check(tmp_path):
    """A scripted judge never passes its check: judge_in_voice is not scored, and the report says why."""
    cfg, ws = personal_workspace(tmp_path, models={
        "embedder": {"backend": "fake", "options": {"dims": 512}},
        "judge": {"backend": "fake", "options": {"default_reply": '{"reason": "x", "in_character": "yes"}'}},
    })  # fmt: skip
    recipe, _built, split = _split("replies", cfg, ws)
    examples = [ex.model_copy(update={"split": name}) for name, exs in split.items() for ex in exs]
    recipe.prepare_eval(cfg, ws, examples)
    report = recipe.extra_report(cfg, ws, examples, [], {})
    assert not report["judge_check"]["passed"] and "scripted" in report["judge_check"]["reason"]
    assert "judge_in_voice" not in recipe.score_reply(examples[-1], "@someone sounds great")
