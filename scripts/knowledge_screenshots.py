"""Screenshots of the knowledge recipes' outputs for the README, from `make knowledge-demo`'s workspace.

    .venv/bin/python scripts/knowledge_screenshots.py --workspace knowledge-work

Opens the files the recipes wrote (kg/graph.html with a node clicked, a wiki article, the wiki index, the mind maps)
and the workbench's Knowledge page in Debian's headless Chromium (Playwright); writes docs/knowledge/<name>.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from doctune.config import load_config
from doctune.serve import create_app
from doctune.serve.server import serve_in_thread
from doctune.workspace import Workspace

OUT = Path(__file__).resolve().parent.parent / "docs" / "knowledge"


def shoot(page, url: str, name: str, full: bool = False) -> None:
    page.goto(url)
    page.wait_for_timeout(500)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)
    print(f"{name}: {url}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("knowledge-work"))
    parser.add_argument("--config", type=Path, default=Path("examples/knowledge.yaml"))
    parser.add_argument("--article", default="s", help="The wiki article to show (its id).")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    root = args.workspace.resolve()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        page.goto((root / "kg" / "graph.html").as_uri())
        page.wait_for_timeout(500)
        node = page.query_selector("svg g.node, svg circle")
        if node is not None:
            node.click()
            page.wait_for_timeout(300)
        page.screenshot(path=str(OUT / "graph.png"))
        print("graph: kg/graph.html")
        shoot(page, (root / "wiki" / f"{args.article}.html").as_uri(), "wiki-article", full=True)
        shoot(page, (root / "wiki" / "index.html").as_uri(), "wiki-index")
        shoot(page, (root / "mindmap" / "index.html").as_uri(), "mindmap", full=True)
        cfg = load_config(args.config, [], workspace=args.workspace)
        with serve_in_thread(create_app(Workspace(cfg.workspace), cfg, reviewer="screenshots")) as url:
            shoot(page, url + "/knowledge", "workbench-knowledge")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
