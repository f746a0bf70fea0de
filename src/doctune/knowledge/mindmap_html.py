"""Renderings of mind maps (:mod:`doctune.knowledge.mindmap`): markmap Markdown (:func:`to_markmap`), the bullet
outline of the training examples (:func:`outline_bullets`), and one self-contained HTML page for every map
(:func:`write_mindmap_html`; no network: inline CSS, no script needed).

Per document: the coverage before and after the grow pass, then the tree as nested ``<details>`` (open by
default, click a heading to fold it). Each point shows its label; its quote appears on hover (``title``) and in a
fold under it, with the chunk and offsets. Grown points carry a ``grown`` badge, points the verifier refused an
``unsupported`` one. Every text is escaped.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from doctune.knowledge.rows import MindMapNode
from doctune.records import Document

log = logging.getLogger(__name__)

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; line-height: 1.4; }
section.map { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 1.2em 1em; margin-bottom: 2em; }
.coverage { color: #555; }
.coverage b { color: #0a6; }
details { margin-left: 1.2em; }
details > summary { cursor: pointer; font-weight: 600; }
ul.points { list-style: disc; margin: 0.2em 0 0.4em 1.2em; padding-left: 1em; }
li.point { margin: 0.15em 0; }
li.point > details { margin-left: 0; display: inline; }
li.point > details > summary { font-weight: normal; display: inline; }
li.point blockquote { margin: 0.3em 0 0.3em 1em; padding-left: 0.6em; border-left: 3px solid #ccc; color: #444; }
.badge { font-size: 0.75em; border-radius: 3px; padding: 0 0.4em; margin-left: 0.4em; vertical-align: middle; }
.badge.grown { background: #e6f4ea; color: #0a6; }
.badge.unsupported { background: #fde8e8; color: #b00; }
.badge.model { background: #eef; color: #446; }
.where { color: #777; font-size: 0.8em; }
ul.uncovered { color: #777; font-size: 0.85em; }
"""


def _md_escape(text: str) -> str:
    """Text safe as Markdown inline content (markup characters escaped, angle brackets as entities)."""
    text = re.sub(r"([\\`*_\[\]#|])", r"\\\1", " ".join(text.split()))
    return text.replace("<", "&lt;").replace(">", "&gt;")


def to_markmap(doc: Document, nodes: Sequence[MindMapNode]) -> str:
    """The map as markmap-compatible Markdown: front matter, ``# title``, a heading per heading node (``##`` at
    level 1, capped at ``######``), a ``- label`` bullet per point followed by its citation as an HTML comment
    (``<!-- cite chunk_id start-end -->``, plus ``unsupported`` when the verifier refused it)."""
    lines = ["---", "markmap:", "  colorFreezeLevel: 2", "---", "", f"# {_md_escape(doc.title)}"]
    previous = "root"
    for node in nodes:
        if node.kind == "heading":
            lines += ["", f"{'#' * min(6, node.level + 1)} {_md_escape(node.label)}"]
        elif node.kind == "point":
            if previous != "point":
                lines.append("")
            cit = node.citation
            where = f"{cit.chunk_id} {cit.char_start}-{cit.char_end}" if cit else f"{node.chunk_id} ?"
            flag = "" if node.supported else " unsupported"
            lines.append(f"- {_md_escape(node.label)} <!-- cite {where}{flag} -->")
        previous = node.kind
    return "\n".join(lines) + "\n"


