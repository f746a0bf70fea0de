"""The talk page: a reply streamed into the browser from the real embedded SmolLM2, a character chat logged like
`doctune chat --character`, a conversation log read back escaped with its per-turn settings, and a conversation
started from the page (real base model, no adapters) whose turns arrive through the polling route."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from doctune.converse.log import ConversationLog, TurnRecord
from doctune.records import Speech
from doctune.serve import create_app
from test_fidelity import _hamlet_speeches
from workbench import chromium_page, live_server

from genutil import build_workspace

EVIL = "<b>bold</b><script>window.pwned=1</script>"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("talk")
    cfg, ws = build_workspace(root / "ws", {"converse.max_tokens": 6, "converse.rag": False, "converse.boost_words": 4})
    ws.start_run("ingest", cfg).write_artifact("speeches", _hamlet_speeches(), Speech)
    return create_app(ws, cfg)


def _client(app) -> TestClient:
    return TestClient(app, headers={"X-Doctune-CSRF": app.state.ctx.csrf_secret})


def _events(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


@pytest.mark.slow
def test_a_reply_streams_into_the_page_from_the_base_model(app):
    observe = """() => {
      window.lengths = [];
      new MutationObserver(() => {
        const reply = document.querySelector('.msg.reply');
        const text = document.querySelector('.msg.reply .reply-text');
        if (reply && text) window.lengths.push([text.textContent.length, reply.classList.contains('pending')]);
      }).observe(document.getElementById('talk-log'), {childList: true, subtree: true, characterData: true});
    }"""
    with live_server(app) as url, chromium_page() as page:
        page.goto(url + "/talk")
        page.select_option("#talk-target", "base")
        page.fill("#talk-max-tokens", "24")
        page.evaluate(observe)
        page.fill("#talk-input", "Name three colours of the rainbow.")
        page.keyboard.press("Enter")
        page.wait_for_selector(".msg.reply.finished", timeout=60_000)
        lengths = page.evaluate("window.lengths")
        final = page.text_content(".msg.reply .reply-text")
        assert not page.query_selector(".msg.reply.error"), final
    while_streaming = [n for n, pending in lengths if pending and n > 0]
    assert len(set(while_streaming)) >= 2 and while_streaming == sorted(while_streaming), lengths
    assert final and final.strip()


@pytest.mark.slow
def test_a_character_chat_streams_and_is_logged_like_the_cli(app):
    client = _client(app)
    body = {"target": "base", "character": "ophelia", "message": "Good morrow, lady.", "settings": {"bias": False}}
    first = _events(client.post("/api/talk/chat", json=body))
    assert any("piece" in e for e in first), first
    done = first[-1]["done"]
    assert done["character"] == "OPHELIA" and done["adapter"] is None and done["settings"]["bias"] is False
    second = _events(client.post("/api/talk/chat", json=body | {"chat": done["chat"], "message": "Why so sad?"}))
    assert second[-1]["done"]["log"] == done["log"]  # the same chat goes on
    folder = app.state.ctx.workspace.root / "conversations" / done["log"]
    turns = [json.loads(line) for line in (folder / "turns.jsonl").read_text().splitlines()]
    assert [(t["speaker"], t["user"]) for t in turns] == [
        ("STRANGER", True),
        ("OPHELIA", False),
        ("STRANGER", True),
        ("OPHELIA", False),
    ]
    assert turns[3]["text"] == second[-1]["done"]["reply"] and turns[3]["settings"]["bias"] is False
    assert json.loads((folder / "header.json").read_text())["kind"] == "chat"
    assert client.post("/api/talk/chat", json=body | {"character": "Yorick"}).status_code == 404
    assert client.post("/api/talk/chat", json={"target": "no-such-run", "message": "hi"}).status_code == 404


def test_a_transcript_is_escaped_and_shows_each_turns_settings(app):
    ws = app.state.ctx.workspace
    header = {"characters": ["HAMLET", "OPHELIA"], "scenario": {"title": "Nunnery"}, "seed": 3, "base_model": "m"}
    with ConversationLog(ws.root, "conversation", header) as log_:
        log_.append(TurnRecord(turn=0, speaker="HAMLET", text="Get thee to a nunnery.", present=["HAMLET", "OPHELIA"]))
        log_.append(
            TurnRecord(
                turn=1,
                speaker="OPHELIA",
                text=EVIL,
                adapter="run-ophelia",
                present=["HAMLET", "OPHELIA"],
                seed=4,
                latency_s=0.5,
                prompt_tokens=30,
                completion_tokens=7,
                settings={"rag": True, "bias": False, "temperature": 0.7},
                sources=["Hamlet 3.1 #12"],
                boosted_used=["lord"],
            )
        )
    client = _client(app)
    for bad in ("..%2F..%2Fmanifest.json", "%2E%2E", "x%2F..%2F..", "no-such-conversation"):
        assert client.get(f"/talk/conversations/{bad}").status_code == 404, bad
        assert client.get(f"/api/talk/conversations/{bad}/turns").status_code == 404, bad
    polled = client.get(f"/api/talk/conversations/{log_.id}/turns?after=1").json()
    assert polled["total"] == 2 and [t["text"] for t in polled["turns"]] == [EVIL] and polled["state"] == "logged"
    assert log_.id in client.get("/talk/conversations").text
    with live_server(app) as url, chromium_page() as page:
        page.goto(f"{url}/talk/conversations/{log_.id}")
        turn = page.wait_for_selector('.msg.turn[data-turn="1"]')
        assert turn.query_selector(".text").text_content() == EVIL  # literal text
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert page.query_selector("#transcript b") is None and page.query_selector("#transcript script") is None
        meta = turn.query_selector(".turn-meta").text_content()
        for shown in ("run-ophelia", "temperature", "0.7", "rag", "Hamlet 3.1 #12", "lord", "30 + 7"):
            assert shown in meta, (shown, meta)


@pytest.mark.slow
def test_a_conversation_started_from_the_page_grows_through_the_polling_route(app):
    client = _client(app)
    assert client.post("/api/talk/conversations", json={"characters": ["horatio"]}).status_code == 422
    assert client.post("/api/talk/conversations", json={"characters": ["horatio", "yorick"]}).status_code == 404
    assert client.post("/api/talk/conversations", json={"scenario": "no-such"}).status_code == 404
    assert TestClient(app).post("/api/talk/conversations", json={"characters": ["a", "b"]}).status_code == 403
    with live_server(app) as url, chromium_page() as page:  # the form on the page starts it
        page.goto(url + "/talk/conversations")
        selects = page.query_selector_all(".start-character")
        selects[0].select_option("HORATIO")
        selects[1].select_option("OPHELIA")
        page.fill("#start-turns", "2")
        page.fill("#start-seed", "1")
        for box, on in (("#start-rag", False), ("#start-bias", False), ("#start-base", True)):
            page.set_checked(box, on)
        page.click("#start-go")
        page.wait_for_url("**/talk/conversations/*conversation-horatio-ophelia")
        cid = page.url.rsplit("/", 1)[1]
        assert page.text_content("#transcript-state") == "running"
        page.wait_for_function(
            "document.getElementById('transcript-state').textContent !== 'running'", timeout=90_000, polling=500
        )
        assert page.text_content("#transcript-state") == "finished", page.text_content("#transcript-error")
        shown = [t.text_content() for t in page.query_selector_all(".msg.turn .who")]
        assert shown == ["HORATIO", "OPHELIA"]  # appended by the page's polling
    first = client.get(f"/api/talk/conversations/{cid}/turns?after=0").json()
    rest = client.get(f"/api/talk/conversations/{cid}/turns?after=1").json()
    assert first["state"] == "finished" and first["total"] == 2 and rest["turns"] == first["turns"][1:]
    seen = first["turns"]
    assert [t["speaker"] for t in seen] == ["HORATIO", "OPHELIA"]
    assert all(t["text"] and t["seed"] in (1, 2) and t["settings"]["rag"] is False for t in seen)
    assert all(t["adapter"] is None and t["settings"]["adapters"] is False for t in seen)
    folder = app.state.ctx.workspace.root / "conversations" / cid
    assert (folder / "transcript.md").read_text().count("**HORATIO**") == 1
    assert "finished" in client.get(f"/talk/conversations/{cid}").text
