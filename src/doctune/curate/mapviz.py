"""The interactive map of a curated dataset: a 2-D projection of question embeddings as a standalone HTML page.

``project_2d`` turns embedding vectors into map coordinates (PCA through numpy, or UMAP from the optional ``umap``
extra: ``pip install 'doctune[umap]'``); ``write_map_html`` draws :class:`MapPoint` s as a plotly scatter in one
self-contained HTML file (plotly.js inlined, so it opens offline). Points are coloured by cluster, split, category
or dataset, a dropdown in the page switches between these colourings, and when several datasets are overlaid each
one gets its own marker symbol. The same input always gives the same file, byte for byte.
"""

from __future__ import annotations

import html
import logging
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from doctune.config import ConfigError

log = logging.getLogger(__name__)

COLOR_FIELDS: Final[tuple[str, ...]] = ("cluster", "split", "category", "dataset")
"""The attributes of a :class:`MapPoint` the map can be coloured by, in the dropdown's order."""

MISSING_VALUE: Final = "(none)"
"""How an empty attribute is shown (and grouped) on the map."""

NEUTRAL_COLOR: Final = "#b0b0b0"
"""The colour of points without a value and of noise points (cluster ``-1`` or ``noise``)."""

NEUTRAL_VALUES: Final[frozenset[str]] = frozenset({MISSING_VALUE, "-1", "noise"})

MARKER_SIZE: Final = 8
MARKER_OPACITY: Final = 0.8
"""Markers are drawn slightly translucent so that dense regions read as dense."""

WEBGL_THRESHOLD: Final = 5000
"""Above this many points the map uses WebGL (``scattergl``) instead of SVG, which stays responsive."""

HOVER_WIDTH: Final = 80
"""Hover text is wrapped to this many characters a line."""

HOVER_MAX_CHARS: Final = 600
"""Longer questions are cut (with an ellipsis) so that a hover box stays on screen."""

# Dark24 then Light24 from plotly.colors.qualitative, copied so that the output never depends on plotly's version.
DEFAULT_PALETTE: Final[tuple[str, ...]] = (
    "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100", "#750D86",
    "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE",
    "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA", "#6C4516", "#0D2A63", "#AF0038",
    "#FD3216", "#00FE35", "#6A76FC", "#FED4C4", "#FE00CE", "#0DF9FF", "#F6F926", "#FF9616",
    "#479B55", "#EEA6FB", "#DC587D", "#D626FF", "#6E899C", "#00B5F7", "#B68E00", "#C9FBE5",
    "#FF0092", "#22FFA7", "#E3EE9E", "#86CE00", "#BC7196", "#7E7DCD", "#FC6955", "#E48F72",
)  # fmt: skip

