"""curate: generated items -> a deduplicated, clustered, split dataset.

    dedup    qa (+ multihop) -> embeddings, dedup (kept items), duplicates (dropped -> keeper)
    cluster  dedup -> clustered (items with cluster and label), clusters; reports/k_selection.png
    tag      clustered -> tags (topic tags per item; optional)
    split    clustered (+ tags, manual set, reviews) -> dataset (train / eval / rephrased_eval / rephrased_train /
             mirror / manual); human review decisions win (doctune.curate.reviews)

The report and the map live in ``doctune.stages.curate_report``.
"""

from __future__ import annotations

import logging
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from doctune.config import ConfigError, DoctuneConfig
from doctune.curate.clusters import cluster_vectors, plot_k_selection
from doctune.curate.dedup import dedup
from doctune.curate.embeddings import EmbeddingCache, create_embedder, embed_texts
from doctune.curate.review_apply import apply_reviews_to_items, review_counts
from doctune.curate.reviews import curation_reviews
from doctune.curate.splits import (
    ManualSetError,
    load_manual_set,
    mirror_sample,
    rephrase_sample,
    reworded_copy,
    reworded_problem,
    split_train_eval,
)
from doctune.generate.qa_runs import rephrase_items
from doctune.jobs import Job, run_jobs
from doctune.llm import BackendError, CallParams, Message, StructuredOutputError
from doctune.llm.roles import open_client
from doctune.prompts import render_prompt
from doctune.recipes import get_recipe
from doctune.records import ClusterRecord, DatasetItem, DuplicateRecord, Example, ItemEmbedding, QAItem
from doctune.stages import StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


class ItemTags(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str
    tags: list[str]


class ClusterLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=2, max_length=60)


def tag_reply_model(n: int) -> type[BaseModel]:
    from pydantic import create_model

    return create_model(
        "TopicTags",
        __config__=ConfigDict(extra="forbid"),
        tags=(list[str], Field(min_length=1, max_length=n)),
    )


def item_text(item: QAItem) -> str:
    return f"{item.question}\n{item.answer}"


def embed_items(
    config: DoctuneConfig, workspace: Workspace, items: list[QAItem], progress: bool = True
) -> tuple[np.ndarray, str]:
    """Embeddings of items (cached by content hash in the workspace) and the embedder's identity."""
    embedder = create_embedder(config.models.embedder)
    cache = EmbeddingCache(workspace.cache_dir / "embeddings.sqlite")
    vectors = embed_texts(embedder, [item_text(i) for i in items], cache, config.curate.batch_size, progress)
    return vectors, embedder.label()


def reports_dir(workspace: Workspace) -> Path:
    path = workspace.root / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _read_sources(config: DoctuneConfig, workspace: Workspace) -> list[DatasetItem]:
    items = []
    for source in config.curate.sources:
        for item in workspace.read_rows(source, QAItem, config):
            items.append(DatasetItem(**item.model_dump(), source=source, split="unassigned"))
    return items


