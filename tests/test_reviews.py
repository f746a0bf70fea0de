"""Human review decisions: the reviews artifact, its effect on curation and export, agreement, and the CLI."""

from __future__ import annotations

import json
import threading

import pytest
from pydantic import BaseModel
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from doctune.chunking.sentences import split_sentences
from doctune.cli import app
from doctune.config import DoctuneConfig
from doctune.curate.reviews import (
    REJECTED,
    ReviewError,
    agreement_report,
    cohen_kappa,
    editable_fields,
    effective_reviews,
    find_item,
    read_reviews,
    record_review,
    support_scores,
    uncertainty,
)
from doctune.grounding import DeterministicVerifier
from doctune.llm.fake import FakeBackend
from doctune.records import DatasetItem, Example, QAItem, Review
from doctune.stages import curate, curate_examples, export, generate
from doctune.workspace import Workspace

from genutil import build_workspace, item_for, passages

CAPITALS = "recipe_plugins.capitals:CapitalsRecipe"


def twin_reply(messages) -> str:
    """A grounded item per chunk, and a near-copy of it that cites the chunk's last sentence instead (flagged
    ungrounded; dedup drops it for its shorter criteria)."""
    text = passages(messages[1].content)[0]
    sentences = split_sentences(text.split("\n", 1)[-1] if text.startswith("#") else text)
    item = item_for(sentences[:1])
    twin = dict(
        item,
        question=item["question"].replace("What is said", "What is stated"),
        evaluation_criteria="Short.",
        citations=sentences[-1:],
    )
    return json.dumps({"items": [item, twin]})


FakeBackend.register_script("review-twins", twin_reply)


def qa_workspace(tmp_path):
    cfg, ws = build_workspace(
        tmp_path,
        {
            "chunk.min_chars": 60,
            "chunk.max_chars": 140,
            "models.generator.model": "review-twins",
            "models.embedder": {"backend": "fake"},
            "models.rephraser": {
                "backend": "fake",
                "options": {"default_reply": '{"question": "Put another way, what holds?", "answer": "The same."}'},
            },
            "generate.grounding": "flag",
            "curate.dedup_threshold": 0.8,
            "curate.label_clusters": False,
            "curate.max_clusters": 3,
            "curate.eval_share": 0.3,
            "curate.mirror_size": 2,
            "curate.rephrase_train": 0,
        },
    )
    generate.run_qa(cfg, ws, progress=False)
    for step in (curate.run_dedup, curate.run_cluster, curate.run_split):
        step(cfg, ws, progress=False)
    return cfg, ws


# -- kappa and the agreement report ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        (["accept", "reject", "accept", "accept"], ["accept", "reject", "reject", "accept"]),
        (["accept", "reject", "accept", "reject"], ["reject", "accept", "reject", "accept"]),  # total disagreement
        (["a", "b", "c", "a", "b", "c", "a"], ["a", "b", "b", "a", "c", "c", "a"]),  # three labels
        (["accept"] * 5, ["accept", "accept", "reject", "accept", "accept"]),  # one rater constant
        (["x", "y"], ["x", "y"]),
    ],
)
def test_kappa_matches_sklearn(a, b):
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_kappa_degenerate_cases():
    assert cohen_kappa([], []) is None and cohen_kappa(["accept"], ["reject"]) is None
    # both raters always say the same one label: chance agreement is certain (sklearn gives nan)
    assert cohen_kappa(["accept"] * 3, ["accept"] * 3) == 1.0
    with pytest.raises(ValueError):
        cohen_kappa(["a"], ["a", "b"])


def _review(item: str, reviewer: str, decision: str, accepts: bool, at: str) -> Review:
    return Review(
        review_id=f"{item}-{reviewer}-{at}",
        item_id=item,
        recipe="qa",
        reviewer=reviewer,
        decision=decision,
        before="{}",
        created_at=at,
        verifier="grounded" if accepts else "ungrounded: echo",
        verifier_accepts=accepts,
        override=(decision == "reject") == accepts,
    )


