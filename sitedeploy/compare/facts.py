"""What a reader sees of one built page, read from its HTML: the visible text of its content,
its anchors, its internal links and (for the first page) the site's navigation.

One pass of the standard library's HTML parser, no third-party code and nothing executed.
Engines wrap the same Markdown in different themes, so the text compared is the page's
content area (Material's and Zensical's ``article.md-content__inner``, MkDocs' theme's
``div[role=main]``, else ``<main>``, else ``<body>``), one line per block element, with
whitespace collapsed; the chrome (header, footer, the generator's name) is left out. The
navigation is read from the primary nav (``md-nav--primary``, MkDocs' ``navbar-nav``,
ReadTheDocs' ``wy-menu-vertical``) as (depth, title, link) rows, the table of contents of
the current page excluded.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

_SKIP = frozenset({"script", "style", "svg", "noscript", "template", "head"})
_BLOCK = frozenset(
    {
        *("p", "div", "li", "tr", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"),
        *("blockquote", "section", "article", "dt", "dd", "br", "hr", "figure", "figcaption", "details"),
        *("summary", "td", "th"),
    }
)
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "source", "wbr", "col", "area", "base"})
_HASH = re.compile(r"\.[0-9a-f]{8,}(?=\.)")
"""A content hash in an asset name (``main.6f8e1a2b.min.css``): engines fingerprint differently."""
_PERMALINK = frozenset({"¶", "#", "§", "🔗"})
MAX_LINES = 5000


def unhashed(name: str) -> str:
    """An asset path with its content hash removed, so the same asset matches across engines."""
    return _HASH.sub("", name)


@dataclass
class NavEntry:
    depth: int
    title: str
    target: str
    """The site path it links to (``guide/intro/``), empty for a section without a page."""


@dataclass
class PageFacts:
    title: str = ""
    lines: list[str] = field(default_factory=list)
    """The content's visible text, one block per line, whitespace collapsed."""
    anchors: set[str] = field(default_factory=set)
    links: list[tuple[str, str]] = field(default_factory=list)
    """Internal links of the content as (site path, fragment)."""
    nav: list[NavEntry] = field(default_factory=list)


def read_page(html: str, page: str) -> PageFacts:
    """The facts of ``html``, published at the site path ``page`` (``guide/intro/index.html``)."""
    parser = _Parser(page)
    parser.feed(html)
    parser.close()
    return parser.facts()


def resolve(page: str, href: str) -> tuple[str, str] | None:
    """The site path and fragment an ``href`` on ``page`` points to; None when it leaves the site."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith("//"):
        return None
    if not parts.path:
        return page, unquote(parts.fragment)
    base = posixpath.dirname(page)
    path = posixpath.normpath(posixpath.join(base, unquote(parts.path)))
    if path.startswith("../") or path == "..":
        return None
    path = "" if path == "." else path
    if parts.path.endswith("/") and path:
        path += "/"
    return page_file(path), unquote(parts.fragment)


def page_file(path: str) -> str:
    """The file a site path is served from (``guide/`` -> ``guide/index.html``)."""
    if path == "" or path.endswith("/"):
        return f"{path}index.html"
    return path


@dataclass
class _Item:
    """A navigation entry being read: its title is the text of its first link or label."""

    depth: int
    parts: list[str] = field(default_factory=list)
    target: str = ""
    done: bool = False

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())


@dataclass
class _Region:
    """A candidate content area: the best one found (lowest ``rank``) gives the page's text."""

    rank: int
    depth: int
    lines: list[str] = field(default_factory=lambda: [""])
    links: list[tuple[str, str]] = field(default_factory=list)
    open: bool = True


