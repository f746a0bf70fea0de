"""The workbench's Review page: reject and edit with the keyboard in the browser, the decisions reach the exported
dataset through `doctune curate split` and `doctune export`, and the agreement page reports kappa."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from doctune.cli import app as cli_app
from doctune.config import dump_config
from doctune.curate.reviews import read_reviews
from doctune.records import DatasetItem
from doctune.serve.app import create_app
from workbench import chromium_page, live_server
from workbench import curated_workspace as curated

EDITED = "It flows north into the Mediterranean Sea, edited by a reviewer."


def test_reject_and_edit_in_the_browser_reach_the_export(tmp_path, monkeypatch):
    cfg, ws = curated(tmp_path / "ws")
    app = create_app(ws, cfg, reviewer="alice")
    with live_server(app) as base, chromium_page() as page:
        page.goto(f"{base}/review?split=train")
        assert "approve" in page.locator(".toolbar .keys").text_content()
        first = page.locator("#review-item").get_attribute("data-item")
        page.keyboard.press("r")
        page.wait_for_selector("#reject-reason:focus")
        page.keyboard.type("the answer is a fragment")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#review-item:not([data-item='{first}'])")
        second = page.locator("#review-item").get_attribute("data-item")
        page.keyboard.press("e")
        answer = page.locator("#edit-box textarea[name='answer']")
        answer.wait_for()
        answer.fill(EDITED)
        answer.press("Control+Enter")
        recheck = page.locator("#recheck")
        recheck.wait_for()
        assert recheck.text_content().startswith(("grounded", "ungrounded"))
        assert "Re-check" in page.locator("#result").text_content()
        page.goto(f"{base}/review?split=train")
        assert page.locator(".notice.stale code").first.text_content() == "doctune curate split"

    reviews = read_reviews(ws)
    assert [(r.item_id, r.decision) for r in reviews] == [(first, "reject"), (second, "edit")]
    rejected, edited = reviews
    assert rejected.reviewer == edited.reviewer == "alice" and rejected.created_at and edited.created_at
    assert rejected.reason == "the answer is a fragment" and rejected.override == rejected.verifier_accepts
    assert json.loads(edited.after)["answer"] == EDITED and json.loads(edited.before)["answer"] != EDITED
    assert edited.recheck_accepts is not None and isinstance(edited.override, bool)

    (tmp_path / "doctune.yaml").write_text(dump_config(cfg))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in (["curate", "split"], ["export"]):
        res = runner.invoke(cli_app, ["-q", *args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    dataset = ws.read_rows("dataset", DatasetItem, cfg)
    assert first not in {i.item_id for i in dataset}
    from datasets import load_from_disk

    qa = load_from_disk(str(ws.root / "export" / "qa"))
    exported = {row["item_id"]: row for split in qa for row in qa[split]}
    assert first not in exported and exported[second]["answer"] == EDITED
    chat = "".join(p.read_text() for p in (ws.root / "export" / "chat").glob("*.jsonl"))
    assert EDITED in chat


def test_agreement_page_reports_kappa_for_two_reviewers(tmp_path):
    cfg, ws = curated(tmp_path / "ws")
    app = create_app(ws, cfg)
    client = TestClient(app)
    headers = {"X-Doctune-CSRF": app.state.ctx.csrf_secret}
    ids = [i["item_id"] for i in client.get("/api/items", params={"split": "train"}).json()["items"]][:3]
    assert len(ids) == 3
    plan = {"ann": ["approve", "reject", "approve"], "bob": ["approve", "reject", "reject"]}
    for reviewer, decisions in plan.items():
        for item_id, decision in zip(ids, decisions, strict=True):
            body = {"item_id": item_id, "decision": decision, "reviewer": reviewer, "reason": "r"}
            reply = client.post("/api/reviews", json=body, headers=headers)
            assert reply.status_code == 200, reply.text
            assert reply.json()["reviewer"] == reviewer
    assert client.post("/api/reviews", json={"item_id": ids[0], "decision": "approve"}).status_code == 403
    bad = client.post("/api/reviews", json={"item_id": "nope", "decision": "approve"}, headers=headers)
    assert bad.status_code == 400
    html = client.get("/review/agreement").text
    assert "ann vs bob" in html and "0.400" in html  # observed 2/3, kappa (2/3 - 4/9) / (5/9) = 0.4
    report = client.get("/api/reviews/agreement").json()
    assert report["pairs"][0]["kappa"] == 0.4
    queue = client.get("/review", params={"split": "train"}).text
    assert "doctune curate split" in queue
    reviewed = client.get("/api/items", params={"review": "reject"}).json()
    assert {i["item_id"] for i in reviewed["items"]} == {ids[1], ids[2]}
