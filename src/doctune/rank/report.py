"""The ranked list of `doctune rank`: rows for the terminal (rich, markup escaped) and an HTML page (escaped)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table


@dataclass
class RankedPost:
    """One ranked post: its scores (None when that scorer did not run) and whether it was shown before."""

    rank: int
    post_id: str
    author: str
    created_at: str
    text: str
    url: str
    score: float
    baseline: float | None
    model: float | None
    shown_before: bool


def print_ranked(rows: Sequence[RankedPost], console: Console, max_chars: int = 280) -> None:
    table = Table(show_lines=False)
    for col in ("#", "score", "baseline", "model", "author", "post"):
        table.add_column(col)
    for r in rows:
        text = " ".join(r.text.split())
        text = text if len(text) <= max_chars else text[: max_chars - 1] + "…"
        table.add_row(
            str(r.rank),
            f"{r.score:.3f}",
            "-" if r.baseline is None else f"{r.baseline:.3f}",
            "-" if r.model is None else f"{r.model:.3f}",
            escape(r.author),
            escape(text) + (" [dim](shown before)[/]" if r.shown_before else ""),
        )
    console.print(table)


def write_html(rows: Sequence[RankedPost], path: Path, title: str) -> Path:
    """An HTML page of the ranked list; every text from the feed is escaped, links only when http(s)."""
    items = []
    for r in rows:
        e = html.escape
        link = f' <a href="{e(r.url)}">link</a>' if r.url.startswith(("http://", "https://")) else ""
        scores = f"score {r.score:.3f}" + (f", baseline {r.baseline:.3f}" if r.baseline is not None else "")
        scores += f", model {r.model:.3f}" if r.model is not None else ""
        shown = ' <span class="shown">shown before</span>' if r.shown_before else ""
        items.append(
            f"<li><div class=meta>#{r.rank} {e(r.author)} · {e(r.created_at)} · {scores}{link}{shown}</div>"
            f"<p>{e(r.text)}</p></li>"
        )
    page = (
        "<!doctype html><html><head><meta charset=utf-8><title>"
        + html.escape(title)
        + "</title><style>body{font-family:sans-serif;max-width:50em;margin:auto}.meta{color:#555;font-size:90%}"
        ".shown{color:#a60}p{white-space:pre-wrap}</style></head><body><h1>"
        + html.escape(title)
        + "</h1><ol>"
        + "".join(items)
        + "</ol></body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
