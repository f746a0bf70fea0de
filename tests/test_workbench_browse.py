"""The workbench's Browse page: the item index, filters and search, highlighted citations in the browser, and item
text that tries to run script staying inert."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from doctune.records import QAItem
from doctune.serve.app import create_app
from doctune.serve.browse import page, segments
from doctune.serve.items import build_index, filter_items
from workbench import chromium_page, live_server
from workbench import curated_workspace as build_curated

EVIL_Q = '<img src=x onerror="window.pwned=1"> Which river is evil?'
EVIL_A = "<script>window.pwned=1</script> The Nile."


def curated_workspace(root):
    """generate qa -> curate dedup / cluster / split with the fake backend, plus one hostile item in ``qa``."""
    cfg, ws = build_curated(root)
    items = ws.read_rows("qa", QAItem, cfg)
    evil = items[0].model_copy(update={"item_id": "evil0001", "question": EVIL_Q, "answer": EVIL_A})
    ws.start_run("generate qa", cfg).write_artifact("qa", [*items, evil], QAItem, inputs=["chunks", "summaries"])
    return cfg, ws, items


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cfg, ws, items = curated_workspace(tmp_path_factory.mktemp("browse"))
    return cfg, ws, items, create_app(ws, cfg)


def test_segments_escape_nothing_and_merge_overlaps():
    assert segments("abcdef", [(12, 14), (11, 13)], offset=10) == [("a", False), ("bcd", True), ("ef", False)]
    assert segments("abc", []) == [("abc", False)]


def test_the_index_joins_splits_and_outcomes_and_filters_narrow(served):
    cfg, ws, items, app = served
    index = build_index(ws, cfg)
    frame = index.frame
    assert set(frame["item_id"]) >= {i.item_id for i in items} | {"evil0001"}
    evil = frame[frame["item_id"] == "evil0001"].iloc[0]
    assert evil["outcome"] == "not curated" and evil["split"] == ""
    assert (frame["outcome"] == "kept").sum() >= 2 and {"train", "eval"} <= set(index.choices["split"])
    assert frame["uncertainty"].notna().all()
    train = filter_items(index, split="train")
    assert 0 < len(train) < len(frame) and all("train" in s.split(",") for s in train["split"])
    assert list(filter_items(index, q="EVIL")["item_id"]) == ["evil0001"]
    ordered = filter_items(index, order="uncertainty")["uncertainty"].tolist()
    assert ordered == sorted(ordered)
    assert page(frame, 2, 3)["items"][0]["item_id"] == frame["item_id"].iloc[3]

    client = TestClient(app)
    everything = client.get("/api/items").json()
    assert everything["total"] == len(frame)
    in_train = client.get("/api/items", params={"split": "train", "per_page": 2}).json()
    assert in_train["total"] == len(train) and len(in_train["items"]) == min(2, len(train))
    nile = client.get("/api/items", params={"q": "nile"}).json()
    assert 0 < nile["total"] < everything["total"]
    assert all("nile" in (i["prompt"] + i["answer"]).lower() for i in nile["items"])
    assert client.get("/api/items", params={"outcome": "not curated"}).json()["total"] == 1
    html = client.get("/browse", params={"q": "nile"}).text
    assert f"<strong>{nile['total']}</strong> matching" in html
    assert client.get("/browse/documents").status_code == 200
    assert client.get("/browse/items/nope").status_code == 404


def test_citations_are_highlighted_and_hostile_text_is_inert(served, tmp_path):
    _cfg, _ws, items, app = served
    item = next(i for i in items if i.citations)
    quote = item.citations[0].quote
    with live_server(app) as base, chromium_page() as page_:
        page_.goto(f"{base}/browse?q={item.item_id}")
        page_.click(f"a[href='/browse/items/{item.item_id}']")
        marks = page_.locator("pre.source mark.cite")
        marks.first.wait_for()
        assert quote in marks.all_text_contents()
        page_.click("a.doc-link")
        page_.wait_for_selector("#document-text mark.cite")
        assert quote in page_.locator("#document-text mark.cite").all_text_contents()
        page_.screenshot(path=str(tmp_path / "document.png"))

        page_.goto(f"{base}/browse/items/evil0001")
        assert page_.locator("#item-prompt").text_content() == EVIL_Q
        assert page_.locator("#item-answer").text_content() == EVIL_A
        page_.goto(f"{base}/browse?q=evil")
        assert EVIL_Q in page_.locator("#items").text_content()
        for url in (f"{base}/browse/items/evil0001", f"{base}/browse?q=evil"):
            page_.goto(url)
            assert page_.evaluate("typeof window.pwned") == "undefined"
            assert page_.locator("img").count() == 0 and page_.locator("main script:not([src])").count() == 0