# One symbol per overlaid dataset (cycled when there are more datasets than symbols).
DATASET_SYMBOLS: Final[tuple[str, ...]] = (
    "circle", "diamond", "square", "triangle-up", "cross", "x", "star", "pentagon", "hexagon", "triangle-down",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MapPoint:
    """One question on the map.

    ``x``/``y`` come from :func:`project_2d`; ``dataset`` names where the point comes from (a workspace or run),
    ``question`` is the hover text, and ``cluster``/``split``/``category`` are the attributes the map can be coloured
    by. Attributes are shown as strings; an empty one is shown as ``(none)``.
    """

    x: float
    y: float
    dataset: str
    question: str
    cluster: str = ""
    split: str = ""
    category: str = ""


def project_2d(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project ``vectors`` (n x d) onto a plane, giving an (n x 2) float64 array.

    ``method`` is ``"pca"`` (the default: numpy's SVD, deterministic, each axis's sign fixed so that its largest
    loading is positive) or ``"umap"`` (needs the optional ``umap`` extra, imported only here; ``seed`` makes it
    reproducible). Fewer than three points need no projection and come back as fixed positions: none, the origin,
    or two points on the x axis. Missing dimensions (d < 2, or a rank-1 set) are zero columns.
    """
    if method not in ("pca", "umap"):
        raise ValueError(f"unknown projection method {method!r}; expected 'pca' or 'umap'")
    data = np.asarray(vectors, dtype=np.float64)
    if data.ndim == 1:
        data = data.reshape(-1, 1)
    if data.ndim != 2:
        raise ValueError(f"expected an (n x d) array of vectors, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("vectors contain NaN or infinite values")
    n = data.shape[0]
    if n < 3:
        return _project_few(data)
    if method == "umap":
        return _project_umap(data, seed)
    return _project_pca(data)


def _project_few(data: np.ndarray) -> np.ndarray:
    """Positions for 0, 1 or 2 points: the origin, or two points one unit either side of it (when they differ)."""
    out = np.zeros((data.shape[0], 2), dtype=np.float64)
    if data.shape[0] == 2 and not np.array_equal(data[0], data[1]):
        out[:, 0] = (-1.0, 1.0)
    return out


def _project_pca(data: np.ndarray) -> np.ndarray:
    centred = data - data.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, s.shape[0])
    scores = u[:, :k] * s[:k]
    # The sign of a singular vector is arbitrary; fix it so that the largest loading of each axis is positive.
    for i in range(k):
        if vt[i, np.argmax(np.abs(vt[i]))] < 0:
            scores[:, i] = -scores[:, i]
    out = np.zeros((data.shape[0], 2), dtype=np.float64)
    out[:, :k] = scores
    # Directions without variance are numerical noise: show them as exact zeros.
    tol = s[0] * max(data.shape) * np.finfo(np.float64).eps if s.size else 0.0
    out[:, [i for i in range(k) if s[i] <= tol]] = 0.0
    return out


class UmapMissingError(ConfigError, ImportError):
    """UMAP was asked for (``curate.projection: umap``) but ``umap-learn`` is not installed. A ``ConfigError``, so
    the CLI reports it as one line and exits 1; an ``ImportError`` for callers of ``project_2d``."""


UMAP_MISSING: Final = (
    "curate.projection: umap needs the optional package umap-learn, which is not installed: "
    "pip install 'doctune[umap]' (not part of `make install`); curate.projection: pca needs nothing extra"
)


def _project_umap(data: np.ndarray, seed: int) -> np.ndarray:
    try:
        import umap  # optional dependency (the `umap` extra), imported only when asked for
    except ImportError as exc:
        raise UmapMissingError(UMAP_MISSING) from exc
    n = data.shape[0]
    n_neighbors = max(2, min(15, n - 1))
    log.info("projecting %d vectors with UMAP (n_neighbors=%d, seed=%d)", n, n_neighbors, seed)
    # A fixed random_state makes UMAP single-threaded and reproducible; init="random" avoids the spectral
    # initialisation, which fails on very small inputs.
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        random_state=seed,
        n_jobs=1,  # what a random_state forces anyway; saying so spares a warning
        init="random" if n < 10 else "spectral",
    )
    return np.asarray(reducer.fit_transform(data), dtype=np.float64)


def _natural_key(value: str) -> list[tuple[int, int | str]]:
    """Sort key that orders ``cluster 2`` before ``cluster 10``."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", value) if part]


def _value(point: MapPoint, field: str) -> str:
    text = str(getattr(point, field)).strip()
    return text or MISSING_VALUE


def _hover_text(point: MapPoint) -> str:
    """The hover box of one point: the wrapped, escaped question, then its attributes."""
    question = " ".join(str(point.question).split())
    if len(question) > HOVER_MAX_CHARS:
        question = question[: HOVER_MAX_CHARS - 1].rstrip() + "…"
    lines = [html.escape(line) for line in textwrap.wrap(question, HOVER_WIDTH)] or ["(no question)"]
    lines.append("")
    for field in ("split", "cluster", "category", "dataset"):
        lines.append(f"<b>{field}</b>: {html.escape(_value(point, field))}")
    return "<br>".join(lines)


def _colors_for(values: Sequence[str], palette: Mapping[str, str]) -> dict[str, str]:
    """A colour for each value: the caller's palette first, grey for missing/noise, then the default palette."""
    colors: dict[str, str] = {}
    i = 0
    for value in values:
        if value in palette:
            colors[value] = palette[value]
        elif value in NEUTRAL_VALUES:
            colors[value] = NEUTRAL_COLOR
        else:
            colors[value] = DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)]
            i += 1
    return colors


