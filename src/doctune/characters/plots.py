"""The PNG plots of the characters report (matplotlib, Agg backend; matplotlib comes with ``doctune[curate]``).

Each function draws one figure of one play's :class:`~doctune.characters.stats.PlayStats` for its ``top`` speakers
with the most words, writes it to ``path`` and returns the path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from doctune.characters.stats import PlayStats

log = logging.getLogger(__name__)

#: distinctive words shown per character in the distinctive-words plot
WORDS_PER_PANEL = 8


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def act_label(act: str) -> str:
    """How an act is labelled in plots and tables (``(no act)`` for plays without acts)."""
    return f"Act {act}" if act else "(no act)"


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def plot_words_by_act(play: PlayStats, top: int, path: Path) -> Path:
    """Words per character, stacked by act (horizontal bars, the most talkative character on top)."""
    plt = _pyplot()
    names = play.top_characters(top)
    words = {(r.character, r.act): r.words for r in play.by_act}
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) + 1.8))
    colors = plt.get_cmap("tab20").colors
    left = [0] * len(names)
    ys = list(range(len(names)))[::-1]
    for i, act in enumerate(play.acts):
        widths = [words.get((name, act), 0) for name in names]
        ax.barh(ys, widths, left=left, color=colors[i % len(colors)], label=act_label(act))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(ys, names)
    ax.set(xlabel="words", title=f"{play.play}: words per character and act")
    if len(play.acts) > 1:
        ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def plot_transitions(play: PlayStats, top: int, path: Path) -> Path:
    """Heatmap of who speaks after whom among the top characters (rows: speaker, columns: the next speaker)."""
    plt = _pyplot()
    names = play.top_characters(top)
    index = {name: i for i, name in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for t in play.transitions:
        if t.source in index and t.target in index:
            matrix[index[t.source]][index[t.target]] = t.count
    size = 0.5 * len(names) + 2.5
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize="small")
    ax.set_yticks(range(len(names)), names, fontsize="small")
    ax.set(xlabel="next speaker", ylabel="speaker", title=f"{play.play}: who speaks after whom")
    peak = max((v for row in matrix for v in row), default=0)
    if len(names) <= 15:
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                if value:
                    color = "white" if value > peak / 2 else "black"
                    ax.text(j, i, str(value), ha="center", va="center", fontsize="x-small", color=color)
    fig.colorbar(image, ax=ax, shrink=0.8, label="transitions")
    return _save(fig, path)


def plot_distinctive(play: PlayStats, top: int, path: Path) -> Path:
    """One panel per top character: its most distinctive words by z-score."""
    plt = _pyplot()
    names = [n for n in play.top_characters(top) if play.distinctive.get(n)] or [""]
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip([a for row in axes for a in row], names + [None] * (rows * cols - len(names)), strict=True):
        words = play.distinctive.get(name or "", [])[:WORDS_PER_PANEL]
        if not words:
            ax.axis("off")
            if name == "":
                ax.text(0.5, 0.5, "no distinctive words", ha="center", va="center")
            continue
        ax.barh([w.word for w in words][::-1], [w.z for w in words][::-1], color="tab:purple")
        ax.set_title(name, fontsize="medium")
        ax.tick_params(labelsize="small")
        ax.set_xlabel("z-score", fontsize="small")
    fig.suptitle(f"{play.play}: most distinctive words (log-odds, informative Dirichlet prior)")
    return _save(fig, path)


def write_plots(play: PlayStats, top: int, out_dir: Path, slug: str) -> dict[str, Path]:
    """All plots of one play as ``<slug>-<kind>.png``; ``{}`` (and a warning) without matplotlib."""
    try:
        _pyplot()
    except ImportError:
        log.warning("characters: matplotlib is not installed (pip install 'doctune[curate]'): report without plots")
        return {}
    if not play.top_characters(top):
        return {}
    drawers = {"words": plot_words_by_act, "transitions": plot_transitions, "distinctive": plot_distinctive}
    return {kind: draw(play, top, out_dir / f"{slug}-{kind}.png") for kind, draw in drawers.items()}
