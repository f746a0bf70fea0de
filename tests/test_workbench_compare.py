"""The compare page: evaluation reports (written by the real report code with scripted models) side by side, the
per-item view with its regression filter, model text kept inert, and the dataset map of the filtered items."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from doctune.config import ModelSpec
from doctune.curate.embeddings import create_embedder
from doctune.evaluate import evaluate_models, write_json
from doctune.llm.base import Message
from doctune.llm.client import LLMClient
from doctune.llm.fake import FakeBackend
from doctune.records import Citation, DatasetItem, ItemEmbedding
from doctune.serve import create_app
from workbench import chromium_page, live_server

from genutil import build_workspace

EVIL = "<script>window.pwned = 1</script><b>bold</b>"


def item(i: int) -> DatasetItem:
    return DatasetItem(
        item_id=f"i{i:04d}",
        kind="qa",
        unit_id="doc0-0000",
        doc_ids=["doc0"],
        chunk_ids=["doc0-0000"],
        k=1,
        question=f"What is the value of setting number {i}?",
        answer=f"Setting {i} is {i * 7} kilopascals.",
        evaluation_criteria=f"Must state {i * 7} kilopascals.",
        difficulty=2 if i % 2 else 5,
        category="factual" if i % 2 else "reasoning",
        citations=[
            Citation(
                quote="q", doc_id="doc0", chunk_id="doc0-0000", char_start=0, char_end=1, method="exact", score=1.0
            )
        ],
        citations_verified=True,
        model="fake",
        source="qa",
        split="eval",
        cluster=0,
    )


ITEMS = [item(i) for i in range(1, 9)]
ANSWERS = {it.question: it.answer for it in ITEMS}


def _number(messages: list[Message]) -> int:
    return int(messages[-1].content.split()[-1].rstrip("?"))


def _field(messages: list[Message], label: str) -> str:
    user = next(m.content for m in reversed(messages) if m.role == "user")
    return re.search(rf"^{label}: (.*)$", user, re.MULTILINE).group(1).strip()


def exact_judge(messages: list[Message]) -> str:
    ok = _field(messages, "Answer to grade") == _field(messages, "Reference answer")
    return json.dumps({"reason": "compared", "verdict": "correct" if ok else "incorrect"})


# base knows items 1-6; tuned knows 3-8 and gets 1 and 2 wrong (2 with markup): regressions 1, 2; improvements 7, 8
FakeBackend.register_script("wb-judge", exact_judge)
FakeBackend.register_script("wb-base", lambda m: ANSWERS[m[-1].content] if _number(m) <= 6 else "no idea")
FakeBackend.register_script(
    "wb-tuned", lambda m: ANSWERS[m[-1].content] if _number(m) >= 3 else (EVIL if _number(m) == 2 else "wrong")
)


def client(model: str) -> LLMClient:
    return LLMClient(FakeBackend(ModelSpec(backend="fake", model=model, max_concurrency=2)), sleep=lambda _s: None)


def workspace_with_report(tmp_path):
    cfg, ws = build_workspace(tmp_path / "ws")
    embedder = create_embedder(ModelSpec(backend="fake"))
    report = evaluate_models(
        {"base": client("wb-base"), "tuned": client("wb-tuned")},
        {"eval": ITEMS},
        client("wb-judge"),
        embedder=embedder,
        baseline="base",
        n_resamples=200,
    )
    report["gate"] = {"tuned": {"passed": False, "reason": "accuracy on eval: below the margin", "recorded": False,
                                "not_recorded": "not a registered model"}}  # fmt: skip
    write_json(report, ws.root / "reports" / "eval-20250101T000000000000Z.json")
    vectors = embedder.embed([it.question for it in ITEMS])
    rows = [
        ItemEmbedding(item_id=it.item_id, source="qa", vector=[float(x) for x in v], model="fake")
        for it, v in zip(ITEMS, vectors, strict=True)
    ]
    ws.start_run("curate", cfg).write_artifact("embeddings", rows, ItemEmbedding)
    return cfg, ws


ITEMS_URL = "/compare/items?report=eval-20250101T000000000000Z.json&base=base&tuned=tuned&split=eval"


def shown_items(page: str) -> set[str]:
    return set(re.findall(r'data-item="([^"]+)"', page))


def test_compare_lists_reports_and_filters_items(tmp_path):
    cfg, ws = workspace_with_report(tmp_path)
    # a recipe report beside it: the shape evaluate_recipe_models writes
    recipe = {
        "recipe": "qa",
        "metrics": ["perplexity"],
        "gate_rule": {"metric": "perplexity", "split": "eval", "min_margin": 0.0, "higher_is_better": False,
                      "require_ci_above_zero": True},
        "settings": {"n_resamples": 100, "confidence": 0.95, "seed": 0, "max_tokens": 32},
        "models": [{"id": "run-1", "base_model": "tiny", "labels": {"recipe": "qa"}, "adapter_value": None,
                    "split": "eval", "n": 2,
                    "scores": {"perplexity": {
                        "base": {"mean": 2.0, "low": 1.5, "high": 2.5, "n": 2, "perplexity": 7.389},
                        "tuned": {"mean": 1.5, "low": 1.0, "high": 2.0, "n": 2, "perplexity": 4.48},
                        "diff": {"mean": -0.5, "low": -0.9, "high": -0.1, "n": 2},
                        "values": {"base": [2.0, 1.0], "tuned": [1.0, 2.0]}}},
                    "gate": {"passed": True, "reason": "perplexity improved"}}],
        "gate": {"run-1": {"passed": True, "reason": "perplexity improved", "recorded": True}},
    }  # fmt: skip
    write_json(recipe, ws.root / "reports" / "recipe-qa-20250102T000000000000Z.json")
    http = TestClient(create_app(ws, cfg))

    page = http.get("/compare").text  # newest first: the recipe report is shown by default
    assert page.index("recipe-qa-2025") < page.index("eval-2025") and "perplexity improved" in page
    both = http.get("/compare?a=eval-20250101T000000000000Z.json&b=recipe-qa-20250102T000000000000Z.json").text
    assert both.count('class="card report"') == 2 and 'class="grid2"' in both
    assert "below the margin" in both and "not a registered model" in both
    assert "0.750" in both  # base accuracy 6/8 with its interval
    assert http.get("/compare?a=../registry.json").status_code == 200  # an unknown name is reported, not read
    assert "no evaluation report named" in http.get("/compare?a=../registry.json").text

    every = http.get(ITEMS_URL).text
    assert shown_items(every) == {it.item_id for it in ITEMS}
    assert "2 regressions" in every and "2 improvements" in every
    assert shown_items(http.get(ITEMS_URL + "&change=regression").text) == {"i0001", "i0002"}
    assert shown_items(http.get(ITEMS_URL + "&change=improvement").text) == {"i0007", "i0008"}
    assert shown_items(http.get(ITEMS_URL + "&category=reasoning&change=regression").text) == {"i0002"}
    assert shown_items(http.get(ITEMS_URL + "&difficulty=2").text) == {"i0001", "i0003", "i0005", "i0007"}
    assert shown_items(http.get(ITEMS_URL + "&q=56+kilopascals").text) == {"i0008"}
    assert http.get(ITEMS_URL.replace("tuned=tuned", "tuned=nobody")).status_code == 404

    # model text is escaped
    assert "<script>window.pwned" not in every and "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in every

    # the recipe report pairs each model with its own base; lower NLL is better for perplexity
    rec = http.get("/compare/items?report=recipe-qa-20250102T000000000000Z.json").text
    assert shown_items(rec) == {"#1", "#2"}
    assert 'data-item="#1" data-change="improvement"' in rec and 'data-item="#2" data-change="regression"' in rec

    # the map of the regressions: a file under reports/workbench, served through /files
    body = {"report": "eval-20250101T000000000000Z.json", "base": "base", "tuned": "tuned", "split": "eval",
            "change": "regression"}  # fmt: skip
    assert http.post("/api/compare/map", json=body).status_code == 403  # no CSRF header
    headers = {"X-Doctune-CSRF": http.app.state.ctx.csrf_secret}
    reply = http.post("/api/compare/map", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["points"] == 2 and data["missing"] == 0
    assert re.fullmatch(r"/files/reports/workbench/compare-map-[0-9a-f]{16}\.html", data["url"])
    path = ws.root / data["url"].removeprefix("/files/")
    assert path.is_file() and "regression" in path.read_text() and "improvement" not in path.read_text()
    assert http.get(data["url"]).status_code == 200
    assert http.post("/api/compare/map", json=body, headers=headers).json()["url"] == data["url"]  # cached
    no_map = http.post("/api/compare/map", json={"report": "recipe-qa-20250102T000000000000Z.json"}, headers=headers)
    assert no_map.status_code == 409 and "embedding" in no_map.json()["detail"]


def test_regressions_in_the_browser(tmp_path):
    cfg, ws = workspace_with_report(tmp_path)
    with live_server(create_app(ws, cfg)) as url, chromium_page() as page:
        page.goto(f"{url}/compare")
        page.click("text=base vs tuned on eval")
        page.wait_for_selector("#item-filters")
        page.select_option("#f-change", "regression")
        page.click("#apply")
        page.wait_for_selector("#matched:has-text('2 of 8')")
        shown = page.eval_on_selector_all("article.item", "els => els.map(e => e.dataset.item)")
        assert sorted(shown) == ["i0001", "i0002"]
        answer = page.locator("article[data-item=i0002] .side:nth-child(2) pre.answer")
        assert answer.text_content() == EVIL  # shown as text: the markup did not run
        assert page.evaluate("window.pwned") is None and page.locator("article b").count() == 0
        page.click("#show-map")
        page.wait_for_selector("#map-frame[data-url]")
        assert "2 items on the map" in page.text_content("#map-note")
        frame = page.frame_locator("#map-frame")
        frame.locator("#doctune-map").wait_for()
    assert len(list((ws.root / "reports" / "workbench").glob("compare-map-*.html"))) == 1
