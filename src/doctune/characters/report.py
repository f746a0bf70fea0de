"""The characters report: ``characters.json``, PNG plots and one self-contained ``index.html`` per workspace.

Layout of the report folder (``<workspace>/reports/characters/``)::

    index.html                   tables of every play, the plots embedded (base64), so the page opens anywhere
    characters.json              every statistic of :func:`doctune.characters.stats.analyse`, per play
    <play>-words.png             words per character and act (stacked bars)
    <play>-transitions.png       who speaks after whom (heatmap of the top characters)
    <play>-distinctive.png       the most distinctive words of the top characters
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from doctune.characters.plots import act_label, write_plots
from doctune.characters.stats import PRIOR_SHARE, PlayStats

log = logging.getLogger(__name__)

#: rows of the "who speaks after whom" table
TRANSITION_ROWS = 15

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #666; font-size: 0.9em; }
"""


@dataclass
class ReportPaths:
    """What :func:`write_report` wrote."""

    html: Path
    json: Path
    plots: dict[str, dict[str, Path]] = field(default_factory=dict)  # play slug -> kind -> png


def slugify(name: str) -> str:
    """A file-name-safe lowercase slug of a play's title (``play`` when nothing is left)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "play"


def play_slugs(plays: list[PlayStats]) -> list[str]:
    """One unique slug per play (``-2``, ``-3`` appended to repeated titles)."""
    seen: dict[str, int] = {}
    out = []
    for play in plays:
        base = slugify(play.play)
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def write_report(plays: list[PlayStats], out_dir: Path, top: int = 12, title: str = "Characters") -> ReportPaths:
    """Write ``characters.json``, the plots and ``index.html`` of ``plays`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "characters.json"
    payload = {"top": top, "plays": [p.to_dict() for p in plays]}
    json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    plots = {slug: write_plots(play, top, out_dir, slug) for play, slug in zip(plays, play_slugs(plays), strict=True)}
    html_path = out_dir / "index.html"
    html_path.write_text(render_html(plays, plots, top, title), encoding="utf-8")
    log.info("characters report -> %s", html_path)
    return ReportPaths(html=html_path, json=json_path, plots=plots)


def _esc(value: object) -> str:
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{_esc(v)}</td>' if isinstance(v, int | float) else f"<td>{_esc(v)}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(path: Path | None, alt: str) -> str:
    if path is None or not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<p><img src="data:image/png;base64,{data}" alt="{_esc(alt)}"><br>'
        f'<a class="note" href="{_esc(path.name)}">{_esc(path.name)}</a></p>'
    )


def _characters_table(play: PlayStats) -> str:
    rows = []
    for c in play.characters:
        flags = ", ".join(f for f, on in (("joint speech", c.joint), ("unresolved tag", c.unresolved)) if on)
        rows.append([c.name, c.speeches, c.words, c.lines, f"{c.word_share:.1%}", c.description, flags])
    return _table(["character", "speeches", "words", "lines", "share of words", "description", "note"], rows)


def _acts_table(play: PlayStats, top: int) -> str:
    names = play.top_characters(top)
    cells = {(r.character, r.act): r for r in play.by_act}
    rows = []
    for name in names:
        row: list[object] = [name]
        for act in play.acts:
            r = cells.get((name, act))
            row.append(f"{r.words} / {r.lines}" if r else "")
        rows.append(row)
    return _table(["character", *(act_label(a) for a in play.acts)], rows)


def _distinctive_table(play: PlayStats, top: int) -> str:
    rows = []
    for name in play.top_characters(top):
        words = play.distinctive.get(name, [])
        rows.append([name, ", ".join(f"{w.word} ({w.count}, z={w.z:.1f})" for w in words) or "(none)"])
    return _table(["character", "word (times said, z-score)"], rows)


def render_play(play: PlayStats, plots: dict[str, Path], top: int) -> str:
    """The HTML section of one play."""
    speakers = sum(1 for c in play.characters if c.speeches)
    summary = (
        f"{play.speeches} speeches, {play.words} words, {speakers} speakers, "
        f"{len([a for a in play.acts if a])} acts, {play.scenes} scenes (document {play.doc_id})"
    )
    transitions = [[t.source, t.target, t.count] for t in play.transitions[:TRANSITION_ROWS]]
    parts = [
        f"<section><h2>{_esc(play.play)}</h2><p>{_esc(summary)}</p>",
        "<h3>Characters</h3>",
        _characters_table(play),
        f"<h3>Words / lines per act (top {top})</h3>",
        _acts_table(play, top),
        _image(plots.get("words"), "words per character and act"),
        "<h3>Who speaks after whom</h3>",
        '<p class="note">Counts of one speech followed by the next within the same scene.</p>',
        _table(["speaker", "next speaker", "times"], transitions),
        _image(plots.get("transitions"), "transition heatmap"),
        "<h3>Most distinctive words</h3>",
        '<p class="note">Log-odds ratio of each character against the rest of the play with an informative '
        f"Dirichlet prior (the play's word counts times {PRIOR_SHARE}; Monroe, Colaresi &amp; Quinn 2008, "
        "&ldquo;Fightin&rsquo; Words&rdquo;), ranked by z-score.</p>",
        _distinctive_table(play, top),
        _image(plots.get("distinctive"), "distinctive words"),
        "</section>",
    ]
    return "\n".join(p for p in parts if p)


def render_html(plays: list[PlayStats], plots: dict[str, dict[str, Path]], top: int, title: str) -> str:
    """The whole page (plots read from disk and embedded)."""
    slugs = play_slugs(plays)
    toc = "".join(f'<li><a href="#{s}">{_esc(p.play)}</a></li>' for p, s in zip(plays, slugs, strict=True))
    sections = "\n".join(
        f'<div id="{s}">{render_play(p, plots.get(s, {}), top)}</div>' for p, s in zip(plays, slugs, strict=True)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1><ul>{toc}</ul>\n{sections}\n</body></html>\n"
    )
