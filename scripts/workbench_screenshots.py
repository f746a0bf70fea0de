"""Screenshots of every workbench page for the README, from a real workspace (`make demo`'s, by default).

    .venv/bin/python scripts/workbench_screenshots.py --workspace demo-work --characters characters-work

Starts the app in-process on a free port and drives Debian's headless Chromium with Playwright; writes
docs/workbench/<page>.png. The Talk screenshots come from the characters workspace (examples/characters.yaml),
which has adapters and conversation logs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from doctune.config import load_config
from doctune.serve import create_app
from doctune.serve.server import serve_in_thread
from doctune.workspace import Workspace

OUT = Path(__file__).resolve().parent.parent / "docs" / "workbench"


def app_for(workspace: Path, config: Path | None):
    cfg = load_config(config, [], workspace=workspace)
    return create_app(Workspace(cfg.workspace), cfg, reviewer="screenshots")


def shoot(page, url: str, name: str, wait: str | None = None, full: bool = False) -> None:
    page.goto(url)
    if wait:
        page.wait_for_selector(wait)
    page.wait_for_timeout(400)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)
    print(f"{name}: {url}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("demo-work"))
    parser.add_argument("--config", type=Path, default=Path("doctune.yaml"))
    parser.add_argument("--characters", type=Path, default=Path("characters-work"))
    parser.add_argument("--characters-config", type=Path, default=Path("examples/characters.yaml"))
    parser.add_argument("--character", default="HAMLET", help="Who to talk to on the Talk screenshot.")
    parser.add_argument("--say", default="My lord, what troubles you tonight?")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        with serve_in_thread(app_for(args.workspace, args.config)) as url:
            shoot(page, url + "/", "overview")
            shoot(page, url + "/browse", "browse")
            page.goto(url + "/browse")
            first = page.query_selector("table a[href^='/browse/items/']")
            if first is not None:
                shoot(page, url + first.get_attribute("href"), "item", wait="mark.cite")
            shoot(page, url + "/review", "review")
            shoot(page, url + "/compare", "compare")
            page.goto(url + "/compare")
            items = page.query_selector("a[href^='/compare/items']")
            if items is not None:
                shoot(page, url + items.get_attribute("href"), "compare-items")
            shoot(page, url + "/models", "models")
            page.goto(url + "/models")
            model = page.query_selector("a[href^='/models/']")
            if model is not None:
                shoot(page, url + model.get_attribute("href"), "model")
        if args.characters.exists():
            with serve_in_thread(app_for(args.characters, args.characters_config)) as url:
                page.goto(url + "/talk")
                page.select_option("#talk-character", value=args.character) if args.character else None
                page.fill("#talk-input", args.say)
                page.click("#talk-send")
                page.wait_for_selector(".msg.reply:not(.pending)", timeout=180_000)
                page.wait_for_timeout(300)
                page.screenshot(path=str(OUT / "talk.png"))
                print("talk: a streamed character reply")
                shoot(page, url + "/talk/conversations", "conversations")
                page.goto(url + "/talk/conversations")
                conv = page.query_selector("a[href*='-conversation-']") or page.query_selector(
                    "a[href^='/talk/conversations/']"
                )
                if conv is not None:
                    shoot(page, url + conv.get_attribute("href"), "transcript")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
