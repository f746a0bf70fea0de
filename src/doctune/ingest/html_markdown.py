"""Render an element tree as Markdown: headings as ``#`` lines, fenced code, lists, tables, quotes, emphasis.

Works on two vocabularies: ordinary HTML, and the TEI-like tree trafilatura produces for a page's main content
(``head rend="h2"``, ``list``/``item``, ``table``/``row``/``cell``, ``hi rend="#b"``, ``lb``, ``quote``, ``code``).
Prose whitespace is collapsed; code keeps its exact text.
"""

from __future__ import annotations

import re

from lxml import etree

_TEI_TO_HTML = {
    "list": "ul",
    "item": "li",
    "row": "tr",
    "cell": "td",
    "lb": "br",
    "quote": "blockquote",
    "ref": "a",
    "graphic": "img",
    "doc": "div",
    "main": "div",
    "ab": "p",
}
_DROPPED = {
    "script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object", "embed",
    "button", "input", "select", "textarea", "img", "video", "audio", "picture", "map", "head", "title", "meta",
}  # fmt: skip
_BLOCK_CONTAINERS = {
    "body", "div", "section", "article", "main", "header", "footer", "aside", "nav", "figure", "figcaption",
    "form", "fieldset", "details", "summary", "address", "center", "dl", "dt", "dd", "hgroup", "html", "caption",
    "tbody", "thead", "tfoot", "legend", "menu",
}  # fmt: skip
_EMPHASIS = {"em": "*", "i": "*", "cite": "*", "dfn": "*", "var": "*", "strong": "**", "b": "**"}
_INLINE_CODE = {"code", "tt", "kbd", "samp"}
_HI_MARKERS = {"#i": "*", "#b": "**", "#t": "`"}
_HEADING_REND = re.compile(r"^h([1-6])$")
_HEADING_TRAILERS = " \t¶§#"
_WHITESPACE = re.compile(r"\s+")


def render_markdown(root: etree._Element, *, tei: bool = False) -> str:
    """The Markdown text of ``root``'s content; ``tei=True`` for a trafilatura tree."""
    renderer = _Renderer(tei)
    renderer.flow(root)
    return "\n\n".join(renderer.finish())