def outline_bullets(nodes: Sequence[MindMapNode], under: str | None = None) -> str:
    """The supported points as a Markdown bullet list, nested under the headings that hold some; ``under``: only
    the subtree of that node (its points and sub-headings), else the whole map."""
    by_id = {n.node_id: n for n in nodes}
    keep = set()
    for n in nodes:  # a heading is kept when a supported point lies below it
        if n.kind == "point" and n.supported:
            parent = n.parent_id
            while parent in by_id and parent not in keep:
                keep.add(parent)
                parent = by_id[parent].parent_id
    top = by_id[under] if under else next((n for n in nodes if n.kind == "root"), None)
    if top is None:
        return ""
    lines: list[str] = []
    for n in nodes:
        depth = 0
        parent = n.parent_id
        while parent and parent != top.node_id and parent in by_id:
            depth += 1
            parent = by_id[parent].parent_id
        if parent != top.node_id or n.node_id == top.node_id:
            continue
        if (n.kind == "point" and n.supported) or (n.kind == "heading" and n.node_id in keep):
            lines.append(f"{'  ' * depth}- {n.label}")
    return "\n".join(lines)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _point_html(node: MindMapNode) -> str:
    cit = node.citation
    quote = cit.quote if cit else ""
    badges = ""
    if node.stage == "grown":
        badges += '<span class="badge grown">grown</span>'
    if not node.supported:
        badges += '<span class="badge unsupported">unsupported</span>'
    if node.label_method == "model":
        badges += '<span class="badge model">model label</span>'
    where = f"{cit.chunk_id} {cit.char_start}-{cit.char_end}" if cit else node.chunk_id
    classes = " ".join(["point", node.stage, "supported" if node.supported else "unsupported"])
    return (
        f'<li class="{classes}"><details><summary title="{_e(quote)}">{_e(node.label)}</summary>'
        f'<blockquote>{_e(quote)}</blockquote><span class="where">{_e(where)}</span></details>{badges}</li>'
    )


def _tree_html(node: MindMapNode, children: dict[str, list[MindMapNode]]) -> str:
    kids = children.get(node.node_id, [])
    points = [k for k in kids if k.kind == "point"]
    headings = [k for k in kids if k.kind != "point"]
    parts = [f'<details open class="{_e(node.kind)}"><summary>{_e(node.label)}</summary>']
    if points:
        parts.append('<ul class="points">' + "".join(_point_html(p) for p in points) + "</ul>")
    parts.extend(_tree_html(h, children) for h in headings)
    parts.append("</details>")
    return "".join(parts)


def map_html(doc: Document, nodes: Sequence[MindMapNode], stats: dict[str, Any]) -> str:
    """One document's map as an HTML ``<section>``: coverage line, tree, uncovered chunks with reasons."""
    children: dict[str, list[MindMapNode]] = {}
    for n in nodes:  # ``nodes`` come depth first in display order (build_mindmap)
        children.setdefault(n.parent_id, []).append(n)
    root = next((n for n in nodes if n.kind == "root"), None)
    before, after = stats.get("coverage_before", 0.0), stats.get("coverage_after", 0.0)
    points = [n for n in nodes if n.kind == "point"]
    head = (
        f'<section class="map" id="{_e(doc.doc_id)}"><h2>{_e(doc.title)}</h2>'
        f'<p class="coverage">coverage <b>{before:.0%} &rarr; {after:.0%}</b> of {_e(stats.get("chunks", 0))} chunks; '
        f"{len(points)} points, {sum(1 for p in points if p.stage == 'grown')} grown, "
        f"{sum(1 for p in points if not p.supported)} unsupported</p>"
    )
    body = _tree_html(root, children) if root is not None else "<p>(no map)</p>"
    uncovered = stats.get("uncovered", [])
    tail = ""
    if uncovered:
        items = "".join(f"<li>{_e(u.get('chunk_id', ''))}: {_e(u.get('reason', ''))}</li>" for u in uncovered)
        tail = f"<details><summary>{len(uncovered)} chunks not covered</summary><ul class='uncovered'>{items}</ul></details>"
    return head + body + tail + "</section>"


def write_mindmap_html(maps: Sequence[tuple[Document, list[MindMapNode], dict[str, Any]]], path: Path) -> Path:
    """Write every map of ``maps`` (document, nodes, stats) to one self-contained HTML page at ``path``."""
    toc = "".join(f'<li><a href="#{_e(doc.doc_id)}">{_e(doc.title)}</a></li>' for doc, _, _ in maps)
    sections = "".join(map_html(doc, nodes, stats) for doc, nodes, stats in maps)
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Mind maps</title>'
        f"<style>{_CSS}</style></head><body><h1>Mind maps</h1>"
        "<p>Each point names one sentence of its document; hover or open it for the quote. "
        "<i>grown</i>: added by the grow pass; <i>unsupported</i>: the verifier refused its label.</p>"
        f"<ul>{toc}</ul>{sections}</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    log.info("mind maps of %d documents written to %s", len(maps), path)
    return path