class _Parser(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.stack: list[tuple[str, str]] = []  # (tag, role: content/nav/skip/toc/"")
        self.regions: list[_Region] = [_Region(3, 0)]  # the whole page, the last resort
        self.title: list[str] = []
        self.in_title = False
        self.anchors: set[str] = set()
        self.nav_depth: int | None = None
        self.nav: list[NavEntry] = []
        self.item: _Item | None = None
        self.li_depth = 0

    # ------------------------------------------------------------------ structure

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = set(a.get("class", "").split())
        if a.get("id"):
            self.anchors.add(a["id"])
        if tag == "a" and a.get("name"):
            self.anchors.add(a["name"])
        role = self._role(tag, a, classes)
        if tag in _VOID:
            self._block(tag)
            return
        self.stack.append((tag, role))
        if tag == "title":
            self.in_title = True
        self._block(tag)
        if tag == "a" and "href" in a:
            self._link(a["href"], classes)
        self._nav_start(tag)

    def _role(self, tag: str, a: dict[str, str], classes: set[str]) -> str:
        if tag in _SKIP:
            return "skip"
        rank = 1 if "md-content__inner" in classes or (tag == "div" and a.get("role") == "main") else 0
        rank = 2 if not rank and tag == "main" else rank
        if rank and not any(r.rank == rank for r in self.regions):
            self.regions.append(_Region(rank, len(self.stack) + 1))
            return "content"
        if (
            self.nav_depth is None
            and not self.nav
            and ("md-nav--primary" in classes or "navbar-nav" in classes or "wy-menu-vertical" in classes)
        ):
            self.nav_depth = len(self.stack) + 1
            return "nav"
        if "md-nav--secondary" in classes or a.get("data-md-component") == "toc":
            return "toc"
        return ""

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not any(t == tag for t, _ in self.stack):
            return
        while self.stack:
            top, _ = self.stack.pop()
            self._nav_end(top)
            if top == "title":
                self.in_title = False
            for region in self.regions:
                if region.open and region.depth and len(self.stack) < region.depth:
                    region.open = False
            if self.nav_depth is not None and len(self.stack) < self.nav_depth:
                self.nav_depth = None
            if top == tag:
                break
        self._block(tag)

    def _skipping(self) -> bool:
        return any(role in ("skip", "toc") for _, role in self.stack)

    def _open(self) -> list[_Region]:
        return [region for region in self.regions if region.open]

    # ------------------------------------------------------------------ text

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        if self._skipping() or data.strip() in _PERMALINK:
            return
        if self.item is not None and not self.item.done:
            self.item.parts.append(data)
        for region in self._open():
            region.lines[-1] += data

    def _block(self, tag: str) -> None:
        if tag in _BLOCK:
            for region in self._open():
                if region.lines[-1].strip() and len(region.lines) < MAX_LINES:
                    region.lines.append("")

    def _link(self, href: str, classes: set[str]) -> None:
        found = resolve(self.page, href)
        if found is not None and not self._skipping() and "headerlink" not in classes:
            for region in self._open():
                region.links.append(found)
        if self.item is not None and not self.item.target:
            self.item.target = found[0] if found else href

    # ------------------------------------------------------------------ navigation

    def _nav_start(self, tag: str) -> None:
        if self.nav_depth is None or self._skipping():
            return
        if tag == "li":
            self._close_item()
            self.li_depth += 1
            self.item = _Item(self.li_depth)
        elif tag in ("ul", "nav") and self.item is not None:
            self._close_item()

    def _nav_end(self, tag: str) -> None:
        if self.nav_depth is None:
            return
        if tag == "li" and self.li_depth:
            self._close_item()
            self.li_depth -= 1
        elif tag in ("a", "label") and self.item is not None and self.item.text:
            self.item.done = True  # the first label or link is the entry's title

    def _close_item(self) -> None:
        if self.item is None:
            return
        if self.item.text:
            self.nav.append(NavEntry(self.item.depth, self.item.text, self.item.target))
        self.item = None

    def facts(self) -> PageFacts:
        self._close_item()
        chosen = min(self.regions, key=lambda region: region.rank)
        lines = [" ".join(line.split()) for line in chosen.lines]
        return PageFacts(
            title=" ".join("".join(self.title).split()),
            lines=[line for line in lines if line],
            anchors=self.anchors,
            links=chosen.links,
            nav=self.nav,
        )
