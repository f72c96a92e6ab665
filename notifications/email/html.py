"""The parts of an e-mail another app hands over as HTML (``services.send_email``).

The HTML is sanitised with nh3 (the Python binding of the Rust crate ammonia): scripts, styles
sheets, event handlers, ``javascript:`` links and unknown tags go; text, links, images, tables and
inline ``style`` limited to presentational properties stay (e-mail clients ignore ``<style>``
blocks, so inline style is what e-mail layout uses).

The plain-text alternative, when the caller gives none, is read from that sanitised HTML with
the standard library's ``HTMLParser``: text in document order, a line break after each block,
``- `` before list items, and each link's address after its text. (html2text would do more, but
it is GPL-3.0 and writes Markdown escapes into the text.)
"""

from __future__ import annotations

import copy
import html
import re
from html.parser import HTMLParser

import nh3

# Layout properties an e-mail needs; nothing that positions outside the message or loads a URL.
STYLE_PROPERTIES = frozenset(
    {
        "background-color",
        "border",
        "border-collapse",
        "border-radius",
        "color",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "height",
        "line-height",
        "margin",
        "max-width",
        "padding",
        "text-align",
        "text-decoration",
        "vertical-align",
        "width",
    }
)
BLOCKS = frozenset(
    {"p", "div", "br", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "hr", "pre"}
)


def html_sanitise(markup: str) -> str:
    """``markup`` with everything that could run, track beyond images or break out removed."""
    attributes = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
    attributes.setdefault("*", set()).add("style")
    return nh3.clean(markup, attributes=attributes, filter_style_properties=set(STYLE_PROPERTIES))


class _TextReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links:
            href = self.links.pop()
            if href and href != (self.parts[-1].strip() if self.parts else ""):
                self.parts.append(f" ({href})")
        if tag in BLOCKS and tag != "li":  # the next item's start breaks the line
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """Readable plain text of (already sanitised) HTML: blocks on their own lines, links shown."""
    reader = _TextReader()
    reader.feed(markup)
    reader.close()
    lines = (" ".join(line.split()) for line in "".join(reader.parts).splitlines())
    text = "\n".join(lines)
    return html.unescape(re.sub(r"\n{3,}", "\n\n", text).strip()) + "\n"
