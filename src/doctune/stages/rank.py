"""`doctune rank FEED`: the unseen posts of a feed file ranked by predicted like.

Posts of the feed that I wrote, liked, or that an earlier run showed (:mod:`doctune.rank.shown`; unless
``include_shown``) are left out. Scorers: the embedding + logistic-regression baseline trained on the likes train
split (:mod:`doctune.rank.baseline`), and, when a tuned likes model is chosen (``--model ID``, or with
``rank.model: auto`` the current model if it is a likes model, else the newest registered one), its P(yes)
(:func:`doctune.evaluate.likes.yes_probabilities`). The rank score is the model's P(yes) when there is one, else
the baseline's. The top ``top`` posts are printed by the CLI, written to ``reports/rank/rank-<stamp>.html`` (or
``html_path``) and ``.json``, and remembered as shown.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from doctune.config import ConfigError, DoctuneConfig
from doctune.rank.baseline import BaselineError, train_like_baseline, workspace_embed
from doctune.rank.feed import FeedError, read_feed
from doctune.rank.report import RankedPost, write_html
from doctune.rank.shown import ShownLog
from doctune.recipes.likes import likes_messages, likes_prompt
from doctune.records import Post
from doctune.registry import ModelEntry, Registry
from doctune.stages import NothingUsable, StageResult
from doctune.workspace import StaleArtifactError, Workspace

log = logging.getLogger(__name__)

BASELINE = "baseline"


def likes_model(workspace: Workspace, choice: str) -> ModelEntry | None:
    """The tuned likes model ``choice`` names: ``baseline`` (none), ``auto`` or a registry id."""
    if choice == BASELINE:
        return None
    registry = Registry(workspace)
    if choice != "auto":
        return registry.get(choice)
    current = registry.current()
    if current is not None and current.labels.get("recipe") == "likes":
        return current
    likes = [e for e in registry.list_entries() if e.labels.get("recipe") == "likes"]
    return max(likes, key=lambda e: (e.created_at, e.id)) if likes else None


def _known(config: DoctuneConfig, workspace: Workspace) -> set[str]:
    """Ids of posts I wrote or acted on (not "unseen" in a feed)."""
    try:
        posts = workspace.read_rows("posts", Post, config)
    except StaleArtifactError as exc:
        log.warning("%s: no post is known as mine or liked", exc)
        return set()
    return {p.target or p.post_id for p in posts if p.is_mine}


def _model_scores(config: DoctuneConfig, workspace: Workspace, entry: ModelEntry, posts: list[Post]) -> list[float]:
    from doctune.evaluate.likes import bench_yes_probabilities_for
    from doctune.evaluate.perplexity import ModelBench
    from doctune.train.resolve import base_model_dir

    bench = ModelBench(base_model_dir(entry.base_model))
    bench.add(entry.id, workspace.root / entry.weights_path)
    cfg = config.likes
    convos = [likes_messages(cfg.system_prompt, p.author, p.text, cfg.max_post_chars) for p in posts]
    return bench_yes_probabilities_for(bench, entry.id, convos)


def run(
    config: DoctuneConfig,
    workspace: Workspace,
    feed_path: Path,
    top: int | None = None,
    model: str | None = None,
    html_path: Path | None = None,
    include_shown: bool | None = None,
    progress: bool = True,
) -> StageResult:
    """Rank the feed's unseen posts (see the module docstring)."""
    cfg = config.rank
    top = top or cfg.top
    include_shown = cfg.include_shown if include_shown is None else include_shown
    try:
        posts, errors = read_feed(Path(feed_path))
    except FeedError as exc:
        raise ConfigError(str(exc)) from None
    known = _known(config, workspace)
    shown = ShownLog(workspace.root)
    unseen, seen_before = [], 0
    for post in {p.post_id: p for p in posts if p.resolved and p.text.strip()}.values():
        if post.post_id in known:
            continue
        if post.post_id in shown and not include_shown:
            seen_before += 1
            continue
        unseen.append(post)
    if not unseen:
        raise NothingUsable(
            f"rank: no unseen post in {feed_path} ({seen_before} shown before, {len(errors)} unreadable)"
        )

    baseline_scores: list[float] | None = None
    try:
        baseline, _ = train_like_baseline(config, workspace, workspace_embed(config, workspace))
        baseline_scores = baseline.predict(
            [likes_prompt(p.author, p.text, config.likes.max_post_chars) for p in unseen]
        )
        baseline_scores = [float(s) for s in baseline_scores]
    except (BaselineError, StaleArtifactError) as exc:
        log.warning("baseline not used: %s", exc)
    entry = likes_model(workspace, model or cfg.model)
    model_scores = _model_scores(config, workspace, entry, unseen) if entry is not None else None
    if baseline_scores is None and model_scores is None:
        raise NothingUsable("rank: no scorer: the baseline needs a posts artifact with likes and feed posts")

    scored = []
    for i, post in enumerate(unseen):
        b = baseline_scores[i] if baseline_scores is not None else None
        m = model_scores[i] if model_scores is not None else None
        scored.append((m if m is not None else b, post, b, m))
    scored.sort(key=lambda row: (-row[0], row[1].created_at, row[1].post_id))
    rows = [
        RankedPost(i + 1, p.post_id, p.author, p.created_at, p.text, p.url, s, b, m, p.post_id in shown)
        for i, (s, p, b, m) in enumerate(scored[:top])
    ]
    shown.mark(r.post_id for r in rows)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    reports = workspace.root / "reports" / "rank"
    html_out = write_html(
        rows, html_path or reports / f"rank-{stamp}.html", f"Feed ranked for you: {Path(feed_path).name}"
    )
    json_out = reports / f"rank-{stamp}.json"
    json_out.parent.mkdir(parents=True, exist_ok=True)
    scorer = entry.id if entry is not None else BASELINE
    json_out.write_text(
        json.dumps({"feed": str(feed_path), "scorer": scorer, "rows": [asdict(r) for r in rows]}, indent=1),
        encoding="utf-8",
    )
    return StageResult(
        stage="rank",
        outputs={"html": str(html_out), "json": str(json_out)},
        counts={"ranked": len(unseen), "shown": len(rows), "skipped_shown_before": seen_before},
        errors=errors,
        stats={"rows": rows, "scorer": scorer},
    )
