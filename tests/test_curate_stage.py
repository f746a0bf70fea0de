"""The curate stages end to end on a small real workspace, with the fake embedder and scripted models."""

from __future__ import annotations

import json

from doctune.config import ModelSpec
from doctune.llm.fake import FakeBackend
from doctune.records import ClusterRecord, DatasetItem, DuplicateRecord, QAItem
from doctune.stages import curate, curate_report, export, generate

from genutil import build_workspace, qa_reply


def duplicated_reply(messages) -> str:
    """Two items per chunk, the second a near-copy of the first (same text, one word changed); tags when asked."""
    if messages[0].content.startswith("You tag"):
        return '{"tags": ["Astronomy", "planets", "astronomy"]}'
    item = json.loads(qa_reply(messages))["items"][0]
    twin = dict(item, question=item["question"].replace("What is said", "What is stated"), evaluation_criteria="Short.")
    return json.dumps({"items": [item, twin]})


FakeBackend.register_script("dup-script", duplicated_reply)

REWORDING = {"prefix": "Reworded", "calls": []}


def reworded_reply(messages) -> str:
    """A rephrasing marked with the current prefix; every call recorded."""
    question = messages[1].content.split("\n")[0]
    REWORDING["calls"].append(question)
    return json.dumps({"question": f"{REWORDING['prefix']}: {question}", "answer": "The same fact."})


FakeBackend.register_script("reword-script", reworded_reply)


def configure(tmp_path):
    return build_workspace(
        tmp_path,
        {
            "chunk.min_chars": 60,
            "chunk.max_chars": 140,
            "models.generator.model": "dup-script",
            "models.embedder": {"backend": "fake"},
            "models.rephraser": {"backend": "fake", "model": "reword-script"},
            "curate.dedup_threshold": 0.8,
            "curate.label_clusters": False,
            "curate.max_clusters": 4,
            "curate.eval_share": 0.3,
            "curate.mirror_size": 2,
            "curate.rephrase_train": 0,  # rephrased_train has its own tests (test_strategy.py)
        },
    )


def test_curate_pipeline_and_export(tmp_path):
    cfg, ws = configure(tmp_path)
    generate.run_qa(cfg, ws, progress=False)
    n_generated = len(ws.read_rows("qa", QAItem, cfg))

    results = curate_report.run_all(cfg, ws, progress=False)
    assert [r.stage for r in results] == [
        "curate dedup",
        "curate cluster",
        "curate split",
        "curate report",
        "curate map",
    ]

    duplicates = ws.read_rows("duplicates", DuplicateRecord, cfg)
    kept = ws.read_rows("dedup", DatasetItem, cfg)
    assert len(duplicates) == n_generated // 2 and len(kept) == n_generated - len(duplicates)
    kept_ids = {k.item_id for k in kept}
    assert all(d.duplicate_of in kept_ids and d.similarity >= 0.8 for d in duplicates)
    # the keeper of each twin pair is the one with the longer criteria
    assert all(k.evaluation_criteria != "Short." for k in kept)

    clusters = ws.read_rows("clusters", ClusterRecord, cfg)
    assert sum(c.size for c in clusters) == len(kept)
    assert (ws.root / "reports" / "k_selection.png").exists() or len(clusters) == 1

    dataset = ws.read_rows("dataset", DatasetItem, cfg)
    by_split: dict[str, list[DatasetItem]] = {}
    for row in dataset:
        by_split.setdefault(row.split, []).append(row)
    train_ids = {i.item_id for i in by_split["train"]}
    eval_ids = {i.item_id for i in by_split["eval"]}
    assert not train_ids & eval_ids and len(train_ids) + len(eval_ids) == len(kept)
    assert {m.item_id for m in by_split["mirror"]} <= train_ids and len(by_split["mirror"]) == 2
    assert {r.source_item_id for r in by_split["rephrased_eval"]} == eval_ids
    by_id = {i.item_id: i for i in by_split["eval"]}
    for r in by_split["rephrased_eval"]:  # the question reworded, the verified answer kept as the reference
        assert r.question.endswith(by_id[r.source_item_id].question) and r.question != by_id[r.source_item_id].question
        assert r.answer == by_id[r.source_item_id].answer

    report = json.loads((ws.root / "reports" / "report.json").read_text())
    assert report["distributions"]["splits"]["train"] == len(train_ids)
    assert len(report["leakage"]["items"]) == len(eval_ids) + len(by_split["rephrased_eval"])
    html = (ws.root / "reports" / "map.html").read_text()
    assert by_split["train"][0].question in html

    result = export.run(cfg, ws, progress=False)
    assert result.counts["qa/train"] == len(train_ids)
    from datasets import load_from_disk

    qa = load_from_disk(str(ws.root / "export" / "qa"))
    assert set(qa) == {"train", "eval", "rephrased_eval", "mirror"}
    assert sorted(qa["eval"]["item_id"]) == sorted(eval_ids)
    statuses = {e["name"]: e["freshness"] for e in ws.status(cfg)}
    assert all(f == "fresh" for f in statuses.values()), statuses