def test_agreement_report_uses_each_reviewers_latest_decision():
    t0, t1 = "2025-01-01T00:00:00+00:00", "2025-01-02T00:00:00+00:00"
    reviews = [
        _review("i1", "ann", "reject", True, t0),
        _review("i1", "ann", "approve", True, t1),  # ann changed her mind: approve counts
        _review("i1", "bob", "edit", True, t0),
        _review("i2", "ann", "reject", False, t0),
        _review("i2", "bob", "approve", False, t0),
        _review("i3", "ann", "approve", True, t0),
        _review("i3", "bob", "approve", True, t1),
    ]
    report = agreement_report(reviews)
    pair = report["pairs"][0]
    assert pair["reviewers"] == ["ann", "bob"] and pair["n"] == 3 and pair["observed"] == pytest.approx(2 / 3, abs=1e-4)
    a, b = ["accept", "reject", "accept"], ["accept", "accept", "accept"]
    assert pair["kappa"] == pytest.approx(round(cohen_kappa_score(a, b), 4))
    ann = next(v for v in report["verifier"] if v["reviewer"] == "ann")
    assert ann["n"] == 3 and ann["observed"] == 1.0 and ann["overrides"] == 0
    bob = next(v for v in report["verifier"] if v["reviewer"] == "bob")
    assert bob["overrides"] == 1  # approved i2, which the verifier rejects
    assert report["decisions"] == {"approve": 4, "reject": 2, "edit": 1}
    # the latest decision per item, any reviewer: i1 ann approve (t1), i2 bob approve (same time, later row), i3 bob
    effective = effective_reviews(reviews)
    assert {i: (r.reviewer, r.decision) for i, r in effective.items()} == {
        "i1": ("ann", "approve"),
        "i2": ("bob", "approve"),
        "i3": ("bob", "approve"),
    }
    assert report["effective_decisions"] == {"approve": 3, "reject": 0, "edit": 0} and report["overrides"] == 1


def test_a_new_reviews_artifact_makes_datasets_stale(tmp_path):
    cfg = DoctuneConfig.model_validate({"workspace": str(tmp_path)})
    ws = Workspace(tmp_path)
    run = ws.start_run("curate split", cfg)
    for name in ("dataset", "dataset_character", "qa"):
        run.write_artifact(name, [], BaseModel)
    ws.start_run("review", cfg).write_artifact("reviews", [_review("i", "ann", "approve", True, "t")], Review)
    assert ws.freshness("dataset", cfg) == "stale (input 'reviews' is new since it was built)"
    assert ws.freshness("dataset_character", cfg).startswith("stale (input 'reviews' is new")
    assert ws.freshness("qa", cfg) == "fresh" and ws.freshness("reviews", cfg) == "fresh"
    run.write_artifact("dataset", [], BaseModel, inputs=["reviews"])
    assert ws.freshness("dataset", cfg) == "fresh"
    ws.start_run("review", cfg).write_artifact("reviews", [], Review)
    assert ws.freshness("dataset", cfg) == "stale (input 'reviews' changed since it was built)"