class _Renderer:
    """Walks a tree in document order, collecting Markdown blocks and the inline run of the open paragraph."""

    def __init__(self, tei: bool) -> None:
        self.tei = tei
        self.blocks: list[str] = []
        self.inline: list[str] = []

    def finish(self) -> list[str]:
        self.flush()
        return self.blocks

    def flush(self) -> None:
        """Close the open paragraph: collapse whitespace in each line (``<br>`` lines stay separate)."""
        lines = [" ".join(part.split()) for part in "".join(self.inline).split("\n")]
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            self.blocks.append(paragraph)
        self.inline = []

    def text(self, value: str | None) -> None:
        if value:
            self.inline.append(_WHITESPACE.sub(" ", value))

    def flow(self, element: etree._Element) -> None:
        """Render the children of ``element`` (its text, child elements and their tails) into this renderer."""
        self.text(element.text)
        for child in element:
            if isinstance(child.tag, str):
                self.node(child)
            self.text(child.tail)

    def node(self, element: etree._Element) -> None:
        tag = self.tag(element)
        level = self.heading_level(element, tag)
        if not level and (tag in _DROPPED or (not self.tei and _is_hidden(element))):
            return
        if level:
            self.block("#" * level + " " + self.inline_text(element).strip(_HEADING_TRAILERS))
        elif tag == "p":
            self.flush()
            self.flow(element)
            self.flush()
        elif tag == "pre" or (tag == "code" and _is_code_block(element, self.tei)):
            self.block(_fenced_code(element))
        elif tag in ("ul", "ol"):
            self.block(self.list_markdown(element))
        elif tag == "table":
            self.table(element)
        elif tag == "blockquote":
            quoted = self.sub_blocks(element)
            self.block("\n".join(f"> {line}".rstrip() for line in "\n\n".join(quoted).split("\n")))
        elif tag == "br":
            self.inline.append("\n")
        elif tag == "hr":
            self.flush()
        elif tag in _INLINE_CODE or (tag == "hi" and element.get("rend") == "#t"):
            self.wrap(_code_span(_WHITESPACE.sub(" ", "".join(element.itertext()))))
        elif tag in _EMPHASIS or (tag == "hi" and element.get("rend") in _HI_MARKERS):
            marker = _EMPHASIS.get(tag) or _HI_MARKERS[element.get("rend", "")]
            inner = self.inline_text(element)
            self.wrap(f"{marker}{inner.strip()}{marker}" if inner.strip() else "", inner)
        elif tag in _BLOCK_CONTAINERS or tag in ("li", "tr", "td", "th"):
            self.flush()
            self.flow(element)
            self.flush()
        else:  # a, span, sup, unknown tags: transparent
            self.flow(element)

    def tag(self, element: etree._Element) -> str:
        name = etree.QName(element).localname.lower()
        return _TEI_TO_HTML.get(name, name) if self.tei else name

    def heading_level(self, element: etree._Element, tag: str) -> int:
        if self.tei and tag == "head":
            m = _HEADING_REND.match(element.get("rend", ""))
            return int(m.group(1)) if m else 2
        m = _HEADING_REND.match(tag)
        return int(m.group(1)) if m else 0

    def block(self, markdown: str) -> None:
        self.flush()
        if markdown.strip():
            self.blocks.append(markdown)

    def wrap(self, rendered: str, original: str = "") -> None:
        """Append inline markup, keeping the whitespace that surrounded the original text."""
        lead = " " if original[:1].isspace() else ""
        trail = " " if original[-1:].isspace() else ""
        self.inline.append(f"{lead}{rendered}{trail}")

    def sub_blocks(self, element: etree._Element) -> list[str]:
        renderer = _Renderer(self.tei)
        renderer.flow(element)
        return renderer.finish()

    def inline_text(self, element: etree._Element) -> str:
        """The content of ``element`` as one line of inline Markdown (outer whitespace kept as one space)."""
        renderer = _Renderer(self.tei)
        renderer.flow(element)
        if renderer.blocks:  # block content inside an inline context: join it into one line
            return " ".join(_WHITESPACE.sub(" ", block) for block in renderer.finish())
        return _WHITESPACE.sub(" ", "".join(renderer.inline))

    def list_markdown(self, element: etree._Element) -> str:
        ordered = self.tag(element) == "ol" or (self.tei and element.get("rend") == "ol")
        try:
            number = int(element.get("start", "1"))
        except ValueError:
            number = 1
        lines: list[str] = []
        for item in element:
            if not isinstance(item.tag, str) or self.tag(item) != "li":
                continue
            marker = f"{number}. " if ordered else "- "
            number += 1
            body = "\n".join(self.sub_blocks(item)).split("\n")
            if body == [""]:
                continue
            lines.append(marker + body[0])
            lines.extend((" " * len(marker) + line) if line else "" for line in body[1:])
        return "\n".join(lines)

    def table(self, element: etree._Element) -> None:
        """A Markdown table whose first row is the header (its caption, if any, as a paragraph before it)."""
        rows = [row for row in element.iter() if isinstance(row.tag, str) and self.tag(row) == "tr"]
        rows = [row for row in rows if _nearest_table(row, self) is element]
        grid: list[list[str]] = []
        for row in rows:
            cells = [cell for cell in row if isinstance(cell.tag, str) and self.tag(cell) in ("td", "th")]
            if cells:
                grid.append([self.inline_text(cell).strip().replace("|", "\\|") for cell in cells])
        width = max((len(row) for row in grid), default=0)
        if width <= 1:  # a one-column layout table: render its content as prose
            self.flush()
            self.flow(element)
            self.flush()
            return
        caption = next((c for c in element if isinstance(c.tag, str) and self.tag(c) == "caption"), None)
        if caption is not None:
            self.block(self.inline_text(caption).strip())
        grid = [row + [""] * (width - len(row)) for row in grid]
        lines = ["| " + " | ".join(grid[0]) + " |", "| " + " | ".join(["---"] * width) + " |"]
        lines += ["| " + " | ".join(row) + " |" for row in grid[1:]]
        self.block("\n".join(lines))


def _nearest_table(row: etree._Element, renderer: _Renderer) -> etree._Element | None:
    parent = row.getparent()
    while parent is not None and renderer.tag(parent) != "table":
        parent = parent.getparent()
    return parent


def _is_hidden(element: etree._Element) -> bool:
    return element.get("hidden") is not None or element.get("aria-hidden") == "true"


def _is_code_block(element: etree._Element, tei: bool) -> bool:
    parent = element.getparent()
    if tei and parent is not None and etree.QName(parent).localname in ("body", "doc", "main", "div", "quote"):
        return True
    return "\n" in "".join(element.itertext()).strip("\n")


def _fenced_code(element: etree._Element) -> str:
    code = "".join(element.itertext()).strip("\n").rstrip()
    if not code.strip():
        return ""
    longest = max((len(run) for run in re.findall(r"`{3,}", code)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{_code_language(element)}\n{code}\n{fence}"


def _code_language(element: etree._Element) -> str:
    """A language name from a ``language-x`` / ``lang-x`` / ``highlight-x`` class on the element or near it."""
    candidates = [element, *element.iterchildren(), *list(element.iterancestors())[:2]]
    for node in candidates:
        for name in (node.get("class") or "").split():
            m = re.match(r"^(?:language|lang|highlight)-([A-Za-z0-9_+#-]+)$", name)
            if m and m.group(1).lower() not in ("none", "default", "text"):
                return m.group(1).lower()
    return ""


def _code_span(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    if "`" not in text:
        return f"`{text}`"
    return f"`` {text} ``"
