"""The map as a person sees it: rendered by headless Chromium, screenshot checked for the points."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from doctune.curate.mapviz import MARKER_OPACITY, MapPoint, project_2d, write_map_html

CHROMIUM = "/usr/bin/chromium"
MARKERS = {"train": "#ff00ff", "eval": "#00c000"}  # colours nothing else on a plotly page uses


def screenshot(html: Path, png: Path, profile: Path) -> Image.Image:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (the test set-up installs Debian's chromium)")
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1000,700", "--virtual-time-budget=5000",
        f"--screenshot={png}", html.as_uri(),
    ]  # fmt: skip
    subprocess.run([CHROMIUM, *flags], check=True, capture_output=True, timeout=120)
    return Image.open(png).convert("RGB")


def count_colour(image: Image.Image, hex_colour: str, tolerance: int = 40) -> int:
    """Pixels of a marker colour as drawn: partly transparent markers over the white plot background."""
    pixels = np.asarray(image).astype(int)
    solid = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    target = MARKER_OPACITY * solid + (1 - MARKER_OPACITY) * 255
    return int((np.abs(pixels - target).sum(axis=2) < tolerance).sum())


def points(n: int) -> list[MapPoint]:
    rng = np.random.default_rng(0)
    xy = project_2d(rng.normal(size=(max(n, 3), 16)))[:n]
    return [
        MapPoint(x=float(x), y=float(y), dataset="demo", question=f"Question {i}?", split="train" if i % 2 else "eval")
        for i, (x, y) in enumerate(xy)
    ]


def test_map_renders_points_in_chromium(tmp_path):
    html = write_map_html(points(40), tmp_path / "map.html", color_by="split", palette=MARKERS)
    assert '<script src="http' not in html.read_text()  # works offline
    image = screenshot(html, tmp_path / "map.png", tmp_path / "profile")
    assert count_colour(image, MARKERS["train"]) > 200
    assert count_colour(image, MARKERS["eval"]) > 200

    empty = write_map_html([], tmp_path / "empty.html", color_by="split", palette=MARKERS)
    blank = screenshot(empty, tmp_path / "empty.png", tmp_path / "profile2")
    assert count_colour(blank, MARKERS["train"]) == 0 and count_colour(blank, MARKERS["eval"]) == 0


def test_map_html_has_hover_text_and_overlay_symbols(tmp_path):
    pts = [*points(6), MapPoint(x=0.0, y=0.0, dataset="other", question="Overlaid <b>question</b>?", split="train")]
    page = write_map_html(pts, tmp_path / "m.html", color_by="cluster").read_text()
    assert "Question 5?" in page and "diamond" in page
    assert "Overlaid &lt;b&gt;question&lt;\\u002fb&gt;?" in page  # escaped: hover text is not markup
    with pytest.raises(ValueError):
        write_map_html(pts, tmp_path / "bad.html", color_by="colour")