# -- QA items: curation and export honour the reviews --------------------------------------------------------------
def test_reviews_of_qa_items_reach_the_dataset_and_the_export(tmp_path):
    cfg, ws = qa_workspace(tmp_path / "ws")
    dataset = ws.read_rows("dataset", DatasetItem, cfg)
    curated = sorted((i for i in dataset if i.split in ("train", "eval")), key=lambda i: i.item_id)
    rejected, edited = curated[0], curated[1]
    assert all(not i.grounding for i in curated)  # the twins are flagged, and dropped as duplicates
    new_answer = "Edited by a reviewer: an answer of ninety-nine words."

    with pytest.raises(ReviewError, match="no item"):
        record_review(ws, cfg, "nope", "approve", "ann")
    with pytest.raises(ReviewError, match="unknown decision"):
        record_review(ws, cfg, rejected.item_id, "maybe", "ann")
    with pytest.raises(ReviewError, match="changes nothing"):
        record_review(ws, cfg, edited.item_id, "edit", "ann", edits={"answer": edited.answer})
    with pytest.raises(ReviewError, match="cannot edit"):
        record_review(ws, cfg, edited.item_id, "edit", "ann", edits={"target": "x"})
    assert "reviews" not in ws.manifest()

    r1 = record_review(ws, cfg, rejected.item_id, "reject", "ann", reason="vague question")
    assert (r1.recipe, r1.verifier, r1.verifier_accepts, r1.override) == ("qa", "grounded", True, True)
    r2 = record_review(ws, cfg, edited.item_id, "edit", "bob", edits={"answer": new_answer})
    assert json.loads(r2.after)["answer"] == new_answer and json.loads(r2.before)["answer"] == edited.answer
    assert r2.recheck_accepts is False and json.loads(r2.recheck)["grounded"] is False and not r2.override
    assert len(list((ws.root / "runs").glob("*-review"))) == 1  # one run folder for the day, not one per decision
    assert [r.review_id for r in read_reviews(ws)] == [r1.review_id, r2.review_id]
    assert ws.freshness("dataset", cfg) == "stale (input 'reviews' is new since it was built)"
    assert ws.freshness("dataset_qa", cfg).startswith("stale")

    # the flagged twin: the verifier rejects it, the reviewer approves it -> back in the dataset
    qa_items = ws.read_rows("qa", QAItem, cfg)
    twin = next(i for i in qa_items if i.grounding and i.item_id not in {d.item_id for d in dataset})
    target = find_item(ws, cfg, twin.item_id)
    assert target.artifact == "qa" and set(editable_fields(target)) == {"question", "answer", "evaluation_criteria"}
    assert uncertainty(target) == pytest.approx(abs(support_scores([twin])[0] - 0.75), abs=1e-3)
    r3 = record_review(ws, cfg, twin.item_id, "approve", "ann")
    assert r3.verifier.startswith("ungrounded") and not r3.verifier_accepts and r3.override

    result = curate.run_split(cfg, ws, progress=False)
    assert result.counts["rejected by reviewer"] == 1 and result.counts["edited by reviewer"] == 1
    assert result.counts["added back by reviewer"] == 1
    assert ws.freshness("dataset", cfg) == "fresh" and ws.freshness("dataset_qa", cfg) == "fresh"
    assert "reviews" in ws.manifest()["dataset"].inputs
    errors = ws.manifest()["dataset"].errors
    assert {
        "item_id": rejected.item_id,
        "unit_id": rejected.item_id,
        "reason": REJECTED,
        "detail": "ann: vague question",
    } in errors
    after = ws.read_rows("dataset", DatasetItem, cfg)
    ids = {i.item_id for i in after}
    assert rejected.item_id not in ids and twin.item_id in ids
    assert {i.answer for i in after if i.item_id == edited.item_id} == {new_answer}
    assert next(i for i in after if i.item_id == twin.item_id).cluster == -1
    seam = ws.read_rows("dataset_qa", Example, cfg)
    assert rejected.item_id not in {e.field_values()["item_id"] for e in seam}
    assert {e.target for e in seam if e.field_values()["item_id"] == edited.item_id} == {new_answer}

    export.run(cfg, ws, progress=False)
    lines = [line for path in sorted((ws.root / "export").rglob("*.jsonl")) for line in path.read_text().splitlines()]
    assert lines and not any(rejected.question in line for line in lines)
    assert any(new_answer in line for line in lines)
    from datasets import load_from_disk

    qa = load_from_disk(str(ws.root / "export" / "qa"))
    questions = [q for split in qa.values() for q in split["question"]]
    answers = [a for split in qa.values() for a in split["answer"]]
    assert rejected.question not in questions and new_answer in answers

    # a later decision wins: ann approves the item she rejected, so it comes back
    record_review(ws, cfg, rejected.item_id, "approve", "ann")
    assert ws.freshness("dataset", cfg) == "stale (input 'reviews' changed since it was built)"
    curate.run_split(cfg, ws, progress=False)
    assert rejected.item_id in {i.item_id for i in ws.read_rows("dataset", DatasetItem, cfg)}

    # the verifier's answer support, fast path == the verifier's own score
    verifier = DeterministicVerifier()
    for item, score in zip(qa_items, support_scores(qa_items), strict=True):
        expected = verifier.verify(item.question, item.answer, [c.quote for c in item.citations])
        assert score == expected.scores["answer_support"]


def test_concurrent_reviews_are_all_recorded(tmp_path):
    cfg, ws = build_workspace(tmp_path, {"models.generator.model": "review-twins", "generate.grounding": "flag"})
    generate.run_qa(cfg, ws, progress=False)
    items = ws.read_rows("qa", QAItem, cfg)[:8]
    threads = [
        threading.Thread(target=record_review, args=(ws, cfg, i.item_id, "approve", f"r{k}"))
        for k, i in enumerate(items)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.item_id for r in read_reviews(ws)) == sorted(i.item_id for i in items)
    assert ws.freshness("reviews", cfg) == "fresh"


