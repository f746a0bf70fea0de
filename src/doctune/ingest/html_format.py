"""HTML: the page's main text as Markdown (headings as ``#`` lines, fenced code, markdown tables).

trafilatura finds the main content (dropping navigation, sidebars, footers, comments) and our renderer turns its
tree into Markdown: trafilatura's own Markdown output drops blank lines inside code blocks. When trafilatura finds
nothing, or loses the page's structure (it falls back to a flat text dump on short pages), the page is rendered
directly, after pruning scripts, navigation, headers, footers and sidebars.
"""

from __future__ import annotations

import copy
import re

import trafilatura
from lxml import etree, html

from doctune.config import IngestConfig
from doctune.ingest.base import Extracted, SourceFile, UnreadableFileError, normalize_newlines, shorten_title
from doctune.ingest.html_markdown import render_markdown

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_BOILERPLATE_TAGS = ("script", "style", "noscript", "template", "nav", "footer", "aside", "iframe", "svg")
_BOILERPLATE_ROLES = ("navigation", "banner", "contentinfo", "search", "complementary")
_PERMALINK_XPATH = (
    "//a[contains(concat(' ', normalize-space(@class), ' '), ' headerlink ')"
    " or contains(concat(' ', normalize-space(@class), ' '), ' anchor-link ')]"
)
_FOOTNOTES_XPATH = "//aside[@role='note' or contains(@class, 'footnote')]"
_WRAPPER_LANGUAGE = re.compile(r"(?:^|\s)highlight-([A-Za-z0-9_+#-]+)")
_SOURCE_STRUCTURE = ".//h1|.//h2|.//h3|.//pre|.//table"
_TEI_STRUCTURE = ".//head|.//code|.//table|.//list"


def read_html(source: SourceFile, cfg: IngestConfig) -> Extracted:
    """Extract the main text of an HTML page as Markdown.

    The title is the first level-1 heading of the extracted text, else the ``<title>`` element, else the file name.
    """
    page = parse_html(source.text)
    text = html_to_markdown(page)
    if not text.strip():
        raise UnreadableFileError("no extractable text")
    return Extracted(text=text, title=_first_h1(text) or _title_element(page) or source.path.stem)


def parse_html(markup: str) -> html.HtmlElement:
    """Parse a page (an XML declaration is dropped; lxml refuses one in a str) with permalink anchors removed."""
    markup = _XML_DECLARATION.sub("", markup, count=1)
    if not markup.strip():
        raise UnreadableFileError("no extractable text")
    try:
        page = html.document_fromstring(markup)
    except etree.ParserError as exc:  # lxml's "Document is empty": nothing but comments or whitespace
        raise UnreadableFileError("no extractable text") from exc
    except ValueError as exc:
        raise UnreadableFileError(f"cannot parse HTML: {exc}") from exc
    for anchor in page.xpath(_PERMALINK_XPATH):
        anchor.drop_tree()
    for note in page.xpath(_FOOTNOTES_XPATH):
        note.tag = "div"  # trafilatura drops <aside>, but footnotes are part of the text
    for pre in page.iter("pre"):
        _mark_code_language(pre)
    return page


def _mark_code_language(pre: html.HtmlElement) -> None:
    """Wrap a ``<pre>``'s content in ``<code class="language-x">`` when a wrapper names the language (Sphinx's
    ``div.highlight-python3``), so the language survives trafilatura and ends up on the code fence."""
    if pre.find("code") is not None:
        return
    for ancestor in list(pre.iterancestors())[:3]:
        m = _WRAPPER_LANGUAGE.search(ancestor.get("class") or "")
        if m and m.group(1) not in ("none", "default", "text"):
            code = html.Element("code", {"class": f"language-{m.group(1)}"})
            code.text, pre.text = pre.text, None
            code.extend(list(pre))
            pre.append(code)
            return


def html_to_markdown(page: html.HtmlElement) -> str:
    """The main content of a parsed page as Markdown."""
    fallback_root = _main_element(_pruned(page))
    main = _trafilatura_main(page, has_structure=bool(fallback_root.xpath(_SOURCE_STRUCTURE)))
    if main is not None:
        markdown = _tidy(render_markdown(main, tei=True))
        if markdown:
            return markdown
    return _tidy(render_markdown(fallback_root))


def _trafilatura_main(page: html.HtmlElement, has_structure: bool) -> etree._Element | None:
    """trafilatura's main-content tree, or ``None`` when it found nothing or flattened a page that has headings,
    code or tables (``has_structure``) into bare paragraphs."""
    result = trafilatura.bare_extraction(
        copy.deepcopy(page),
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        include_links=False,
        include_images=False,
        with_metadata=False,
        favor_recall=True,
        deduplicate=False,
        as_dict=False,
    )
    body = getattr(result, "body", None)
    if body is None or not len(body):
        return None
    if has_structure and not body.xpath(_TEI_STRUCTURE):
        return None
    return body


def _pruned(page: html.HtmlElement) -> html.HtmlElement:
    """A copy of the page without scripts, navigation, footers, sidebars and page headers."""
    page = copy.deepcopy(page)
    doomed = [el for el in page.iter(_BOILERPLATE_TAGS)]
    doomed += page.xpath("//*[" + " or ".join(f"@role='{role}'" for role in _BOILERPLATE_ROLES) + "]")
    doomed += [el for el in page.iter("header") if not any(a.tag in ("main", "article") for a in el.iterancestors())]
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()
    return page


def _main_element(page: html.HtmlElement) -> etree._Element:
    for xpath in ("//main", "//*[@role='main']", "//article"):
        found = page.xpath(xpath)
        if len(found) == 1:
            return found[0]
    body = page.find("body")
    return body if body is not None else page


def _first_h1(markdown: str) -> str | None:
    in_code = False
    for line in markdown.split("\n"):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("# "):
            return shorten_title(line[2:])
    return None


def _title_element(page: html.HtmlElement) -> str | None:
    title = page.find(".//title")
    text = " ".join(title.text_content().split()) if title is not None else ""
    return shorten_title(text) if text else None


def _tidy(markdown: str) -> str:
    return "\n".join(line.rstrip() for line in normalize_newlines(markdown).split("\n")).strip()
