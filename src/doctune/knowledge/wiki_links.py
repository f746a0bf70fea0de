"""Names, slugs and ``[[links]]`` of the auto-wiki's articles (see :mod:`doctune.knowledge.wiki`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from doctune.knowledge.rows import KGNode

NOTES_HEADING = "## Notes"
_LINK = re.compile(r"\[\[([^\]|]+)(?:\|([^\]]+))?\]\]")
_MARKER = re.compile(r"\[\^\d+\]")


# -- names, slugs and links -----------------------------------------------------------------------------------------
def article_slug(name: str) -> str:
    """A file-safe id from a name: lower-case words joined by dashes (``"Python class"`` -> ``python-class``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-") or "article"


def article_ids(nodes: Iterable[KGNode]) -> dict[str, str]:
    """node_id -> article id: the name's slug, unique (the most connected node keeps the plain slug; ``index`` is
    the site's own page)."""
    taken, out = {"index"}, {}
    for node in sorted(nodes, key=lambda n: (-n.degree, -n.mentions, n.node_id)):
        slug = article_slug(node.name)
        if slug in taken:
            slug = f"{slug}-{article_slug(node.node_id.removeprefix('n-'))}"[:80]
            while slug in taken:
                slug += "-x"
        taken.add(slug)
        out[node.node_id] = slug
    return out


#: a name is not part of a longer token: a word, an address (``R-help@R-project.org``), a path or a dotted name
_BEFORE, _AFTER = r"(?<![\w@/.-])", r"(?![\w@/]|[-.]\w)"


def _form_pattern(form: str) -> re.Pattern[str] | None:
    """How a name is found in text: whole words; case-insensitive (plural allowed) for lower-case-ish names longer
    than three characters, exact case for short names and acronyms (``R``, ``S``, ``API``)."""
    form = " ".join(form.split())
    if not any(c.isalnum() for c in form):
        return None
    body = r"\s+".join(re.escape(part) for part in form.split(" "))
    if len(form) > 3 and not form.isupper():
        suffix = "(?:e?s)?" if form[-1].isalpha() else ""
        return re.compile(rf"{_BEFORE}{body}{suffix}{_AFTER}", re.IGNORECASE)
    return re.compile(rf"{_BEFORE}{body}{_AFTER}")


class Linker:
    """Finds the graph's names (and aliases) in sentences and turns them into ``[[links]]``."""

    def __init__(self, nodes: Iterable[KGNode]):
        nodes = list(nodes)
        self.ids = article_ids(nodes)
        self.node_of_article = {a: n for n, a in self.ids.items()}
        self.names = {n.node_id: n.name for n in nodes}
        self.patterns = [
            (pattern, n.node_id)
            for n in nodes
            for form in dict.fromkeys([n.name, *n.aliases])
            if (pattern := _form_pattern(form)) is not None
        ]

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping name occurrences (start, end, node_id): earliest first, the longest at one place."""
        spots = sorted(
            (
                (m.start(), -(m.end() - m.start()), nid)
                for pattern, nid in self.patterns
                for m in pattern.finditer(text)
            ),
        )
        out, end = [], -1
        for start, neg_len, nid in spots:
            if start >= end:
                out.append((start, start - neg_len, nid))
                end = start - neg_len
        return out

    def mention(self, text: str, node_id: str) -> str | None:
        """The form by which ``text`` names ``node_id`` (its first occurrence), or None."""
        return next((text[s:e] for s, e, nid in self.find(text) if nid == node_id), None)

    def link(self, text: str, own: str) -> tuple[str, list[str]]:
        """``text`` with the first occurrence of every other node's name as ``[[Name]]`` (``[[Name|as written]]``
        when written differently), and the article ids linked."""
        out, pos, linked = [], 0, []
        for start, end, nid in self.find(text):
            if nid == own or nid in linked:
                continue
            surface, name = text[start:end], self.names[nid]
            out += [text[pos:start], f"[[{name}]]" if surface == name else f"[[{name}|{surface}]]"]
            pos = end
            linked.append(nid)
        return "".join([*out, text[pos:]]), [self.ids[n] for n in linked]


def unlink(text: str) -> str:
    """Text with ``[[Name|shown]]`` -> ``shown`` and ``[[Name]]`` -> ``Name``."""
    return _LINK.sub(lambda m: m.group(2) or m.group(1), text)


def plain_markdown(markdown: str) -> str:
    """An article's Markdown for training: no footnote markers, no notes section, no ``[[ ]]``."""
    body = markdown.split(f"\n{NOTES_HEADING}\n", 1)[0]
    return unlink(_MARKER.sub("", body)).strip() + "\n"