# -- a recipe's examples --------------------------------------------------------------------------------------------
def test_reviews_of_recipe_examples(tmp_path):
    cfg, ws = build_workspace(tmp_path, {"recipes": [CAPITALS], "chunk.max_chars": 400})
    generate.run(cfg, ws, "capitals", progress=False)
    curate_examples.run(cfg, ws, "capitals", progress=False)
    rows = sorted(ws.read_rows("dataset_capitals", Example, cfg), key=lambda e: e.example_id)
    rejected, edited, approved = rows[0], rows[1], rows[2]

    target = find_item(ws, cfg, edited.example_id)
    assert (target.kind, target.recipe, target.artifact) == ("example", "capitals", "dataset_capitals")
    fields = editable_fields(target)
    assert fields["target"] == edited.target and fields["prompt"].startswith("Write in capitals")
    assert fields["fields"]["sentence"].upper() == edited.target and uncertainty(target) is None

    r1 = record_review(ws, cfg, rejected.example_id, "reject", "ann", reason="too short")
    assert (r1.recipe, r1.verifier, r1.override) == ("capitals", "passes", True)
    r2 = record_review(
        ws, cfg, edited.example_id, "edit", "ann", edits={"target": "NOT THE CAPITALS", "prompt": "Shout."}
    )
    assert r2.recheck_accepts is False and json.loads(r2.recheck)["failed"] == ["not_the_capitals"]
    record_review(ws, cfg, approved.example_id, "approve", "ann")
    assert ws.freshness("dataset_capitals", cfg).startswith("stale (input 'reviews' is new")

    result = curate_examples.run(cfg, ws, "capitals", progress=False)
    assert result.counts["rejected by reviewer"] == 1 and result.counts["edited by reviewer"] == 1
    assert result.stats["kept_by_reviewer"] == 1  # the edit fails the recipe's check; the reviewer vouched for it
    after = {e.example_id: e for e in ws.read_rows("dataset_capitals", Example, cfg)}
    assert rejected.example_id not in after and approved.example_id in after
    assert after[edited.example_id].target == "NOT THE CAPITALS"
    assert after[edited.example_id].prompt_messages[-1].content == "Shout."
    assert any(e["reason"] == REJECTED for e in ws.manifest()["dataset_capitals"].errors)
    assert ws.freshness("dataset_capitals", cfg) == "fresh"


# -- the command line -----------------------------------------------------------------------------------------------
def test_review_and_agreement_commands(tmp_path, monkeypatch):
    cfg, ws = build_workspace(tmp_path / "ws", {"models.generator.model": "review-twins", "generate.grounding": "flag"})
    generate.run_qa(cfg, ws, progress=False)
    items = sorted(ws.read_rows("qa", QAItem, cfg), key=lambda i: i.item_id)[:3]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("USER", "carol")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["--workspace", str(ws.root), *args], catch_exceptions=False)

    res = invoke("review", items[0].item_id, "reject", "--reason", "off topic")
    assert res.exit_code == 0, res.output
    assert "reject" in res.output and "carol" in res.output and "curate split" in res.output
    res = invoke("review", items[0].item_id, "approve", "--reviewer", "dave")
    assert res.exit_code == 0, res.output
    res = invoke("review", items[1].item_id, "edit", "--answer", "A new answer.", "--reviewer", "dave")
    assert res.exit_code == 0 and "verifier on the edit" in res.output, res.output
    res = invoke("review", items[1].item_id, "approve")
    assert res.exit_code == 0, res.output
    res = invoke("review", items[2].item_id, "approve", "--answer", "x")
    assert res.exit_code == 1 and "need the decision 'edit'" in res.output
    res = invoke("review", "missing-id", "approve")
    assert res.exit_code == 1 and "no item 'missing-id'" in res.output

    res = invoke("curate", "reviews")
    assert res.exit_code == 0, res.output
    assert "carol vs dave" in res.output and "carol vs verifier" in res.output
    report = json.loads((ws.root / "reports" / "reviews.json").read_text())
    assert report["reviews"] == 4 and report["reviewers"] == ["carol", "dave"]
    assert report["pairs"][0]["n"] == 2 and report["pairs"][0]["observed"] == 0.5
