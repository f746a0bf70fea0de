"""Post HTML (Mastodon ``content``) -> plain text.

Paragraphs become blank-line separated, ``<br>`` a newline, list items lines; a link becomes its text (Mastodon
hides part of long URLs in ``invisible`` spans, which are kept, so the text is the whole URL) or its href when the
text is empty or cut with an ellipsis; mentions stay ``@handle`` and hashtags ``#tag``. Entities are unescaped;
any script is kept as is.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6"}
_SKIP = {"script", "style"}


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._link: list[str] | None = None
        self._href = ""
        self._skip = 0

    def _emit(self, text: str) -> None:
        if self._link is not None:
            self._link.append(text)
        else:
            self.parts.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "br":
            self._emit("\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "a":
            self._link, self._href = [], dict(attrs).get("href") or ""

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in _SKIP:
            self._skip -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self._link is not None:
            text = "".join(self._link).strip()
            if not text or (text.endswith(("…", "...")) and self._href.startswith(("http://", "https://"))):
                text = self._href
            self._link = None
            self.parts.append(text)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._emit(data)


def html_to_text(html: str) -> str:
    """Plain text of a post's HTML (see the module doc); plain text passes through unchanged but for whitespace."""
    if not html:
        return ""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    if parser._link is not None:  # an <a> never closed
        parser.parts.append("".join(parser._link))
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
