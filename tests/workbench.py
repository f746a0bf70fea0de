"""Shared helpers of the workbench tests: a curated workspace, a live server on a free port and a headless Chromium
(Debian's, driven by Playwright without downloading a browser)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from doctune.llm.fake import FakeBackend
from doctune.serve.server import serve_in_thread as live_server  # noqa: F401  (the tests' name for it)

from genutil import build_workspace, qa_reply

FakeBackend.register_script("qa-script", qa_reply)

CHROMIUM = "/usr/bin/chromium"


def curated_workspace(root: Path, overrides: dict | None = None):
    """documents -> chunks -> generate qa -> curate dedup / cluster / split, with the fake backends (fast)."""
    from doctune.stages import curate, generate

    cfg, ws = build_workspace(
        root,
        {
            "models.embedder": {"backend": "fake"},
            "curate.label_clusters": False,
            "curate.max_clusters": 3,
            "curate.eval_share": 0.3,
            "curate.mirror_size": 1,
            "curate.rephrase_eval": False,
            "curate.rephrase_train": 0,
            **(overrides or {}),
        },
    )
    generate.run_qa(cfg, ws, progress=False)
    for step in (curate.run_dedup, curate.run_cluster, curate.run_split):
        step(cfg, ws, progress=False)
    return cfg, ws


@contextlib.contextmanager
def chromium_page(screenshot_dir: Path | None = None):
    """A Playwright page in headless Debian Chromium (``make browser`` installs it)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (the test set-up installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()
