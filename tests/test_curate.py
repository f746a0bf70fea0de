from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from doctune.curate.clusters import cluster_vectors, elbow_point, plot_k_selection
from doctune.curate.report import build_report
from doctune.curate.splits import ManualSetError, load_manual_set, mirror_sample, split_train_eval
from doctune.records import Chunk, Citation, DatasetItem, Document


def item(
    i: int, cluster: int = 0, difficulty: int = 3, chunk: str = "d0-0000", question: str | None = None
) -> DatasetItem:
    return DatasetItem(
        item_id=f"i{i:04d}",
        kind="qa",
        unit_id=chunk,
        doc_ids=[chunk.split("-")[0]],
        chunk_ids=[chunk],
        k=1,
        question=question or f"Question number {i}?",
        answer=f"Answer {i}.",
        evaluation_criteria="Must say the answer.",
        difficulty=difficulty,
        category="factual" if i % 2 else "reasoning",
        citations=[
            Citation(
                quote="q",
                doc_id=chunk.split("-")[0],
                chunk_id=chunk,
                char_start=0,
                char_end=1,
                method="exact",
                score=100.0,
            )
        ],
        citations_verified=True,
        model="fake",
        source="qa",
        split="unassigned",
        cluster=cluster,
    )


def blobs(n_per: int, centers: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim)) * 5
    x = np.concatenate([c[k] + rng.normal(scale=0.3, size=(n_per, dim)) for k in range(centers)])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_kmeans_finds_planted_clusters_and_plots(tmp_path):
    vectors = blobs(20, 3)
    result = cluster_vectors(vectors, 2, 8, seed=0)
    assert result.selection.best_k == 3
    assert len(set(result.labels[:20])) == 1 and len(set(result.labels.tolist())) == 3
    png = plot_k_selection(result.selection, tmp_path / "k.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cluster_vectors(vectors[:1], 2, 8).selection is None


def test_elbow_point():
    assert elbow_point([1, 2, 3, 4, 5, 6], [100, 40, 12, 10, 9, 8]) == 3


def test_splits_disjoint_stratified_reproducible():
    items = [item(i, cluster=i % 3, difficulty=1 + (i % 9)) for i in range(90)]
    train, ev, strata = split_train_eval(items, 0.2, None, seed=7)
    assert len(ev) == 18 and len(train) == 72
    assert not {i.item_id for i in train} & {i.item_id for i in ev}
    assert {i.split for i in train} == {"train"} and {i.split for i in ev} == {"eval"}
    assert Counter(i.cluster for i in ev) == {0: 6, 1: 6, 2: 6}  # proportional to cluster sizes
    assert strata == "cluster x difficulty"
    _, again_ev, _ = split_train_eval(list(reversed(items)), 0.2, None, seed=7)
    assert sorted(i.item_id for i in again_ev) == sorted(i.item_id for i in ev)
    other = split_train_eval(items, 0.2, None, seed=8)[1]
    assert sorted(i.item_id for i in other) != sorted(i.item_id for i in ev)
    # too few items per cluster x difficulty: clusters alone
    sparse = [item(i, cluster=i % 2, difficulty=1 + i) for i in range(8)]
    assert split_train_eval(sparse, 0.25, None, 0)[2] == "cluster"
    assert len(split_train_eval(items, 0.2, 30, 0)[1]) == 30


def test_mirror_is_a_sample_of_train():
    train = [item(i).model_copy(update={"split": "train"}) for i in range(30)]
    mirror = mirror_sample(train, 10, seed=1)
    assert len(mirror) == 10 and {m.split for m in mirror} == {"mirror"}
    assert {m.item_id for m in mirror} <= {t.item_id for t in train}
    assert mirror == mirror_sample(list(reversed(train)), 10, seed=1)


def test_manual_set_csv_jsonl_and_errors(tmp_path):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("question,answer,criteria\nWho wrote Hamlet?,Shakespeare,Names Shakespeare\n")
    [m] = load_manual_set(csv_path)
    assert (m.split, m.question, m.evaluation_criteria) == ("manual", "Who wrote Hamlet?", "Names Shakespeare")
    jl = tmp_path / "m.jsonl"
    jl.write_text(json.dumps({"question": "Q?", "answer": "A", "evaluation_criteria": "C", "difficulty": 7}) + "\n")
    assert load_manual_set(jl)[0].difficulty == 7
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nQ?,A\n")
    with pytest.raises(ManualSetError, match="bad.csv: row 1 lacks criteria"):
        load_manual_set(bad)
    with pytest.raises(ManualSetError, match="no such file"):
        load_manual_set(tmp_path / "nope.csv")
    broken = tmp_path / "b.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(ManualSetError, match="line 1 is not valid JSON"):
        load_manual_set(broken)


def test_report_flags_planted_near_copy_and_uncited_chunks():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 16)).astype(np.float32)
    vectors[5] = vectors[1] + rng.normal(scale=0.01, size=16)  # eval item 5 is a near-copy of train item 1
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = [item(i, chunk=f"d0-000{i % 2}").model_copy(update={"split": "train"}) for i in range(4)]
    items += [
        item(4, chunk="d0-0000").model_copy(update={"split": "eval"}),
        item(5).model_copy(update={"split": "eval"}),
    ]
    chunks = [
        Chunk(chunk_id=f"d0-000{i}", doc_id="d0", index=i, text="t", char_start=0, char_end=1, n_chars=1)
        for i in range(3)
    ]
    docs = [Document(doc_id="d0", source_path="a.md", format="md", title="A", text="t", n_chars=1)]
    report = build_report(items, vectors, chunks, docs, threshold=0.9)
    flagged = [r for r in report["leakage"]["items"] if r["near_copy"]]
    assert [(r["item_id"], r["nearest_train_id"]) for r in flagged] == [("i0005", "i0001")]
    assert report["coverage"]["uncited_chunks"] == [{"chunk_id": "d0-0002", "source_path": "a.md"}]
    assert report["coverage"]["documents"][0]["chunks_cited"] == 2
    assert report["distributions"]["splits"] == {"eval": 2, "train": 4}
