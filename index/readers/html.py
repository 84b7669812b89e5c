"""HTML pages: their visible text, one block per line, through Beautiful Soup."""

from __future__ import annotations

import re

from index.readers.text import decode_bytes
from index.tables import table_lines

SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
VERSION = 5
"""Raise when what this reader makes of the same bytes changes (index/readers/__init__.py EXTRACTORS)."""


def read(data: bytes) -> tuple[str, str]:
    """A page's (visible text, "html")."""
    text, _ = decode_bytes(data)
    return html_to_text(text), "html"


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page, one block per line, scripts, styles and menus dropped; of a saved web
    page whose <main> (or <article>s) holds the text, that text and its headline alone (_keep_the_content)."""
    from bs4 import BeautifulSoup, NavigableString  # deferred: slow to import, and only HTML needs it

    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head", "nav"]):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": "navigation"}):
        tag.decompose()
    _keep_the_content(soup)
    # Source line wraps and inline tags (<a>, <em>) must not cut a sentence: collapse ASCII
    # whitespace inside text (NBSP is content and stays), then break lines only at blocks.
    for node in soup.find_all(string=True):
        if type(node) is NavigableString and node.find_parent("pre") is None:
            node.replace_with(_HTML_SPACE.sub(" ", str(node)))
    for table in reversed(soup.find_all("table")):  # inner tables first: an outer cell then holds their text
        table.replace_with("\n" + "\n".join(_html_table_lines(table)) + "\n")
    for terms in soup.find_all("dl"):
        _name_definitions(terms)
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (line.strip(" \t\r\f\v") for line in soup.get_text().splitlines())
    return "\n".join(line for line in lines if line.strip())


CONTENT_WORDS = 20
"""A page's <main> or <article>s stand for the page only when they hold at least this many words."""


def _keep_the_content(soup) -> None:
    """A saved web page around its text: when <main> (or role="main"), else the page's <article>s, hold the
    text, only they and the <h1> headlines before them stay; site headers, sidebars, footers and "read more"
    lists go (otherwise they become passages: "© 2025 ACME. All rights reserved.", "Sign up for our newsletter")."""
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    kept = [main] if main is not None else [a for a in soup.find_all("article") if a.find_parent("article") is None]
    if not kept or sum(len(k.get_text(" ").split()) for k in kept) < CONTENT_WORDS:
        return
    inside = {id(k) for k in kept}
    headlines = [h for h in soup.find_all("h1", limit=50) if not any(id(p) in inside for p in h.parents)]
    body = soup.body or soup
    parts = [part.extract() for part in headlines[:1] + kept]
    body.clear()
    for part in parts:
        body.append(part)


def _html_table_lines(table) -> list[str]:
    """A table's rows as lines (index/tables.py): a first row of <th> cells names the cells of the others."""
    rows = [
        tr.find_all(["td", "th"], recursive=False) for tr in table.find_all("tr") if tr.find_parent("table") is table
    ]
    return table_lines(
        [[_one_line(c) for c in row] for row in rows], header=bool(rows) and all(c.name == "th" for c in rows[0])
    )


def _one_line(element) -> str:
    """An element's text with its whitespace runs (line breaks, the gaps between its blocks) made one space."""
    return " ".join(element.get_text(" ").split())


def _name_definitions(terms) -> None:
    """A definition list's <dd> read alone does not say what it defines: each starts with its terms
    ("Berth: A place where a boat is moored."), and the <dt> lines go."""
    named: list[str] = []
    after_definition = False
    for item in terms.find_all(["dt", "dd"]):
        if item.find_parent("dl") is not terms:
            continue
        if item.name == "dt":
            named = [] if after_definition else named
            named.append(_one_line(item))
            after_definition = False
            item.decompose()
        else:
            if named:
                item.insert(0, " / ".join(t for t in named if t) + ": ")
            after_definition = True


_HTML_SPACE = re.compile(r"[ \t\r\n\f\v]+")


_HTML_BLOCKS = [
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "td",
    "th",
    "tr",
    "ul",
]