def _build_figure(points: Sequence[MapPoint], color_by: str, title: str, palette: Mapping[str, str]) -> Any:
    import plotly.graph_objects as go

    webgl = len(points) > WEBGL_THRESHOLD
    scatter = go.Scattergl if webgl else go.Scatter
    datasets = sorted({p.dataset for p in points}, key=_natural_key)
    symbols = {name: DATASET_SYMBOLS[i % len(DATASET_SYMBOLS)] for i, name in enumerate(datasets)}
    several = len(datasets) > 1
    hovers = [_hover_text(p) for p in points]

    traces: list[Any] = []
    owner: list[str] = []  # the colouring each trace belongs to, for the dropdown's visibility masks
    for field in COLOR_FIELDS:
        groups: dict[tuple[str, str], list[int]] = {}
        for i, p in enumerate(points):
            groups.setdefault((_value(p, field), p.dataset), []).append(i)
        values = sorted({value for value, _ in groups}, key=_natural_key)
        colors = _colors_for(values, palette)
        for value in values:
            for name in datasets:
                members = groups.get((value, name))
                if not members:
                    continue
                grouped = several and field != "dataset"
                traces.append(
                    scatter(
                        x=np.array([points[i].x for i in members], dtype=np.float64),
                        y=np.array([points[i].y for i in members], dtype=np.float64),
                        mode="markers",
                        name=name if grouped else value,
                        legendgroup=f"{field}={value}",
                        legendgrouptitle_text=value if grouped else None,
                        marker={
                            "color": colors[value],
                            "size": MARKER_SIZE,
                            "opacity": MARKER_OPACITY,
                            "symbol": symbols[name],
                            "line": {"width": 0},
                        },
                        hovertext=[hovers[i] for i in members],
                        hoverinfo="text",
                        hoverlabel={"align": "left"},
                        visible=field == color_by,
                    )
                )
                owner.append(field)

    fig = go.Figure(data=traces)
    buttons = [
        {
            "label": f"colour by {field}",
            "method": "update",
            "args": [{"visible": [o == field for o in owner]}, {"legend.title.text": field}],
        }
        for field in COLOR_FIELDS
    ]
    fig.update_layout(
        title={"text": html.escape(title), "x": 0.5, "xanchor": "center"},
        template="plotly_white",
        hovermode="closest",
        dragmode="pan",
        legend={"title": {"text": color_by}, "itemsizing": "constant", "groupclick": "togglegroup"},
        xaxis={"showticklabels": False, "zeroline": False, "title": None},
        yaxis={"showticklabels": False, "zeroline": False, "title": None},
        margin={"l": 20, "r": 20, "t": 80, "b": 20},
        updatemenus=[
            {
                "type": "dropdown",
                "buttons": buttons,
                "active": COLOR_FIELDS.index(color_by),
                "x": 0.0,
                "xanchor": "left",
                "y": 1.02,
                "yanchor": "bottom",
                "showactive": True,
            }
        ],
    )
    if not points:
        fig.add_annotation(text="no points to show", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def write_map_html(
    points: list[MapPoint],
    path: Path,
    color_by: str = "cluster",
    title: str = "doctune map",
    *,
    palette: Mapping[str, str] | None = None,
) -> Path:
    """Write ``points`` as a standalone interactive scatter plot (one HTML file that works offline) and return its path.

    Points are coloured by ``color_by`` (one of ``cluster``, ``split``, ``category``, ``dataset``); a dropdown in
    the page switches to the other colourings, and clicking legend entries hides or shows groups. When the points
    come from several datasets each dataset has its own marker symbol. Hovering shows the question and the point's
    split, cluster, category and dataset. ``palette`` maps attribute values to CSS colours, overriding the default
    colours (values not in it keep theirs). Parent folders are created; the output is deterministic.
    """
    if color_by not in COLOR_FIELDS:
        raise ValueError(f"color_by must be one of {', '.join(COLOR_FIELDS)}, got {color_by!r}")
    import plotly.io as pio

    fig = _build_figure(points, color_by, title, palette or {})
    page = pio.to_html(
        fig,
        include_plotlyjs=True,
        full_html=True,
        div_id="doctune-map",  # a fixed id: plotly otherwise draws a random one, and the file would differ each time
        default_width="100%",
        default_height="95vh",
        config={"responsive": True, "displaylogo": False, "scrollZoom": True},
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    log.info("wrote a map of %d points (coloured by %s) to %s", len(points), color_by, path)
    return path