def run_dedup(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """Embed every item and drop near-duplicates, keeping the better item of each group."""
    items = _read_sources(config, workspace)
    run = workspace.start_run("curate dedup", config)
    vectors, model = embed_items(config, workspace, items, progress)
    kept_idx, dropped = dedup(items, vectors, config.curate.dedup_threshold, config.curate.ann_min_items)
    kept = [items[i] for i in kept_idx]
    embeddings = [
        ItemEmbedding(item_id=i.item_id, source=i.source, vector=v.astype(float).tolist(), model=model)
        for i, v in zip(items, vectors, strict=True)
    ]
    inputs = list(config.curate.sources)
    run.write_artifact("embeddings", embeddings, ItemEmbedding, inputs=inputs)
    run.write_artifact("duplicates", dropped, DuplicateRecord, inputs=inputs)
    stats = {"items": len(items), "kept": len(kept), "dropped": len(dropped), "embedder": model}
    rec = run.write_artifact("dedup", kept, DatasetItem, inputs=[*inputs, "embeddings"], stats=stats)
    return StageResult(
        stage="curate dedup",
        outputs={"dedup": str(workspace.root / rec.path)},
        counts={"items": len(items), "kept": len(kept), "duplicates": len(dropped)},
        stats=stats,
    )


def _vectors_for(workspace: Workspace, config: DoctuneConfig, items: list[DatasetItem]) -> np.ndarray:
    by_id = {e.item_id: e.vector for e in workspace.read_rows("embeddings", ItemEmbedding, config)}
    return np.array([by_id[i.item_id] for i in items], dtype=np.float32)


def _label_cluster(client, samples: list[str], fallback: str) -> str:
    listing = "\n".join(f"- {q}" for q in samples)
    messages = [
        Message(role="system", content=render_prompt("cluster_label_system")),
        Message(role="user", content=render_prompt("cluster_label_user", questions=listing)),
    ]
    try:
        return client.chat_structured(messages, ClusterLabel, CallParams(max_tokens=48)).label.strip()
    except (BackendError, StructuredOutputError) as exc:
        log.warning("cluster label failed (%s); using %r", exc, fallback)
        return fallback


def run_cluster(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """k-means over the kept items; k by silhouette (elbow plotted beside it); clusters named by the generator."""
    cfg = config.curate
    items = workspace.read_rows("dedup", DatasetItem, config)
    vectors = _vectors_for(workspace, config, items)
    run = workspace.start_run("curate cluster", config)
    clustering = cluster_vectors(vectors, cfg.min_clusters, cfg.max_clusters, cfg.seed)
    outputs = {}
    if clustering.selection is not None:
        outputs["k_selection_plot"] = str(
            plot_k_selection(clustering.selection, reports_dir(workspace) / "k_selection.png")
        )
    labels = clustering.labels
    members: dict[int, list[DatasetItem]] = {}
    for item, label in zip(items, labels, strict=True):
        members.setdefault(int(label), []).append(item)
    names: dict[int, str] = {k: f"cluster {k}" for k in members}
    usage = {}
    if cfg.label_clusters and items:
        client = open_client(config, workspace, "generator")
        try:
            jobs = [
                Job(
                    str(k),
                    partial(
                        _label_cluster,
                        client,
                        [i.question for i in sorted(m, key=lambda i: i.item_id)][: cfg.label_samples],
                        names[k],
                    ),
                )
                for k, m in sorted(members.items())
            ]
            for job, res in zip(
                jobs,
                run_jobs(jobs, config.models.generator.max_concurrency, client, "label clusters", progress),
                strict=True,
            ):
                names[int(job.key)] = res.value or names[int(job.key)]
        finally:
            client.backend.close()
        usage = client.usage.as_dict()
    clustered = [
        i.model_copy(update={"cluster": int(c), "cluster_label": names[int(c)]})
        for i, c in zip(items, labels, strict=True)
    ]
    clusters = [
        ClusterRecord(
            cluster=k, label=names[k], size=len(m), sample_questions=[i.question for i in m[: cfg.label_samples]]
        )
        for k, m in sorted(members.items())
    ]
    sel = clustering.selection
    stats = {
        "k": len(members),
        "selection": None
        if sel is None
        else {
            "ks": sel.ks,
            "inertia": sel.inertias,
            "silhouette": sel.silhouettes,
            "elbow_k": sel.elbow_k,
            "best_k": sel.best_k,
        },
        "llm": usage,
    }
    run.write_artifact("clusters", clusters, ClusterRecord, inputs=["dedup", "embeddings"], stats=stats)
    rec = run.write_artifact("clustered", clustered, DatasetItem, inputs=["dedup", "embeddings"], stats=stats)
    outputs["clustered"] = str(workspace.root / rec.path)
    return StageResult(
        stage="curate cluster", outputs=outputs, counts={"items": len(items), "clusters": len(members)}, stats=stats
    )


def _tag_item(client, item: DatasetItem, n: int) -> ItemTags:
    messages = [
        Message(role="system", content=render_prompt("tag_system", n=n)),
        Message(role="user", content=render_prompt("tag_user", question=item.question, answer=item.answer)),
    ]
    reply = client.chat_structured(messages, tag_reply_model(n), CallParams(max_tokens=64))
    tags = list(dict.fromkeys(t.strip().lower() for t in reply.tags if t.strip()))
    return ItemTags(item_id=item.item_id, tags=tags[:n])


def run_tag(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """Short topic tags for each item (a separate, optional step; `split` merges them in)."""
    items = workspace.read_rows("clustered", DatasetItem, config)
    run = workspace.start_run("curate tag", config)
    client = open_client(config, workspace, "generator")
    try:
        jobs = [Job(i.item_id, partial(_tag_item, client, i, config.curate.tags_per_item)) for i in items]
        results = run_jobs(jobs, config.models.generator.max_concurrency, client, "tag", progress)
    finally:
        client.backend.close()
    tags = [r.value for r in results if r.value is not None]
    errors = [
        {"unit_id": r.key, "reason": f"{type(r.error).__name__}: {r.error}"} for r in results if r.error is not None
    ]
    stats = {"tagged": len(tags), "failed": len(errors), "llm": client.usage.as_dict()}
    rec = run.write_artifact("tags", tags, ItemTags, inputs=["clustered"], errors=errors, stats=stats)
    return StageResult(
        stage="curate tag",
        outputs={"tags": str(workspace.root / rec.path)},
        counts={"tagged": len(tags), "failed": len(errors)},
        stats=stats,
    )


def _rephrase_split(
    config: DoctuneConfig,
    workspace: Workspace,
    sources: list[DatasetItem],
    split: str,
    inputs: list[str],
    progress: bool,
    edited: frozenset[str] = frozenset(),
) -> tuple[list[DatasetItem], dict, list[dict]]:
    """Reworded copies of ``sources`` in ``split``: (items, stats, errors). The ``rephrased`` artifact, when fresh,
    supplies the rephrasings it has (not of items a reviewer ``edited``); the rephraser does the rest. Only the
    question is reworded: the reference stays the verified answer, and a rewording that is a near-copy, gives the
    answer away or changes the subject is dropped with its reason."""
    stored: dict[str, QAItem] = {}
    freshness = workspace.freshness("rephrased", config)
    if freshness == "fresh":
        rows = workspace.read_rows("rephrased", QAItem, config)
        stored = {r.source_item_id: r for r in rows if r.source_item_id and r.source_item_id not in edited}
    else:
        log.info("curate split: artifact 'rephrased' is %s; the rephraser rewords every %s item", freshness, split)
    reused = [stored[i.item_id] for i in sources if i.item_id in stored]
    todo = [i for i in sources if i.item_id not in stored]
    if reused and "rephrased" not in inputs:
        inputs.append("rephrased")
    log.info("curate split: %d %s rephrasings from 'rephrased', %d to rephrase", len(reused), split, len(todo))
    new, outcomes, usage = rephrase_items(config, workspace, todo, progress) if todo else ([], [], {})
    errors = [
        {"unit_id": o.unit_id, "reason": f"rephrase {o.status}: {o.detail}"} for o in outcomes if o.status != "items"
    ]
    position = {i.item_id: k for k, i in enumerate(sources)}
    source_of = {i.item_id: i for i in sources}
    items = []
    for n in sorted([*reused, *new], key=lambda n: position[n.source_item_id]):  # in the sources' order
        original = source_of[n.source_item_id]
        update: dict = {"source": "rephrased", "split": split}
        update.update({k: getattr(original, k) for k in ("cluster", "cluster_label", "tags")})
        # both reworded splits ask the same fact: the reference stays the verified answer, and a rewording that is
        # a near-copy, gives the answer away or changes the subject (a stored one too) is dropped with its reason
        if problem := reworded_problem(original.question, n.question, original.answer):
            errors.append({"unit_id": original.item_id, "reason": f"rephrase rejected: {problem}"})
            continue
        update.update(answer=original.answer, evaluation_criteria=original.evaluation_criteria)
        items.append(DatasetItem(**{**n.model_dump(), **update}))
    stats = {
        "items": len(items),
        "from_artifact": len(reused),
        "outcomes": dict(Counter(o.status for o in outcomes)),
        "llm": usage,
    }
    return items, stats, errors


def run_split(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """train / eval (stratified), rephrased_eval, rephrased_train, mirror and manual -> the ``dataset`` artifact."""
    cfg = config.curate
    items = workspace.read_rows("clustered", DatasetItem, config)
    inputs = ["clustered"]
    if workspace.freshness("tags", config) == "fresh":
        by_id = {t.item_id: t.tags for t in workspace.read_rows("tags", ItemTags, config)}
        items = [i.model_copy(update={"tags": by_id.get(i.item_id, [])}) for i in items]
        inputs.append("tags")
    # human review decisions win: rejected items dropped, edits applied, approved items kept (see curate.reviews)
    reviews = curation_reviews(workspace, config, "qa")
    review_errors: list[dict] = []
    edited: frozenset[str] = frozenset()
    if reviews is not None:
        pool = {i.item_id: i for i in _read_sources(config, workspace)}
        before = {i.item_id for i in items}
        items, review_errors = apply_reviews_to_items(items, reviews, pool)
        edited = frozenset(i for i, r in reviews.items() if r.decision == "edit")
        inputs += [*(s for s in cfg.sources if s not in inputs), "reviews"]
    manual = []
    if cfg.manual_path:
        try:
            manual = load_manual_set(Path(cfg.manual_path))
        except ManualSetError as exc:
            raise ConfigError(f"curate.manual_path: {exc}") from None
    run = workspace.start_run("curate split", config)
    train, evaluation, strata = split_train_eval(items, cfg.eval_share, cfg.eval_size, cfg.seed)
    mirror = mirror_sample(train, cfg.mirror_size, cfg.seed)
    stats: dict = {"strata": strata}
    errors: list[dict] = list(review_errors)
    rephrased: list[DatasetItem] = []
    if cfg.rephrase_eval and evaluation:
        new, stats["rephrase"], errs = _rephrase_split(
            config, workspace, evaluation, "rephrased_eval", inputs, progress, edited
        )
        rephrased += new
        errors += errs
    # the span recipe's second wording of each question is right by construction; other items go to the rephraser
    alternatives = [i for i in train if i.alt_question]
    taught = rephrase_sample(alternatives or train, cfg.rephrase_train, cfg.seed)
    if taught and alternatives:
        rephrased += [reworded_copy(i, i.alt_question or "", "rephrased_train") for i in taught]
        stats["rephrase_train"] = {"items": len(taught), "from": "alt_question"}
    elif taught:
        new, stats["rephrase_train"], errs = _rephrase_split(
            config, workspace, taught, "rephrased_train", inputs, progress, edited
        )
        rephrased += new
        errors += errs
    counts: dict = {}
    if reviews is not None:  # rephrased and manual items are reviewable too (they are in the dataset artifact)
        before |= {i.item_id for i in [*rephrased, *manual]}
        rephrased, errs = apply_reviews_to_items(rephrased, reviews, {})
        manual, more = apply_reviews_to_items(manual, reviews, {})
        errors += errs + more
        counts = stats["reviews"] = review_counts(reviews, before, [*items, *rephrased, *manual], errors)
    dataset = [*train, *evaluation, *rephrased, *mirror, *manual]
    stats["splits"] = dict(Counter(i.split for i in dataset))
    rec = run.write_artifact("dataset", dataset, DatasetItem, inputs=inputs, errors=errors, stats=stats)
    # the same items in the recipe seam's shape, for `export/train/eval --recipe qa`
    qa = get_recipe("qa", config)
    examples = [qa.item_example(item, config.export.system_prompt) for item in dataset]
    seam_inputs = ["dataset", "reviews"] if reviews is not None else ["dataset"]
    seam = run.write_artifact("dataset_qa", examples, Example, inputs=seam_inputs, stats={"splits": stats["splits"]})
    return StageResult(
        stage="curate split",
        outputs={"dataset": str(workspace.root / rec.path), "dataset_qa": str(workspace.root / seam.path)},
        counts={**stats["splits"], **counts},
        stats=stats,
    )
