"""strategy: auto picks the recipe by backend and model size; the span recipe through the generate and curate
stages (scripted model): grounded items, rejections with reasons in `doctune status`, the rephrased_train split."""

from __future__ import annotations

import json

from doctune.config import ModelSpec
from doctune.curate.report import EVAL_SPLITS
from doctune.data import grounding_pairs
from doctune.generate.qa_runs import choose_verifier
from doctune.generate.strategy import SMALL_MODEL_BYTES, resolve_strategy
from doctune.grounding import AllVerifiers
from doctune.llm import create_backend
from doctune.llm.fake import FakeBackend
from doctune.records import DatasetItem, QAItem
from doctune.stages import curate, generate

from genutil import build_workspace, qa_reply


def test_auto_gives_small_local_models_the_span_recipe(tmp_path):
    small = tmp_path / "small.gguf"
    small.write_bytes(b"\0" * 1024)
    large = tmp_path / "large.gguf"
    with large.open("wb") as fh:  # sparse: no disk is used
        fh.truncate(SMALL_MODEL_BYTES + 1)
    assert resolve_strategy("auto", create_backend(ModelSpec(backend="local", model=str(small)))) == "span"
    assert resolve_strategy("auto", create_backend(ModelSpec(backend="local", model=str(large)))) == "one_call"
    endpoint = ModelSpec(backend="openai", model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
    assert resolve_strategy("auto", create_backend(endpoint)) == "one_call"
    assert resolve_strategy("auto", FakeBackend()) == "one_call"
    assert resolve_strategy("cite_first", create_backend(ModelSpec(backend="local", model=str(small)))) == "cite_first"


def test_auto_with_the_embedded_default_is_span():
    assert resolve_strategy("auto", create_backend(ModelSpec(backend="local"))) == "span"


def _span_workspace(tmp_path, reply: str, strategy: str = "span"):
    return build_workspace(
        tmp_path,
        {
            "models.generator": {"backend": "fake", "options": {"default_reply": reply}},
            "models.embedder": {"backend": "fake"},
            "generate.strategy": strategy,
            "curate.label_clusters": False,
            "curate.eval_share": 0.25,
            "curate.rephrase_eval": False,
            "curate.rephrase_train": 4,
        },
    )


def test_span_items_are_grounded_and_traceable(tmp_path):
    cfg, ws = _span_workspace(tmp_path, "Why do bees dance?")  # every model question is refused
    result = generate.run_qa(cfg, ws, progress=False)
    items = ws.read_rows("qa", QAItem, cfg)
    assert items and result.stats["strategy"] == "span"
    assert result.stats["grounded_share"] == 1.0
    assert all(i.question_source == "template" and not i.grounding and i.citations_verified for i in items)
    for item in items:
        quote = item.citations[0].quote
        assert item.answer in " ".join(quote.split())  # the answer is a span of the cited text
        assert item.alt_question and item.alt_question != item.question
    by_question = {i.question: i for i in items}
    uranus = by_question["Uranus rotates on its side with an axial tilt of how many degrees?"]
    assert (uranus.answer, uranus.category, uranus.difficulty) == ("98 degrees", "factual", 1)
    assert len({i.question.split()[0] for i in items}) >= 3


def test_rejected_items_are_listed_with_their_reason_in_status(tmp_path, capsys):
    from typer.testing import CliRunner

    from doctune.cli import app

    # one_call with a reply whose answer its quote does not support: rejected as ungrounded
    bad = (
        '{"items": [{"question": "How many moons does Mercury have?", "answer": "Mercury has 12 moons.", '
        '"evaluation_criteria": "Must say 12 moons.", "difficulty": 2, "category": "factual", '
        '"citations": ["Venus has a thick atmosphere of carbon dioxide"]}]}'
    )
    cfg, ws = _span_workspace(tmp_path, bad, strategy="one_call")
    result = generate.run_qa(cfg, ws, progress=False)
    assert result.counts["items"] == 0 and result.stats["rejected"]
    # the chunk holding the quote: the quote does not ground the answer; the other chunks: the quote is not there
    assert {r["reason"] for r in result.stats["rejected"]} == {"ungrounded, unanswerable", "citations_unverified"}
    out = CliRunner().invoke(app, ["-w", str(ws.root), "status"], env={"COLUMNS": "200"}).output
    assert "rejected (ungrounded, unanswerable): 'How many moons does Mercury have?' -> 'Mercury has 12 moons.'" in out


def test_rephrased_train_asks_taught_facts_in_the_other_wording(tmp_path):
    cfg, ws = _span_workspace(tmp_path, "Why do bees dance?")
    generate.run_qa(cfg, ws, progress=False)
    curate.run_dedup(cfg, ws, progress=False)
    curate.run_cluster(cfg, ws, progress=False)
    result = curate.run_split(cfg, ws, progress=False)
    dataset = ws.read_rows("dataset", DatasetItem, cfg)
    train = {d.item_id: d for d in dataset if d.split == "train"}
    taught = [d for d in dataset if d.split == "rephrased_train"]
    assert len(taught) == 4 and result.stats["rephrase_train"]["from"] == "alt_question"
    for item in taught:
        original = train[item.source_item_id]  # a fact that was taught ...
        assert item.question == original.alt_question != original.question  # ... asked in another wording
        assert item.answer == original.answer and item.citations == original.citations
    assert "rephrased_train" not in EVAL_SPLITS  # exempt from the leakage flag by design


def _labelled_judge(messages) -> str:
    """A judge that knows the labelled pairs: right on every one of them, and says "grounded" otherwise."""
    user = messages[-1].content
    found = (p["label"] for p in grounding_pairs() if f"Question: {p['question']}\n\nAnswer: {p['answer']}\n" in user)
    label = next(found, True)
    return json.dumps({"reason": "checked", "supported": label, "question_about_citation": label})


FakeBackend.register_script("labelled-judge", _labelled_judge)
FakeBackend.register_script("qa-script", qa_reply)


def test_the_llm_verifier_joins_only_after_passing_its_check(tmp_path):
    good = {"backend": "fake", "model": "labelled-judge"}
    yes_man = {"backend": "fake", "options": {"default_reply": '{"reason": "ok", "supported": true, '
                                                                '"question_about_citation": true}'}}  # fmt: skip
    for judge, used in ((good, True), (yes_man, False)):
        cfg, ws = build_workspace(
            tmp_path / str(used),
            {"models.judge": judge, "generate.llm_verifier": True, "generate.verifier_check_pairs": 10},
        )
        verifier, stats = choose_verifier(cfg, ws)
        assert stats["llm"]["used"] is used and stats["llm"]["n"] == 10
        assert isinstance(verifier, AllVerifiers) is used
        if used:
            assert stats["llm"]["precision"] == stats["llm"]["recall"] == 1.0
            result = generate.run_qa(cfg, ws, progress=False)
            assert result.stats["verifiers"]["llm"]["used"] and result.counts["items"] > 0
        else:  # it calls every wrong answer grounded: half its "grounded" verdicts are wrong
            assert stats["llm"]["precision"] == 0.5


def test_rephrased_train_from_the_rephraser_drops_bad_rewordings(tmp_path):
    reply = '{"question": "Which planet spins on its side with a tilt?", "answer": "x"}'
    cfg, ws = build_workspace(
        tmp_path,
        {
            "models.embedder": {"backend": "fake"},
            "models.rephraser": {"backend": "fake", "options": {"default_reply": reply}},
            "curate.label_clusters": False,
            "curate.rephrase_eval": False,
            "curate.rephrase_train": 3,
        },
    )
    generate.run_qa(cfg, ws, progress=False)  # one_call items: no second wording, the rephraser rewords
    curate.run_dedup(cfg, ws, progress=False)
    curate.run_cluster(cfg, ws, progress=False)
    result = curate.run_split(cfg, ws, progress=False)
    taught = [d for d in ws.read_rows("dataset", DatasetItem, cfg) if d.split == "rephrased_train"]
    rejected = [e for e in ws.manifest()["dataset"].errors if "rephrase rejected" in e["reason"]]
    assert len(taught) + len(rejected) == 3 and rejected  # a rewording about another subject is dropped, said why
    assert all("asks about something else" in e["reason"] for e in rejected)
    assert result.stats["rephrase_train"]["items"] == len(taught)
    for item in taught:
        assert item.answer != "x"  # the reference stays the taught answer
