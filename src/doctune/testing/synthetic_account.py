"""A synthetic Mastodon account in the real export format, with a feed and a written, noisy preference process
whose best possible AUC is computed exactly.

What is written (``generate_account(out_dir, seed)``):

- ``archive-20241231000000-synthetic.zip``: a Mastodon account export: ``outbox.json`` (``OrderedCollection`` of
  ``Create``/``Note`` with HTML content, ``Announce`` boosts, ``Delete``/``Tombstone`` deleted posts), ``likes.json``
  and ``bookmarks.json`` (``OrderedCollection`` of status URIs), ``actor.json``, ``avatar.png`` and the media files.
- ``feed.json``: the posts I saw (Mastodon API status JSON, newest first, saved before I acted on them, so
  ``favourited`` is always false: the labels are in ``likes.json`` only).
- ``feed_unseen.json``: newer posts, not yet seen, for ``doctune rank``.
- ``truth.json``: the process's constants, every feed post's like probability ``p`` and drawn label, the counts,
  and the ceilings below.

The preference process (feed posts; constants are the module-level names):

1. Topics: ``TOPICS`` (8, each with a word bank in ``synthetic_text``). Each of ``sizes.authors`` feed authors has a
   home topic (author i: topic i mod 8), a language (en 80 %, de 10 %, ja 10 %) and an affinity
   ``a_author ~ N(0, AUTHOR_SD^2)``.
2. A feed post by author A has a topic mix ``theta ~ Dirichlet(DIRICHLET_BASE + DIRICHLET_HOME * e_home(A))``; its 1
   to 4 sentences each draw a topic from ``theta`` and words from that topic's bank; the post is in A's language
   (else English, 10 %), has media with alt text with probability 0.25 and a content warning with probability 0.08.
3. Features: ``z_len = (ln(characters of the plain text) - 5.0) / 0.5``, ``media`` and ``cw`` (0/1), the language.
4. My latent utility: ``u = TOPIC_AFFINITY . theta + a_author + W_LENGTH * z_len + W_MEDIA * media + W_CW * cw
   + W_LANGUAGE[language] + eps``, ``eps ~ N(0, SIGMA^2)`` independent per post.
5. I like a post iff ``u > t`` (a threshold, not a sigmoid draw), where ``t`` is chosen (bisection) so that the
   expected like rate over all feed posts is ``LIKE_RATE``. So the like probability given everything but the noise is
   exactly ``p = Phi((u - eps - t) / SIGMA)`` (``Phi`` the standard normal CDF).

The ceiling: the labels are Bernoulli(p_i) draws with p_i known, so the Bayes-optimal scorer ranks by p_i. Its
expected AUC, over the pairs (i positive, j negative), is computed exactly (``best_possible_auc``):
``AUC* = sum_{i != j} p_i (1 - p_j) [1(p_i > p_j) + 0.5 * 1(p_i == p_j)] / sum_{i != j} p_i (1 - p_j)``. The realised
AUC of ranking by p_i on the drawn labels is reported beside it (``realised_auc``, Mann-Whitney with average ranks).
Both are given for the seen feed, for its newest ``TEST_SHARE`` (a time split's test part) and for the unseen feed.
AUC* is a ceiling for any scorer, even one that knows theta and the author affinities; a model that reads only the
text sees theta through a few sampled words, so its attainable AUC is lower.

My own posts and replies: topics drawn with probability proportional to ``exp(TOPIC_AFFINITY)``, written in my voice
(``synthetic_text``: lowercase, signature openers and closers, an emoji habit, a few in Japanese), some with content
warnings or media alt text. Replies answer seen feed posts (chosen with weight ``p + 0.05``; their ``inReplyTo`` is
the feed post's ``uri``, so parents resolve from ``feed.json``; some feed posts are themselves replies, so threads
are longer than one), and ``sizes.unknown_parent_replies`` answer URIs found nowhere. Boosts are of liked feed posts
(and a few unknown URIs), likes are the liked seen feed posts plus a few unknown URIs, bookmarks mostly liked posts.
Dates span 2024-01-01 to 2024-12-15 (seen) and to 2024-12-31 (unseen), so a time split works.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from doctune.testing import synthetic_formats as fmt
from doctune.testing import synthetic_text as txt
from doctune.testing.synthetic_ceiling import (
    Ceiling,
    best_possible_auc,
    calibrate_threshold,
    ceiling,
    normal_cdf,
    realised_auc,
)

log = logging.getLogger(__name__)

__all__ = [
    "AccountSizes",
    "AccountSummary",
    "Ceiling",
    "best_possible_auc",
    "ceiling",
    "generate_account",
    "realised_auc",
]

TOPICS = txt.TOPICS
TOPIC_AFFINITY = np.array([1.5, 1.2, 0.8, 0.4, 0.0, -0.6, -1.4, -1.2])  # in TOPICS order
AUTHOR_SD = 0.6
DIRICHLET_BASE = 0.3
DIRICHLET_HOME = 2.0
W_LENGTH = 0.3
W_MEDIA = 0.5
W_CW = -0.4
W_LANGUAGE = {"en": 0.0, "de": -0.3, "ja": -1.0}
SIGMA = 1.0
LIKE_RATE = 0.3
TEST_SHARE = 0.3
START = datetime(2024, 1, 1, tzinfo=UTC)
SEEN_END = datetime(2024, 12, 15, tzinfo=UTC)
END = datetime(2024, 12, 31, tzinfo=UTC)
ARCHIVE_NAME = "archive-20241231000000-synthetic.zip"
OWNER = fmt.Author("ada", "social.example", "Ada Lindqvist (synthetic)", "109000000000000001")


@dataclass(frozen=True)
class AccountSizes:
    """How much is generated (defaults: the demo, a few hundred posts)."""

    authors: int = 30
    feed: int = 320
    unseen: int = 40
    posts: int = 140
    replies: int = 90
    unknown_parent_replies: int = 8
    boosts: int = 25
    unknown_boosts: int = 3
    deleted: int = 5
    unknown_likes: int = 5
    bookmarks: int = 20


@dataclass
class FeedItem:
    status: fmt.Status
    mix: np.ndarray
    author_affinity: float
    utility: float = 0.0  # u without the noise
    p: float = 0.0
    liked: bool = False
    seen: bool = True


@dataclass
class AccountSummary:
    """Where the files are, what they hold, and the ceilings."""

    out_dir: Path
    files: dict[str, Path]
    counts: dict[str, int]
    threshold: float
    ceilings: dict[str, Ceiling] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"{k}: {v}" for k, v in self.counts.items()]
        for name, c in self.ceilings.items():
            out.append(
                f"{name}: best possible AUC {c.auc_star:.4f} (exact, ranking by p), realised AUC of p "
                f"{c.auc_realised:.4f}, {c.positives} liked of {c.n} (expected {c.expected_positives:.1f})"
            )
        return out


def feature_utility(item: FeedItem) -> float:
    """The noise-free part of u (see the module docstring)."""
    s = item.status
    z_len = (math.log(max(len(s.text), 1)) - 5.0) / 0.5
    return float(
        TOPIC_AFFINITY @ item.mix
        + item.author_affinity
        + W_LENGTH * z_len
        + W_MEDIA * bool(s.media_alt)
        + W_CW * bool(s.spoiler)
        + W_LANGUAGE.get(s.language, 0.0)
    )


def _times(rng: random.Random, n: int, start: datetime, end: datetime) -> list[datetime]:
    span = (end - start).total_seconds()
    return sorted(start + timedelta(seconds=int(rng.random() * span)) for _ in range(n))


def _conversation(status: fmt.Status) -> str:
    return f"tag:{status.author.domain},{status.created:%Y-%m-%d}:objectId={status.sid}:objectType=Conversation"


def _feed(rng: random.Random, nrng: np.random.Generator, sizes: AccountSizes) -> list[FeedItem]:
    authors = []
    for i in range(sizes.authors):
        name = txt.AUTHOR_NAMES[i % len(txt.AUTHOR_NAMES)] + (
            str(i // len(txt.AUTHOR_NAMES)) if i >= len(txt.AUTHOR_NAMES) else ""
        )
        r = rng.random()
        language = "en" if r < 0.8 else ("de" if r < 0.9 else "ja")
        author = fmt.Author(name, txt.DOMAINS[i % len(txt.DOMAINS)], name.capitalize(), str(109100000000000000 + i))
        authors.append((author, i % len(TOPICS), language, float(nrng.normal(0.0, AUTHOR_SD))))
    times = _times(rng, sizes.feed, START, SEEN_END) + _times(rng, sizes.unseen, SEEN_END, END)
    items: list[FeedItem] = []
    for k, created in enumerate(times):
        author, home, author_language, affinity = authors[rng.randrange(len(authors))]
        alpha = np.full(len(TOPICS), DIRICHLET_BASE)
        alpha[home] += DIRICHLET_HOME
        mix = nrng.dirichlet(alpha)
        language = author_language if rng.random() < 0.9 else "en"
        sentences = []
        for _ in range(rng.randint(1, 4)):
            topic = TOPICS[int(nrng.choice(len(TOPICS), p=mix))]
            a, b = txt.topic_phrase(rng, topic), txt.topic_phrase(rng, topic)
            sentences.append(txt.feed_sentence(rng, language, a, b))
        top = TOPICS[int(np.argmax(mix))]
        status = fmt.Status(fmt.snowflake(created, k), author, created, sentences, language=language)
        if rng.random() < 0.5:
            status.hashtags = [txt.hashtag_name(top)]
        if rng.random() < 0.25:
            status.media_alt = [f"A photo of {txt.topic_phrase(rng, top)}, taken at home."]
        if rng.random() < 0.08:
            status.spoiler = f"{top} talk, long post"
        earlier = [it.status for it in items[-20:] if it.status.author is not author and it.seen == (k < sizes.feed)]
        if earlier and rng.random() < 0.15:
            status.parent = rng.choice(earlier)
            status.conversation = status.parent.conversation
        else:
            status.conversation = _conversation(status)
        items.append(FeedItem(status, mix, affinity, seen=k < sizes.feed))
    return items


def _draw_likes(items: list[FeedItem], nrng: np.random.Generator) -> float:
    u = np.array([feature_utility(it) for it in items])
    t = calibrate_threshold(u, SIGMA, LIKE_RATE)
    p = normal_cdf((u - t) / SIGMA)
    eps = nrng.normal(0.0, SIGMA, size=len(items))
    for it, ui, pi, ei in zip(items, u, p, eps, strict=True):
        it.utility, it.p, it.liked = float(ui), float(pi), bool(ui + ei > t)
    return t


def _unknown_uri(rng: random.Random, when: datetime, n: int) -> str:
    return f"https://elsewhere.example/users/gone{n}/statuses/{fmt.snowflake(when, rng.randrange(65536))}"


def _my_activities(rng: random.Random, items: list[FeedItem], sizes: AccountSizes) -> tuple[list[dict], dict]:
    """My outbox (posts, replies, boosts, deletions, in time order) and what it holds."""
    seen = [it for it in items if it.seen]
    weights = np.exp(TOPIC_AFFINITY)
    notes: list[fmt.Status] = []
    counts = {"content_warnings": 0, "with_media": 0, "non_latin": 0}
    for k, created in enumerate(_times(rng, sizes.posts, START, SEEN_END)):
        topic = rng.choices(TOPICS, weights=list(weights))[0]
        a, b = txt.topic_phrase(rng, topic), txt.topic_phrase(rng, topic)
        japanese = k % 20 == 7  # a few non-Latin posts
        status = fmt.Status(
            fmt.snowflake(created, 40000 + k),
            OWNER,
            created,
            [txt.my_post_text(rng, a, b, japanese)],
            language="ja" if japanese else "en",
        )
        if rng.random() < 0.08:
            status.spoiler = f"{topic} rant"
        if rng.random() < 0.15:
            status.media_alt = [f"my {txt.bare(a)}, slightly out of focus"]
        status.conversation = _conversation(status)
        notes.append(status)
    pool = list(seen)
    n_known = min(sizes.replies - sizes.unknown_parent_replies, len(pool))
    for k in range(n_known):
        parent = rng.choices(pool, weights=[it.p + 0.05 for it in pool])[0]
        pool.remove(parent)
        topic = TOPICS[int(np.argmax(parent.mix))]
        created = parent.status.created + timedelta(minutes=rng.randint(5, 480))
        text = txt.my_reply_text(rng, txt.topic_phrase(rng, topic), txt.topic_phrase(rng, topic))
        reply = fmt.Status(fmt.snowflake(created, 50000 + k), OWNER, created, [text], parent=parent.status)
        reply.conversation = parent.status.conversation
        notes.append(reply)
    for k, created in enumerate(_times(rng, sizes.unknown_parent_replies, START, SEEN_END)):
        topic = rng.choices(TOPICS, weights=list(weights))[0]
        text = txt.my_reply_text(rng, txt.topic_phrase(rng, topic), txt.topic_phrase(rng, topic))
        reply = fmt.Status(fmt.snowflake(created, 55000 + k), OWNER, created, [text])
        reply.parent_uri = _unknown_uri(rng, created - timedelta(hours=1), k)
        reply.conversation = f"tag:elsewhere.example,{created:%Y-%m-%d}:objectId={k}:objectType=Conversation"
        notes.append(reply)
    for s in notes:
        counts["content_warnings"] += bool(s.spoiler)
        counts["with_media"] += bool(s.media_alt)
        counts["non_latin"] += s.language == "ja"
    dated: list[tuple[datetime, dict]] = [(s.created, fmt.note_activity(s)) for s in notes]
    liked = [it for it in seen if it.liked]
    for k, it in enumerate(rng.sample(liked, min(sizes.boosts - sizes.unknown_boosts, len(liked)))):
        created = it.status.created + timedelta(minutes=rng.randint(1, 180))
        sid = fmt.snowflake(created, 60000 + k)
        dated.append((created, fmt.announce_activity(OWNER, sid, created, it.status.uri, it.status.author.actor)))
    for k, created in enumerate(_times(rng, sizes.unknown_boosts, START, SEEN_END)):
        sid = fmt.snowflake(created, 61000 + k)
        target = _unknown_uri(rng, created - timedelta(hours=2), 100 + k)
        dated.append((created, fmt.announce_activity(OWNER, sid, created, target, target.split("/statuses/")[0])))
    for k, created in enumerate(_times(rng, sizes.deleted, START, SEEN_END)):
        sid = fmt.snowflake(created - timedelta(days=1), 62000 + k)
        dated.append((created, fmt.delete_activity(OWNER, sid, created)))
    dated.sort(key=lambda pair: (pair[0], pair[1]["id"]))
    counts.update(
        posts=sizes.posts,
        replies=n_known + sizes.unknown_parent_replies,
        replies_unknown_parent=sizes.unknown_parent_replies,
        boosts=sum(a["type"] == "Announce" for _, a in dated),
        boosts_unknown=sizes.unknown_boosts,
        deleted=sizes.deleted,
    )
    return [a for _, a in dated], counts


def generate_account(out_dir: str | Path, seed: int = 0, sizes: AccountSizes | None = None) -> AccountSummary:
    """Write the synthetic account (archive zip, feed.json, feed_unseen.json, truth.json) into ``out_dir``.
    The same seed gives byte-identical files."""
    sizes = sizes or AccountSizes()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    items = _feed(rng, nrng, sizes)
    threshold = _draw_likes(items, nrng)
    outbox, counts = _my_activities(rng, items, sizes)
    seen = [it for it in items if it.seen]
    unseen = [it for it in items if not it.seen]
    liked = [it for it in seen if it.liked]
    unknown_likes = [_unknown_uri(rng, START + timedelta(days=30 * k + 3), 200 + k) for k in range(sizes.unknown_likes)]
    likes = [it.status.uri for it in liked] + unknown_likes
    candidates = liked if liked else seen
    bookmarks = sorted(
        {it.status.uri for it in rng.sample(candidates, min(sizes.bookmarks * 7 // 10, len(candidates)))}
        | {it.status.uri for it in rng.sample(seen, min(sizes.bookmarks - sizes.bookmarks * 7 // 10, len(seen)))}
    )
    media = [att["url"] for a in outbox if a["type"] == "Create" for att in a["object"]["attachment"]]
    files = {
        "outbox.json": fmt.ordered_collection("outbox.json", outbox),
        "likes.json": fmt.ordered_collection("likes.json", likes, total=False),
        "bookmarks.json": fmt.ordered_collection("bookmarks.json", bookmarks, total=False),
        "actor.json": fmt.actor_document(OWNER, START - timedelta(days=400), "gardener, synth noodler, slow cyclist"),
    }
    files["outbox.json"]["@context"] = fmt.MASTODON_CONTEXT
    paths = {
        "archive": out / ARCHIVE_NAME,
        "feed": out / "feed.json",
        "feed_unseen": out / "feed_unseen.json",
        "truth": out / "truth.json",
    }
    fmt.write_export_zip(paths["archive"], files, media)
    newest_first = sorted(seen, key=lambda it: it.status.created, reverse=True)
    fmt.write_json(paths["feed"], [fmt.api_status(it.status) for it in newest_first])
    fmt.write_json(
        paths["feed_unseen"],
        [fmt.api_status(it.status) for it in sorted(unseen, key=lambda it: it.status.created, reverse=True)],
    )
    counts.update(
        likes=len(likes),
        likes_unknown=len(unknown_likes),
        bookmarks=len(bookmarks),
        feed_seen=len(seen),
        feed_unseen=len(unseen),
        feed_liked=len(liked),
        outbox_items=len(outbox),
    )
    n_test = max(1, round(TEST_SHARE * len(seen)))
    test = seen[-n_test:]  # items are in time order
    summary = AccountSummary(out, paths, counts, threshold)
    for name, group in (("seen", seen), ("test", test), ("unseen", unseen)):
        if group:
            summary.ceilings[name] = ceiling([it.p for it in group], [it.liked for it in group])
    fmt.write_json(paths["truth"], _truth(seed, sizes, summary, items))
    log.info("synthetic account (seed %d) written to %s", seed, out)
    return summary


def _truth(seed: int, sizes: AccountSizes, summary: AccountSummary, items: list[FeedItem]) -> dict[str, Any]:
    return {
        "generator": "doctune.testing.synthetic_account",
        "seed": seed,
        "sizes": sizes.__dict__,
        "process": {
            "topics": TOPICS,
            "topic_affinity": TOPIC_AFFINITY.tolist(),
            "author_sd": AUTHOR_SD,
            "dirichlet_base": DIRICHLET_BASE,
            "dirichlet_home": DIRICHLET_HOME,
            "w_length": W_LENGTH,
            "w_media": W_MEDIA,
            "w_content_warning": W_CW,
            "w_language": W_LANGUAGE,
            "sigma": SIGMA,
            "like_rate": LIKE_RATE,
            "threshold": summary.threshold,
            "rule": "like iff u + eps > threshold, eps ~ N(0, sigma^2); p = Phi((u - threshold) / sigma)",
        },
        "counts": summary.counts,
        "ceilings": {name: c.__dict__ for name, c in summary.ceilings.items()},
        "feed": [
            {
                "uri": it.status.uri,
                "id": it.status.sid,
                "seen": it.seen,
                "p": it.p,
                "liked": it.liked,
                "topic": TOPICS[int(np.argmax(it.mix))],
            }
            for it in items
        ],
    }
