"""The leakage and coverage report: near-copies between eval and train, what each document and
chunk contributed, and the distributions of difficulty and category."""

from __future__ import annotations

from collections import Counter

import numpy as np

from doctune.records import Chunk, DatasetItem, Document

#: splits checked for near-copies of train items; rephrased_train is train items reworded, exempt by design
EVAL_SPLITS = ("eval", "rephrased_eval", "manual")


def leakage(items: list[DatasetItem], vectors: np.ndarray, threshold: float) -> list[dict]:
    """For each eval-like item: its nearest train item, their cosine similarity, and a near-copy flag."""
    train_idx = [i for i, it in enumerate(items) if it.split == "train"]
    if not train_idx:
        return []
    train = vectors[train_idx]
    rows = []
    for i, item in enumerate(items):
        if item.split not in EVAL_SPLITS:
            continue
        sims = train @ vectors[i]
        j = int(np.argmax(sims))
        sim = float(sims[j])
        rows.append(
            {
                "item_id": item.item_id,
                "split": item.split,
                "question": item.question,
                "nearest_train_id": items[train_idx[j]].item_id,
                "nearest_train_question": items[train_idx[j]].question,
                "similarity": round(sim, 4),
                "near_copy": sim >= threshold,
            }
        )
    return rows


def coverage(items: list[DatasetItem], chunks: list[Chunk], documents: list[Document]) -> dict:
    """Accepted items citing each document and chunk (train, eval and their sources; mirror copies and
    rephrasings are not counted twice); chunks no item cites are listed."""
    counted = [i for i in items if i.split in ("train", "eval")]
    per_chunk: Counter = Counter()
    per_doc: Counter = Counter()
    for item in counted:
        cited = {c.chunk_id for c in item.citations} or set(item.chunk_ids)
        per_chunk.update(cited)
        per_doc.update(set(item.doc_ids))
    titles = {d.doc_id: d for d in documents}
    docs = [
        {
            "doc_id": d.doc_id,
            "source_path": d.source_path,
            "items": per_doc.get(d.doc_id, 0),
            "chunks": sum(1 for c in chunks if c.doc_id == d.doc_id),
            "chunks_cited": sum(1 for c in chunks if c.doc_id == d.doc_id and per_chunk.get(c.chunk_id)),
        }
        for d in documents
    ]
    uncited = [
        {"chunk_id": c.chunk_id, "source_path": titles[c.doc_id].source_path if c.doc_id in titles else "?"}
        for c in chunks
        if not per_chunk.get(c.chunk_id)
    ]
    return {
        "documents": docs,
        "chunks": {c.chunk_id: per_chunk.get(c.chunk_id, 0) for c in chunks},
        "uncited_chunks": uncited,
        "chunk_coverage": round(1 - len(uncited) / len(chunks), 4) if chunks else 0.0,
    }


def distributions(items: list[DatasetItem]) -> dict:
    by_split = Counter(i.split for i in items)
    base = [i for i in items if i.split in ("train", "eval")]
    return {
        "splits": dict(sorted(by_split.items())),
        "difficulty": {str(k): v for k, v in sorted(Counter(i.difficulty for i in base).items())},
        "category": dict(Counter(i.category for i in base).most_common()),
        "source": dict(Counter(i.source for i in base).most_common()),
    }


def build_report(
    items: list[DatasetItem], vectors: np.ndarray, chunks: list[Chunk], documents: list[Document], threshold: float
) -> dict:
    leaks = leakage(items, vectors, threshold)
    return {
        "distributions": distributions(items),
        "leakage": {
            "threshold": threshold,
            "near_copies": sum(r["near_copy"] for r in leaks),
            "max_similarity": max((r["similarity"] for r in leaks), default=0.0),
            "items": leaks,
        },
        "coverage": coverage(items, chunks, documents),
    }
