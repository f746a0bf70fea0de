"""The QA family behind the recipe seam: its own curation writes dataset_qa (Example rows), which the generic
curate / export / train / eval / promote stages handle like any other recipe's examples."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import dump_config
from doctune.llm.fake import FakeBackend
from doctune.recipes import dataset_recipe, get_recipe
from doctune.records import DatasetItem, Example
from doctune.registry import Registry
from doctune.stages import curate_examples, generate

from genutil import build_workspace, qa_reply

SYSTEM = "Answer from the documents."
FakeBackend.register_script("qa-script", qa_reply)


def reworded_reply(messages) -> str:
    """The question asked again in other words; the answer kept."""
    question = messages[1].content.split("\n")[0]
    return json.dumps({"question": f"Put another way: {question}", "answer": "The same fact."})


FakeBackend.register_script("seam-reword", reworded_reply)


def configure(tmp_path, train: dict | None = None):
    return build_workspace(
        tmp_path,
        {
            "models.embedder": {"backend": "fake"},
            "models.rephraser": {"backend": "fake", "model": "seam-reword"},
            "curate.label_clusters": False,
            "curate.max_clusters": 3,
            "curate.eval_share": 0.3,
            "curate.mirror_size": 2,
            "curate.rephrase_train": 2,
            "export.system_prompt": SYSTEM,
            **({"train": train} if train else {}),
        },
    )


def test_the_qa_family_shares_dataset_qa():
    for name in ("qa", "multihop", "rephrase"):
        assert get_recipe(name).dataset_owner == "qa"
        assert dataset_recipe(name).name == "qa"
    assert dataset_recipe("character").name == "character"


def test_qa_replies_are_scored_by_the_deterministic_grader():
    item = DatasetItem(
        item_id="i1",
        unit_id="c1",
        doc_ids=["d"],
        chunk_ids=["c1"],
        question="How many moons does Mars have?",
        answer="Mars has two moons, Phobos and Deimos.",
        kind="single",
        category="factual",
        difficulty=1,
        evaluation_criteria="two moons",
        source="s",
        split="eval",
        k=1,
        citations=[],
        citations_verified=True,
        model="fake",
    )
    example = get_recipe("qa").item_example(item, SYSTEM)
    assert [m.role for m in example.messages] == ["system", "user", "assistant"] and example.split == "eval"
    qa = get_recipe("qa")
    right = qa.score_reply(example, "It has two moons: Phobos and Deimos.")
    wrong = qa.score_reply(example, "Mars has three moons, Io and Europa.")
    assert right["accuracy"] == 1.0 and wrong["accuracy"] == 0.0
    assert right["token_f1"] > wrong["token_f1"]
    assert qa.score_reply(example, "")["accuracy"] == 0.0


def test_curate_examples_qa_runs_the_qa_curation_and_writes_dataset_qa(tmp_path):
    cfg, ws = configure(tmp_path)
    generate.run_qa(cfg, ws, progress=False)
    result = curate_examples.run(cfg, ws, "qa", progress=False)
    assert result.stage == "curate split" and "dataset_qa" in result.outputs
    items = ws.read_rows("dataset", DatasetItem, cfg)
    examples = ws.read_rows("dataset_qa", Example, cfg)
    # one example per curated item, same split, the item's question and answer under the export system prompt
    assert [(e.unit_id, e.split) for e in examples] == [(i.item_id, i.split) for i in items]
    for item, ex in zip(items, examples, strict=True):
        assert [m.content for m in ex.messages] == [SYSTEM, item.question, item.answer]
        assert ex.field_values()["item_id"] == item.item_id and ex.recipe == "qa"
    assert {"train", "eval", "rephrased_train"} <= {e.split for e in examples}
    # dataset_qa follows the QA config: another system prompt makes it stale
    other = cfg.model_copy(update={"export": cfg.export.model_copy(update={"system_prompt": "Other."})})
    assert ws.freshness("dataset_qa", other) != "fresh"


@pytest.mark.slow
def test_qa_trains_evaluates_and_promotes_through_the_generic_stages(tmp_path, monkeypatch):
    train = {"max_steps": 1, "per_device_batch_size": 4, "max_length": 96, "eval_splits": ["eval"]}
    cfg, ws = configure(tmp_path / "ws", train)
    cfg = cfg.model_copy(
        update={"evaluate": cfg.evaluate.model_copy(update={"max_tokens": 8, "max_items_per_split": 4})}
    )
    generate.run_qa(cfg, ws, progress=False)
    (tmp_path / "doctune.yaml").write_text(dump_config(cfg))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def cli(*args: str):
        res = runner.invoke(app, ["-q", *args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return res.output

    cli("curate", "examples", "qa")
    cli("export", "--recipe", "qa")
    chat = (tmp_path / "ws" / "export" / "qa-examples" / "chat" / "train.jsonl").read_text().splitlines()
    assert json.loads(chat[0])["messages"][0] == {"role": "system", "content": SYSTEM}
    cli("train", "--recipe", "multihop")  # the family trains together, on dataset_qa
    entries = Registry(ws).list_entries()
    assert len(entries) == 1 and entries[0].labels == {"recipe": "qa"}
    assert entries[0].dataset_sha256 == ws.manifest()["dataset_qa"].sha256
    assert "training_runs_qa" in ws.manifest()
    out = cli("eval", "--recipe", "qa")
    assert "accuracy on rephrased_train" in out
    entry = Registry(ws).get(entries[0].id)
    assert entry.gate is not None and "accuracy" in entry.gate.reason
    assert entry.metrics["rephrased_train_accuracy"] is not None and "rephrased_train_accuracy_base" in entry.metrics
    report = json.loads(next((tmp_path / "ws" / "reports").glob("recipe-qa-*.json")).read_text())
    row = report["models"][0]
    assert row["split"] == "rephrased_train" and {"accuracy", "token_f1", "perplexity"} <= set(row["scores"])
    # one verdict per example and side: the grader ran on real replies
    assert len(row["scores"]["accuracy"]["values"]["tuned"]) == row["n"] > 0
    promote = runner.invoke(app, ["-q", "models", "promote", entries[0].id])
    assert promote.exit_code == (0 if entry.gate.passed else 1), promote.output
