"""The overview in a real browser: artifacts as `doctune status` sees them, and a stage running in another process
(a real `doctune generate qa` against a slow local OpenAI-compatible server) advancing live."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from doctune.serve import create_app
from doctune.testing.openai_server import ScriptedOpenAIServer, ScriptedReply
from workbench import chromium_page, live_server

from genutil import build_workspace, qa_reply


def test_overview_lists_artifacts_with_freshness(tmp_path):
    cfg, ws = build_workspace(tmp_path / "ws")
    page = TestClient(create_app(ws, cfg)).get("/").text
    for name in ("documents", "summaries", "chunks"):
        assert f'<td class="mono">{name}</td>' in page
    assert page.count('class="fresh"') == 3


def slow_reply(payload: dict) -> ScriptedReply:
    from doctune.llm import Message

    return ScriptedReply(content=qa_reply([Message(**m) for m in payload["messages"]]), delay_s=0.6)


def test_a_running_stage_advances_on_the_overview(tmp_path):
    with ScriptedOpenAIServer(slow_reply) as server:
        cfg, ws = build_workspace(
            tmp_path / "ws",
            {
                "chunk.min_chars": 60,
                "chunk.max_chars": 140,
                "models.generator": {
                    "backend": "openai",
                    "model": "scripted",
                    "base_url": server.base_url,
                    "api_key_env": "DOCTUNE_TEST_KEY",
                    "max_concurrency": 1,
                    "timeout_s": 10,
                },
            },
        )
        config_file = tmp_path / "doctune.yaml"
        config_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")), encoding="utf-8")
        doctune = Path(sys.executable).parent / "doctune"
        env = {**os.environ, "DOCTUNE_TEST_KEY": "test"}
        with live_server(create_app(ws, cfg)) as url, chromium_page() as page:
            stage = subprocess.Popen(
                [str(doctune), "-c", str(config_file), "generate", "qa"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                page.goto(url + "/")
                row = page.wait_for_selector(".progress-row", timeout=60_000)
                assert row is not None
                seen = []
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and stage.poll() is None:
                    text = page.text_content(".progress-row .n")
                    if text and text.isdigit():
                        seen.append(int(text))
                    if len(set(seen)) >= 3:
                        break
                    time.sleep(0.3)
                assert page.text_content(".progress-row").startswith("generate · qa")  # stage · bar
                assert len(set(seen)) >= 3 and seen == sorted(seen), seen  # it moved, forwards, while running
            finally:
                _out, err = stage.communicate(timeout=120)
            assert stage.returncode == 0, err.decode()[-2000:]
            page.wait_for_selector(".progress-row .badge:text('done')", timeout=10_000)
            n, total = page.text_content(".progress-row .n"), page.text_content(".progress-row .total")
            assert n == total and int(n) > 3
