"""The dataset map: the 2-D projection, the standalone HTML, and a real render in headless Chromium."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from doctune.config import ConfigError
from doctune.curate.mapviz import (
    COLOR_FIELDS,
    MARKER_OPACITY,
    MapPoint,
    _build_figure,
    project_2d,
    write_map_html,
)

CHROMIUM = Path("/usr/bin/chromium")

# Two clusters drawn in colours nothing else on the page uses, so that their pixels can be counted.
LEFT_COLOR = (255, 0, 255)
RIGHT_COLOR = (0, 170, 0)
PALETTE = {"left": "#ff00ff", "right": "#00aa00"}


def blobs(n_per: int = 30, dim: int = 8, seed: int = 1) -> np.ndarray:
    """Two well-separated Gaussian blobs: the first ``n_per`` rows around the origin, the rest around 10·e0."""
    rng = np.random.default_rng(seed)
    offset = np.zeros(dim)
    offset[0] = 10.0
    return np.vstack([rng.normal(0.0, 1.0, (n_per, dim)), rng.normal(0.0, 1.0, (n_per, dim)) + offset])


def make_points(n_per: int = 30, datasets: tuple[str, ...] = ("run-a",)) -> list[MapPoint]:
    xy = project_2d(blobs(n_per))
    return [
        MapPoint(
            x=float(x),
            y=float(y),
            dataset=datasets[i % len(datasets)],
            question=f"What does section {i} say about topic {i % 7}?",
            cluster="left" if i < n_per else "right",
            split=("train", "val", "test")[i % 3],
            category=("fact", "howto")[i % 2],
        )
        for i, (x, y) in enumerate(xy)
    ]


# --- projection ---


def test_pca_shape_and_determinism() -> None:
    vectors = blobs()
    first = project_2d(vectors)
    assert first.shape == (60, 2)
    assert first.dtype == np.float64
    assert np.array_equal(first, project_2d(vectors))
    # the first axis separates the blobs, and the sign convention puts the +10·e0 blob on the right
    assert first[:30, 0].max() < first[30:, 0].min()


def test_pca_sign_and_order_do_not_depend_on_row_order() -> None:
    vectors = blobs()
    perm = np.random.default_rng(3).permutation(len(vectors))
    assert np.allclose(project_2d(vectors[perm]), project_2d(vectors)[perm])


def test_pca_axes_are_the_principal_components() -> None:
    xy = project_2d(blobs())
    assert np.allclose(xy.mean(axis=0), 0.0)
    assert xy[:, 0].var() >= xy[:, 1].var()
    assert abs(np.corrcoef(xy.T)[0, 1]) < 1e-9


@pytest.mark.parametrize("n", [0, 1, 2])
def test_fewer_than_three_points(n: int) -> None:
    vectors = np.arange(n * 4, dtype=float).reshape(n, 4)
    out = project_2d(vectors)
    assert out.shape == (n, 2)
    assert np.all(np.isfinite(out))
    if n == 2:
        assert out[0, 0] != out[1, 0]
    assert project_2d(vectors, method="umap").shape == (n, 2)  # too few points for UMAP: no import needed


def test_degenerate_inputs() -> None:
    assert np.array_equal(project_2d(np.ones((5, 3))), np.zeros((5, 2)))  # no variance at all
    one_dim = project_2d(np.arange(6, dtype=float).reshape(6, 1))
    assert one_dim.shape == (6, 2)
    assert np.all(one_dim[:, 1] == 0.0)
    line = project_2d(np.outer(np.arange(5.0), [1.0, 2.0, 3.0]))  # rank 1
    assert np.all(line[:, 1] == 0.0)
    assert np.all(np.diff(line[:, 0]) > 0)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="unknown projection"):
        project_2d(blobs(), method="tsne")
    with pytest.raises(ValueError, match="NaN"):
        project_2d(np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="shape"):
        project_2d(np.zeros((2, 2, 2)))


def test_umap_missing_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` fail whether or not it is installed
    with pytest.raises(ImportError, match=re.escape("pip install 'doctune[umap]'")) as info:
        project_2d(blobs(), method="umap")
    # a ConfigError too: the CLI prints the message as one line and exits 1 instead of a traceback
    assert isinstance(info.value, ConfigError)
    assert "curate.projection: pca needs nothing extra" in str(info.value)


@pytest.mark.slow
def test_umap_projection_with_the_extra() -> None:
    pytest.importorskip("umap", reason="the optional `umap` extra (pip install 'doctune[umap]') is not installed")
    vectors = blobs()
    out = project_2d(vectors, method="umap", seed=3)
    assert out.shape == (vectors.shape[0], 2) and np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, project_2d(vectors, method="umap", seed=3))  # a seed makes it reproducible
    left, right = out[:30], out[30:]  # the two blobs stay apart
    assert np.linalg.norm(left.mean(axis=0) - right.mean(axis=0)) > 3 * max(left.std(), right.std())


# --- HTML ---


def test_html_contains_questions_and_works_offline(tmp_path: Path) -> None:
    points = make_points(datasets=("run-a", "run-b"))
    out = write_map_html(points, tmp_path / "sub" / "map.html", title="my map")
    assert out == tmp_path / "sub" / "map.html"
    page = out.read_text(encoding="utf-8")
    for p in points:
        assert p.question in page
    assert '<script src="http' not in page
    assert "<script src=" not in page  # everything, plotly.js included, is inline
    assert len(page) > 1_000_000  # plotly.js itself
    assert "my map" in page
    for field in COLOR_FIELDS:
        assert f"colour by {field}" in page


def test_html_escapes_questions(tmp_path: Path) -> None:
    question = "Is <script>alert(1)</script> & co. escaped?"
    page = write_map_html([MapPoint(0.0, 0.0, "d", question)], tmp_path / "m.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page
    assert html.escape(question).replace("/", "\\u002f") in page  # plotly's JSON writes "/" as \u002f


def test_html_is_deterministic(tmp_path: Path) -> None:
    points = make_points(datasets=("run-a", "run-b"))
    first = write_map_html(points, tmp_path / "a.html", color_by="split").read_bytes()
    second = write_map_html(points, tmp_path / "b.html", color_by="split").read_bytes()
    assert first == second


def test_color_by_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="color_by"):
        write_map_html(make_points(), tmp_path / "m.html", color_by="colour")


@pytest.mark.parametrize("color_by", COLOR_FIELDS)
def test_figure_structure(color_by: str) -> None:
    points = make_points(datasets=("run-a", "run-b", "run-c"))
    fig = _build_figure(points, color_by, "t", PALETTE)
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == [f"colour by {f}" for f in COLOR_FIELDS]
    assert fig.layout.updatemenus[0].active == COLOR_FIELDS.index(color_by)
    for field, button in zip(COLOR_FIELDS, buttons, strict=True):
        mask = button.args[0]["visible"]
        shown = [t for t, visible in zip(fig.data, mask, strict=True) if visible]
        # every colouring shows each point exactly once
        assert sum(len(t.x) for t in shown) == len(points)
        if field != "dataset":  # one symbol per dataset when colouring by something else
            symbols = {t.marker.symbol for t in shown}
            assert len(symbols) == 3
    visible = [t for t in fig.data if t.visible]
    assert sum(len(t.x) for t in visible) == len(points)
    if color_by == "cluster":
        assert {t.marker.color for t in visible} == set(PALETTE.values())


# --- a real render in headless Chromium ---


def screenshot(page: Path, tmp_path: Path) -> np.ndarray:
    """Render ``page`` in headless Chromium and return the screenshot as an RGB array."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium) to run the browser test")
    png = tmp_path / f"{page.stem}.png"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / f'chromium-{page.stem}'}",
        "--window-size=1000,700",
        "--hide-scrollbars",
        "--virtual-time-budget=10000",  # let the page's scripts finish before the screenshot
        f"--screenshot={png}",
        page.resolve().as_uri(),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert png.exists(), f"chromium wrote no screenshot (rc {result.returncode}): {result.stderr[-2000:]}"
    with Image.open(png) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def marker_mask(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> np.ndarray:
    """Pixels of a marker of colour ``rgb`` as drawn (at MARKER_OPACITY over the white background)."""
    drawn = np.array([round(c * MARKER_OPACITY + 255 * (1 - MARKER_OPACITY)) for c in rgb], dtype=np.int16)
    return np.all(np.abs(pixels - drawn) <= tol, axis=-1)


def test_browser_renders_the_points(tmp_path: Path) -> None:
    points = make_points(n_per=30)
    pixels = screenshot(write_map_html(points, tmp_path / "points.html", palette=PALETTE), tmp_path)
    left, right = marker_mask(pixels, LEFT_COLOR), marker_mask(pixels, RIGHT_COLOR)
    # 30 markers of size 8 cover well over a thousand pixels; a legend swatch alone is about 50
    assert left.sum() > 500, f"only {left.sum()} pixels of the left cluster's colour"
    assert right.sum() > 500, f"only {right.sum()} pixels of the right cluster's colour"
    left_cols, right_cols = np.nonzero(left)[1], np.nonzero(right)[1]
    # the markers are spread over the plot, not one blob of colour, and each cluster is where its data put it
    assert np.ptp(left_cols) > 50
    assert np.ptp(right_cols) > 50
    assert np.median(left_cols) + 200 < np.median(right_cols)

    empty = screenshot(write_map_html([], tmp_path / "empty.html", palette=PALETTE), tmp_path)
    assert (empty < 200).any(axis=-1).sum() > 100, "the empty page did not render at all"  # title, annotation
    assert marker_mask(empty, LEFT_COLOR).sum() < 20
    assert marker_mask(empty, RIGHT_COLOR).sum() < 20
