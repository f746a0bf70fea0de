"""The evaluation library with the fake backend: judge parsing, metrics, bootstrap, gate, judge check, report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from doctune.config import ModelSpec
from doctune.curate.embeddings import create_embedder
from doctune.evaluate import (
    GateRule,
    Verdict,
    answer_items,
    bootstrap_ci,
    check_judge,
    embedding_similarity,
    evaluate_models,
    gate_decision,
    judge_answer,
    markdown_table,
    paired_bootstrap_diff,
    token_f1,
    write_html,
    write_json,
)
from doctune.evaluate.grader import DeterministicGrader, check_grader, choose_grader, swap_numbers
from doctune.evaluate.judge import IDK_ANSWER
from doctune.llm.base import BackendError, Message
from doctune.llm.client import LLMClient, StructuredOutputError
from doctune.llm.fake import FakeBackend
from doctune.records import Citation, DatasetItem


def item(i: int, category: str | None = None, difficulty: int = 3, cluster: int = 0) -> DatasetItem:
    return DatasetItem(
        item_id=f"i{i:04d}",
        kind="qa",
        unit_id="d0-0000",
        doc_ids=["d0"],
        chunk_ids=["d0-0000"],
        k=1,
        question=f"What is the value of setting number {i}?",
        answer=f"Setting {i} is {i * 7} kilopascals.",
        evaluation_criteria=f"Must state {i * 7} kilopascals.",
        difficulty=difficulty,
        category=category or ("factual" if i % 2 else "reasoning"),
        citations=[
            Citation(quote="q", doc_id="d0", chunk_id="d0-0000", char_start=0, char_end=1, method="exact", score=100.0)
        ],
        citations_verified=True,
        model="fake",
        source="qa",
        split="eval",
        cluster=cluster,
    )


def client_for(model: str) -> LLMClient:
    return LLMClient(FakeBackend(ModelSpec(backend="fake", model=model, max_concurrency=2)), sleep=lambda _s: None)


def queued(*replies) -> LLMClient:
    return LLMClient(FakeBackend().add_replies(*replies), sleep=lambda _s: None)


def _field(messages: list[Message], label: str) -> str:
    user = next(m.content for m in reversed(messages) if m.role == "user")
    match = re.search(rf"^{label}: (.*)$", user, re.MULTILINE)
    assert match, user
    return match.group(1).strip()


def exact_judge(messages: list[Message]) -> str:
    """Correct when the graded answer equals the reference, else incorrect."""
    ok = _field(messages, "Answer to grade") == _field(messages, "Reference answer")
    return json.dumps({"reason": "compared", "verdict": "correct" if ok else "incorrect"})


FakeBackend.register_script("eval-exact-judge", exact_judge)
FakeBackend.register_script("eval-lenient-judge", lambda _m: '{"reason": "fine", "verdict": "correct"}')
ITEMS = [item(i) for i in range(1, 9)]
ANSWERS = {it.question: it.answer for it in ITEMS}
# the "base" knows the odd items only, the "tuned" model knows them all
FakeBackend.register_script(
    "eval-base", lambda m: ANSWERS[m[-1].content] if int(m[-1].content.split()[-1][:-1]) % 2 else IDK_ANSWER
)
FakeBackend.register_script("eval-tuned", lambda m: ANSWERS[m[-1].content])


# -- judge parsing ----------------------------------------------------------------------------------------------
def test_judge_valid_verdict_and_prompt_content():
    client = queued('{"reason": "States the value.", "verdict": "correct"}')
    verdict = judge_answer(client, ITEMS[0], "7 kilopascals")
    assert verdict == Verdict(reason="States the value.", verdict="correct") and verdict.score == 1.0
    sent = client.backend.requests[0]["messages"]
    user = sent[-1].content
    assert ITEMS[0].question in user and ITEMS[0].evaluation_criteria in user and ITEMS[0].answer in user
    assert "7 kilopascals" in user and "$" not in user
    assert next(iter(Verdict.model_json_schema()["properties"])) == "reason"


def test_judge_invalid_then_repaired():
    client = queued("the answer looks right to me", '```json\n{"reason": "half", "verdict": "Partially"}\n```')
    verdict = judge_answer(client, ITEMS[0], "something")
    assert verdict.verdict == "partially" and verdict.score == 0.5
    assert len(client.backend.requests) == 2


def test_judge_refusal_raises_and_empty_answer_needs_no_call():
    client = queued("I'm sorry, but I cannot grade this.")
    with pytest.raises(StructuredOutputError) as info:
        judge_answer(client, ITEMS[0], "something")
    assert info.value.reason == "refused"
    assert judge_answer(queued(), ITEMS[0], "  ").verdict == "incorrect"


def test_long_reason_is_clipped():
    assert len(Verdict(reason="x" * 1000, verdict="incorrect").reason) <= 300


# -- metrics ----------------------------------------------------------------------------------------------------
def test_token_f1_known_values():
    assert token_f1("The cat sat.", "the cat sat") == 1.0
    assert token_f1("red apple", "green pear") == 0.0
    # pred {paris, france}, ref {paris}: precision 1/2, recall 1 -> 2/3
    assert token_f1("Paris, France", "Paris") == pytest.approx(2 / 3)
    assert token_f1("x y y", "y y z") == pytest.approx(2 / 3)  # multiset overlap: 2 of 3 each way
    assert token_f1("", "") == 1.0 and token_f1("", "x") == 0.0


def test_embedding_similarity_rowwise():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    assert embedding_similarity(a, b) == pytest.approx([1.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        embedding_similarity(a, b[:2])


# -- bootstrap --------------------------------------------------------------------------------------------------
def test_bootstrap_ci_contains_mean_narrows_and_is_reproducible():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 2, 30).astype(float)
    large = rng.integers(0, 2, 3000).astype(float)
    mean, low, high = bootstrap_ci(small)
    assert low <= mean <= high and mean == pytest.approx(small.mean())
    _, low_l, high_l = bootstrap_ci(large)
    assert high_l - low_l < high - low
    assert bootstrap_ci(small, seed=3) == bootstrap_ci(small, seed=3)
    assert bootstrap_ci([0.5]) == (0.5, 0.5, 0.5)
    assert all(np.isnan(bootstrap_ci([])))


def test_paired_diff_identical_is_zero_width():
    values = [0, 1, 0.5, 1, 0, 1]
    assert paired_bootstrap_diff(values, values) == (0.0, 0.0, 0.0)
    diff, low, high = paired_bootstrap_diff([0] * 20, [1] * 20)
    assert diff == low == high == 1.0
    with pytest.raises(ValueError):
        paired_bootstrap_diff([1, 2], [1])


# -- gate -------------------------------------------------------------------------------------------------------
def fake_report(base: list[float], tuned: list[float]) -> dict:
    def rows(scores):
        return [
            {"item_id": f"i{i}", "score": s, "token_f1": s, "embedding_similarity": s} for i, s in enumerate(scores)
        ]

    return {
        "settings": {"n_resamples": 2000, "confidence": 0.95, "seed": 0},
        "results": {"base": {"eval": {"items": rows(base)}}, "tuned": {"eval": {"items": rows(tuned)}}},
    }


def test_gate_pass():
    passed, reason = gate_decision(
        fake_report([0, 0, 1] * 10, [1, 1, 1] * 10), GateRule(min_margin=0.1), "base", "tuned"
    )
    assert passed, reason
    assert "passes" in reason


def test_gate_fails_on_margin():
    passed, reason = gate_decision(
        fake_report([0, 0, 1] * 10, [1, 1, 1] * 10), GateRule(min_margin=0.9), "base", "tuned"
    )
    assert not passed and "margin" in reason


def test_gate_fails_when_ci_crosses_zero():
    base = [0, 1, 0, 1, 1, 0, 1, 0, 1, 0]
    tuned = [1, 0, 1, 1, 0, 0, 1, 1, 0, 1]  # +0.1 on average, noisy
    rule = GateRule(min_margin=0.0, require_ci_above_zero=True)
    passed, reason = gate_decision(fake_report(base, tuned), rule, "base", "tuned")
    assert not passed and "CI" in reason
    assert gate_decision(fake_report(base, tuned), GateRule(require_ci_above_zero=False), "base", "tuned")[0]
    assert not gate_decision(fake_report(base, tuned), GateRule(split="other"), "base", "tuned")[0]


# -- judge check ------------------------------------------------------------------------------------------------
def test_check_judge_agreement():
    good = check_judge(client_for("eval-exact-judge"), ITEMS)
    assert good["reference_correct"] == 1.0 and good["wrong_incorrect"] == 1.0 and good["agreement"] == 1.0
    assert set(good["by_kind"]) == {"echo", "same_topic", "swapped_numbers", "dont_know"} and good["n_failed"] == 0
    assert len(good["cases"]) == 5 * len(ITEMS)  # the reference and four hard wrong answers per item
    lenient = check_judge(client_for("eval-lenient-judge"), ITEMS)
    assert lenient["reference_correct"] == 1.0 and lenient["wrong_incorrect"] == 0.0


def test_a_judge_that_calls_everything_correct_gives_way_to_the_deterministic_grader():
    grader, decision = choose_grader(client_for("eval-lenient-judge"), ITEMS, floor=0.8, max_items=20)
    assert isinstance(grader, DeterministicGrader)
    assert "failed its check" in decision["why"] and decision["deterministic_check"]["agreement"] == 1.0
    report = evaluate_models({"tuned": client_for("eval-tuned")}, {"eval": ITEMS}, grader, n_resamples=100)
    assert report["results"]["tuned"]["eval"]["accuracy"]["mean"] == 1.0 and report["judge"] == grader.label()


def test_a_good_judge_decides():
    grader, decision = choose_grader(client_for("eval-exact-judge"), ITEMS, floor=0.8, max_items=20)
    assert grader.label() == "judge fake:eval-exact-judge" and "passed its check" in decision["why"]
    assert "deterministic_check" not in decision


def test_the_deterministic_grader_fails_echoes_swapped_numbers_and_other_facts():
    grader = DeterministicGrader()
    first = ITEMS[0]  # "What is the value of setting number 1?" -> "Setting 1 is 7 kilopascals."
    assert grader.grade(first, first.answer).verdict == "correct"
    assert grader.grade(first, "7 kPa, i.e. 7 kilopascals").verdict == "correct"
    assert grader.grade(first, first.question).verdict == "incorrect"  # the question echoed back
    assert swap_numbers(first.answer) == "Setting 2 is 8 kilopascals."
    assert grader.grade(first, "Setting 1 is 8 kilopascals.").verdict == "incorrect"  # a swapped number
    assert grader.grade(first, ITEMS[1].answer).verdict == "incorrect"  # another item's fact
    assert grader.grade(first, IDK_ANSWER).verdict == "incorrect" and grader.grade(first, " ").verdict == "incorrect"
    check = check_grader(grader, ITEMS)
    assert check["reference_correct"] == 1.0 and check["wrong_incorrect"] == 1.0


# -- answering and the report -----------------------------------------------------------------------------------
def test_answer_items_records_failures():
    client = queued("first", BackendError("boom"), "third")
    answers = answer_items(client, ITEMS[:3], "Be brief.", 64, max_concurrency=1)
    assert list(answers) == ["first", "", "third"]
    assert answers.errors == [{"item_id": ITEMS[1].item_id, "error": "BackendError: boom"}]
    params = client.backend.requests[0]["params"]
    assert params.temperature == 0.0 and params.max_tokens == 64
    assert client.backend.requests[0]["messages"][0].content == "Be brief."


def test_evaluate_models_and_writers(tmp_path):
    splits = {"eval": ITEMS[:6], "rephrased_eval": ITEMS[2:]}
    judge = client_for("eval-exact-judge")
    embedder = create_embedder(ModelSpec(backend="fake"))
    models = {"base": client_for("eval-base"), "tuned": client_for("eval-tuned")}
    report = evaluate_models(models, splits, judge, embedder=embedder, baseline="base", n_resamples=500)
    base, tuned = report["results"]["base"]["eval"], report["results"]["tuned"]["eval"]
    assert tuned["accuracy"]["mean"] == 1.0 and base["accuracy"]["mean"] == 0.5
    assert base["accuracy"]["low"] <= 0.5 <= base["accuracy"]["high"]
    assert set(base["by_category"]) == {"factual", "reasoning"}
    assert base["by_category"]["factual"]["mean"] == 1.0 and base["by_category"]["reasoning"]["mean"] == 0.0
    assert list(base["by_difficulty"]) == ["easy (1-3)"]
    row = tuned["items"][0]
    assert row["verdict"] == "correct" and row["token_f1"] == 1.0 and row["embedding_similarity"] == pytest.approx(1.0)
    cmp = next(c for c in report["comparisons"] if c["split"] == "eval" and c["metric"] == "accuracy")
    assert cmp["diff"] == 0.5 and cmp["low"] > 0
    assert gate_decision(report, GateRule(split="eval", min_margin=0.2), "base", "tuned")[0]

    path = write_json(report, tmp_path / "report.json")
    assert json.loads(path.read_text())["models"] == ["base", "tuned"]
    table = markdown_table(report)
    page = write_html(report, tmp_path / "report.html").read_text()
    for text in (table, page, path.read_text()):
        for name in ("base", "tuned", "eval", "rephrased_eval"):
            assert name in text
    assert "<script" in page and not re.search(r"<script[^>]*\bsrc=", page)  # plotly.js inlined: works offline
    assert len(page) > 1_000_000


def test_report_records_judge_refusal():
    judge = queued(*["I'm sorry, I can't help with that."] * 1)
    FakeBackend.register_script("eval-one", lambda _m: "an answer")
    report = evaluate_models({"m": client_for("eval-one")}, {"eval": ITEMS[:1]}, judge, n_resamples=100)
    row = report["results"]["m"]["eval"]["items"][0]
    assert row["verdict"] is None and row["score"] is None and "refused" in row["judge_error"]
    assert report["results"]["m"]["eval"]["n_judge_failures"] == 1
    assert report["results"]["m"]["eval"]["accuracy"]["mean"] is None
    assert "m" in markdown_table(report)


def test_eval_stage_with_role_models_and_judge_check(tmp_path):
    """Any configured model (here two scripted ones standing in for OpenAI-compatible endpoints) can be evaluated."""
    import json as _json

    from doctune.config import DoctuneConfig
    from doctune.registry import Registry
    from doctune.stages import evaluate as stage
    from doctune.workspace import Workspace

    FakeBackend.register_script("knows", lambda m: m[-1].content.split("?")[0] + ": yes, the reference holds.")
    verdict = _json.dumps({"reason": "ok", "verdict": "correct"})
    cfg = DoctuneConfig.model_validate(
        {
            "workspace": str(tmp_path),
            "models": {
                "generator": {"backend": "fake", "options": {"default_reply": "I do not know."}},
                "rephraser": {"backend": "fake", "model": "knows"},
                "judge": {"backend": "fake", "options": {"default_reply": verdict}},
                "embedder": {"backend": "fake"},
            },
            "evaluate": {"splits": ["eval"], "n_resamples": 200},
        }
    )
    ws = Workspace(tmp_path)
    rows = [item(i).model_copy(update={"split": "eval"}) for i in range(4)]
    ws.start_run("curate", cfg).write_artifact("dataset", rows, DatasetItem)
    result = stage.run(cfg, ws, models=["role:generator", "role:rephraser"], progress=False)
    assert "role:generator" in result.stats["markdown"] and "role:rephraser" in result.stats["markdown"]
    assert result.stats["judge_check"]["wrong_incorrect"] == 0.0  # a judge that passes everything is caught
    assert result.stats["markdown"].startswith("Graded by deterministic grader")  # ... and does not grade
    assert set(result.stats["gate"]) == {"role:rephraser"}
    assert Registry(ws).list_entries() == []  # role models are not registry entries: nothing recorded
