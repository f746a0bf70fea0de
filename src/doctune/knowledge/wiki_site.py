"""The auto-wiki as a static site: ``index.html`` (every article, a search box over an inline index) and one page
per article (``<article_id>.html``). Pages are self-contained (inline CSS and JS, nothing from the network) and
every text is escaped.

The Markdown renderer knows only what :mod:`doctune.knowledge.wiki` writes: ``#``/``##`` headings, paragraphs,
``- `` bullets, ``[[Name]]`` / ``[[Name|shown]]`` links, footnote markers ``[^n]`` and their definitions. A link to
an article that was not written is shown as plain text (class ``missing``); each page ends with its notes (quote,
document title, locator, offsets) and "What links here".
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from doctune.knowledge.names import name_key
from doctune.knowledge.rows import WikiArticle
from doctune.knowledge.wiki_links import NOTES_HEADING, plain_markdown
from doctune.records import Citation, Document

log = logging.getLogger(__name__)

_INLINE = re.compile(r"\[\[([^\]|]+)(?:\|([^\]]+))?\]\]|\[\^(\d+)\]")
_NOTE = re.compile(r"^\[\^(\d+)\]:\s*(.*)$")

CSS = """
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}
a{color:#1a5fb4}a.missing,span.missing{color:#a51d2d;text-decoration:none;cursor:help}
nav{font-size:.9rem;margin-bottom:1rem}sup.fn a{text-decoration:none}
ol.notes{font-size:.88rem;color:#444}ol.notes q{font-style:italic}.where{color:#666}
.meta{color:#666;font-size:.9rem}input[type=search]{width:100%;padding:.5rem;font-size:1rem;margin:.5rem 0 1rem}
li.hit .snippet{display:block;color:#555;font-size:.88rem}
"""

SEARCH_JS = """
(function(){
  var index = JSON.parse(document.getElementById('search-index').textContent);
  var box = document.getElementById('search'), list = document.getElementById('results');
  var all = document.getElementById('articles');
  box.addEventListener('input', function(){
    var terms = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    list.textContent = '';
    all.style.display = terms.length ? 'none' : '';
    if (!terms.length) return;
    index.forEach(function(a){
      var hay = (a.title + ' ' + a.text).toLowerCase();
      if (!terms.every(function(t){ return hay.indexOf(t) >= 0; })) return;
      var li = document.createElement('li'); li.className = 'hit';
      var link = document.createElement('a'); link.href = a.id + '.html'; link.textContent = a.title;
      var at = a.text.toLowerCase().indexOf(terms[0]), snip = document.createElement('span');
      snip.className = 'snippet';
      snip.textContent = at >= 0 ? a.text.slice(Math.max(0, at - 60), at + 100) : a.text.slice(0, 160);
      li.appendChild(link); li.appendChild(snip); list.appendChild(li);
    });
    if (!list.children.length) { var none = document.createElement('li'); none.textContent = 'No article matches.';
      list.appendChild(none); }
  });
})();
"""


def _page(title: str, body: str, script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n{js}</body></html>\n"
    )


def locator(citation: Citation, documents: Mapping[str, Document]) -> str:
    """Where a citation is in its source file (``page 3``), from the document's spans; "" when unknown."""
    doc = documents.get(citation.doc_id)
    if doc is None:
        return ""
    return next((s.locator for s in doc.spans if s.start <= citation.char_start < s.end), "")


class _Renderer:
    """Renders an article's Markdown to HTML; knows which articles exist (by title name key)."""

    def __init__(self, articles: Sequence[WikiArticle], documents: Mapping[str, Document]):
        self.by_key = {name_key(a.title): a.article_id for a in articles}
        self.documents = documents

    def inline(self, text: str) -> str:
        out, pos = [], 0
        for m in _INLINE.finditer(text):
            out.append(escape(text[pos : m.start()]))
            pos = m.end()
            if m.group(3):
                n = m.group(3)
                out.append(f'<sup class="fn"><a href="#note-{n}" id="ref-{n}">{n}</a></sup>')
                continue
            name, shown = m.group(1), m.group(2) or m.group(1)
            target = self.by_key.get(name_key(name))
            if target is None:
                out.append(f'<span class="missing" title="no article about {escape(name)}">{escape(shown)}</span>')
            else:
                out.append(f'<a href="{escape(target)}.html" title="{escape(name)}">{escape(shown)}</a>')
        out.append(escape(text[pos:]))
        return "".join(out)

    def note(self, n: int, definition: str, article: WikiArticle) -> str:
        """A note: the sentence's citation (quote, document title, locator, offsets), or the definition's text."""
        if not 1 <= n <= len(article.sentences):
            return f'<li id="note-{n}">{escape(definition)}</li>'
        c = article.sentences[n - 1].citation
        doc = self.documents.get(c.doc_id)
        where = [escape(doc.title if doc else c.doc_id)]
        if loc := locator(c, self.documents):
            where.append(escape(loc))
        where.append(f"chars {c.char_start}-{c.char_end}")
        return (
            f'<li id="note-{n}"><q>{escape(" ".join(c.quote.split()))}</q> '
            f'<span class="where">({", ".join(where)}; chunk {escape(c.chunk_id)})</span> '
            f'<a href="#ref-{n}" title="back to the sentence">↩</a></li>'
        )

    def article(self, article: WikiArticle) -> str:
        """The article's body HTML: headings, paragraphs, bullets, then the notes as a numbered list."""
        body, notes = (
            article.markdown.split(f"\n{NOTES_HEADING}\n", 1)
            if NOTES_HEADING in article.markdown
            else (
                article.markdown,
                "",
            )
        )
        html: list[str] = []
        for block in re.split(r"\n\s*\n", body.strip()):
            lines = [line for line in block.splitlines() if line.strip()]
            if not lines:
                continue
            if lines[0].startswith("## "):
                html.append(f"<h2>{self.inline(lines[0][3:].strip())}</h2>")
            elif lines[0].startswith("# "):
                html.append(f"<h1>{self.inline(lines[0][2:].strip())}</h1>")
            elif all(line.startswith("- ") for line in lines):
                html.append("<ul>" + "".join(f"<li>{self.inline(line[2:])}</li>" for line in lines) + "</ul>")
            else:
                html.append(f"<p>{self.inline(' '.join(line.strip() for line in lines))}</p>")
        defs = [(int(m.group(1)), m.group(2)) for line in notes.splitlines() if (m := _NOTE.match(line.strip()))]
        if defs:
            items = "".join(self.note(n, d, article) for n, d in defs)
            html.append(f'<h2>Notes</h2><ol class="notes">{items}</ol>')
        return "\n".join(html)


def _backlinks(articles: Sequence[WikiArticle]) -> dict[str, list[WikiArticle]]:
    out: dict[str, list[WikiArticle]] = {a.article_id: [] for a in articles}
    for a in articles:
        for target in dict.fromkeys(a.links):
            if target in out and target != a.article_id:
                out[target].append(a)
    return out


def _script_json(data: object) -> str:
    """JSON safe inside a ``<script>`` element."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def write_wiki_site(
    articles: Sequence[WikiArticle], documents: Mapping[str, Document], root: Path, title: str = "Wiki"
) -> Path:
    """Write the site under ``root`` (pages of articles no longer in ``articles`` are removed) and return the path
    of ``index.html``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    current = {f"{a.article_id}.html" for a in articles} | {"index.html"}
    for old in root.glob("*.html"):
        if old.name not in current:
            old.unlink()
    renderer = _Renderer(articles, documents)
    backlinks = _backlinks(articles)
    nav = f'<nav><a href="index.html">{escape(title)}</a></nav>'
    for a in articles:
        linking = backlinks[a.article_id]
        here = (
            "<ul>"
            + "".join(f'<li><a href="{escape(b.article_id)}.html">{escape(b.title)}</a></li>' for b in linking)
            + "</ul>"
            if linking
            else '<p class="meta">No article links here.</p>'
        )
        meta = (
            f'<p class="meta">{len(a.sentences)} verified sentences, {a.dropped_sentences} dropped; depth {a.depth}</p>'
        )
        body = f"{nav}\n<main>\n{renderer.article(a)}\n{meta}\n<h2>What links here</h2>\n{here}\n</main>"
        (root / f"{a.article_id}.html").write_text(_page(f"{a.title} - {title}", body), encoding="utf-8")
    ordered = sorted(articles, key=lambda a: (a.depth, a.title.lower()))
    items = "".join(
        f'<li><a href="{escape(a.article_id)}.html">{escape(a.title)}</a> '
        f'<span class="meta">{len(a.sentences)} sentences, {len(backlinks[a.article_id])} links here</span></li>'
        for a in ordered
    )
    index_data = [{"id": a.article_id, "title": a.title, "text": plain_markdown(a.markdown)} for a in ordered]
    body = (
        f"<h1>{escape(title)}</h1>\n"
        f'<p class="meta">{len(articles)} articles; every sentence cites a verified source span.</p>\n'
        '<input type="search" id="search" placeholder="Search the articles" aria-label="Search the articles">\n'
        '<ul id="results"></ul>\n'
        f'<ul id="articles">{items or "<li>No article was written.</li>"}</ul>\n'
        f'<script type="application/json" id="search-index">{_script_json(index_data)}</script>'
    )
    index = root / "index.html"
    index.write_text(_page(title, body, SEARCH_JS), encoding="utf-8")
    log.info("wiki site: %d pages -> %s", len(articles), index)
    return index