def test_split_merges_tags_and_manual_set(tmp_path):
    cfg, ws = configure(tmp_path)
    manual = tmp_path / "manual.csv"
    manual.write_text("question,answer,criteria\nWhich planet is largest?,Jupiter,Names Jupiter\n")
    cfg = cfg.model_copy(
        update={"curate": cfg.curate.model_copy(update={"manual_path": str(manual), "rephrase_eval": False})}
    )
    generate.run_qa(cfg, ws, progress=False)
    curate.run_dedup(cfg, ws, progress=False)
    curate.run_cluster(cfg, ws, progress=False)
    curate.run_tag(cfg, ws, progress=False)
    assert ws.freshness("tags", cfg) == "fresh"
    result = curate.run_split(cfg, ws, progress=False)
    dataset = ws.read_rows("dataset", DatasetItem, cfg)
    assert [d.question for d in dataset if d.split == "manual"] == ["Which planet is largest?"]
    assert all(d.tags == ["astronomy", "planets"] for d in dataset if d.split in ("train", "eval"))
    assert "rephrased_eval" not in result.counts


def test_split_takes_eval_rephrasings_from_a_fresh_rephrased_artifact(tmp_path):
    cfg, ws = configure(tmp_path)
    cfg = cfg.model_copy(
        update={"models": cfg.models.model_copy(update={"rephraser": ModelSpec(backend="fake", model="reword-script")})}
    )
    generate.run_qa(cfg, ws, progress=False)
    n_qa = len(ws.read_rows("qa", QAItem, cfg))
    cfg = cfg.model_copy(update={"rephrase": cfg.rephrase.model_copy(update={"max_items": n_qa // 2})})
    REWORDING["prefix"] = "From generate rephrase"
    generate.run_rephrase(cfg, ws, progress=False)
    stored = {r.source_item_id: r for r in ws.read_rows("rephrased", QAItem, cfg)}
    curate.run_dedup(cfg, ws, progress=False)
    curate.run_cluster(cfg, ws, progress=False)
    # from here on the rephraser answers differently, and no cached reply stands in for a call
    REWORDING["prefix"] = "At split"
    REWORDING["calls"].clear()
    for path in ws.cache_dir.glob("llm.sqlite*"):
        path.unlink()

    result = curate.run_split(cfg, ws, progress=False)
    dataset = ws.read_rows("dataset", DatasetItem, cfg)
    evaluation = [d for d in dataset if d.split == "eval"]
    rephrased = {r.source_item_id: r for r in dataset if r.split == "rephrased_eval"}
    assert set(rephrased) == {e.item_id for e in evaluation}
    from_artifact = [e.item_id for e in evaluation if e.item_id in stored]
    lacking = [e.item_id for e in evaluation if e.item_id not in stored]
    assert from_artifact and lacking  # both paths are exercised
    for item_id in from_artifact:  # taken from the artifact as it is, not asked for again
        assert rephrased[item_id].question == stored[item_id].question
        assert rephrased[item_id].question.startswith("From generate rephrase: ")
        assert rephrased[item_id].item_id == stored[item_id].item_id
    assert all(rephrased[i].question.startswith("At split: ") for i in lacking)
    assert len(REWORDING["calls"]) == len(lacking)  # the rephraser saw only the eval items the artifact lacks
    assert result.stats["rephrase"]["from_artifact"] == len(from_artifact)
    assert "rephrased" in ws.manifest()["dataset"].inputs
    assert ws.freshness("dataset", cfg) == "fresh"

    # a stale artifact (other rephrase settings) is ignored: the rephraser rewords every eval item
    stale = cfg.model_copy(update={"rephrase": cfg.rephrase.model_copy(update={"max_items": None})})
    assert ws.freshness("rephrased", stale).startswith("stale")
    REWORDING["calls"].clear()
    result = curate.run_split(stale, ws, progress=False)
    dataset = ws.read_rows("dataset", DatasetItem, stale)
    assert all(d.question.startswith("At split: ") for d in dataset if d.split == "rephrased_eval")
    assert result.stats["rephrase"]["from_artifact"] == 0
    assert "rephrased" not in ws.manifest()["dataset"].inputs


def test_curate_and_export_from_the_command_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from doctune.cli import app
    from doctune.config import dump_config

    cfg, ws = configure(tmp_path / "ws")
    generate.run_qa(cfg, ws, progress=False)
    (tmp_path / "doctune.yaml").write_text(dump_config(cfg))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["-q", "curate"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "leakage:" in res.output and "coverage" in res.output and "map ->" in res.output
    res = runner.invoke(app, ["-q", "curate", "map", "--color-by", "split", "--overlay", str(tmp_path / "ws")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["-q", "curate", "map", "--color-by", "nonsense"])
    assert res.exit_code == 1 and "--color-by must be one of" in res.output
    res = runner.invoke(app, ["-q", "export"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ws" / "export" / "chat" / "train.jsonl").exists()


def test_a_garbage_rewording_never_becomes_an_eval_item():
    """Rewordings the embedded rephraser really made on the demo workspace (read in the workbench's review queue):
    they were kept in rephrased_eval, with the answer reworded too, before both reworded splits were checked."""
    from doctune.curate.splits import reworded_problem

    original = "What does the help.search command (alternatively??) allow?"
    assert reworded_problem(original, "... }, { answer:", "searching for help in various ways") == "not a question"
    assert reworded_problem("Many users will come to R mainly for what?", "... ,", "its graphical facilities")
    assert reworded_problem(original, "Which searches does the help.search command allow?", "in various ways") is None
