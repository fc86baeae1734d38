"""Find ``<img>`` tags in built HTML and splice ``<picture>`` markup in their place.

A real parser (:class:`html.parser.HTMLParser`) finds the tags, so ``<img`` inside a script,
a style block, a comment or an attribute value is never touched; its ``getpos()`` and
``get_starttag_text()`` give each tag's exact span. Only those spans are replaced, so every
other byte of the page stays as MkDocs wrote it (re-serialising the whole document would
reorder attributes and re-escape text, and make every page look changed to the deploy plan).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser

Attrs = tuple[tuple[str, str | None], ...]
OPT_OUT_ATTRIBUTE = "data-sitedeploy"
OPT_OUT_CLASS = "no-sitedeploy"


@dataclass(frozen=True)
class Tag:
    """A start tag's span in the page text and its attributes, in source order."""

    start: int
    end: int
    attrs: Attrs
    self_closing: bool

    def get(self, name: str) -> str | None:
        return next((value for key, value in self.attrs if key == name), None)

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.attrs)


@dataclass(frozen=True)
class ImgTag:
    """An ``<img>`` with the context that decides whether and how it is rewritten."""

    tag: Tag
    in_picture: bool
    link: Tag | None
    """The ``<a>`` the image sits in, if any (a lightbox link)."""

    @property
    def opted_out(self) -> bool:
        classes = (self.tag.get("class") or "").split()
        return self.tag.get(OPT_OUT_ATTRIBUTE) == "skip" or OPT_OUT_CLASS in classes


class _ImgFinder(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self._line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self._picture_depth = 0
        self._link: Tag | None = None
        self.images: list[ImgTag] = []

    def _tag(self, attrs: list[tuple[str, str | None]], self_closing: bool) -> Tag:
        line, column = self.getpos()
        start = self._line_starts[line - 1] + column
        raw = self.get_starttag_text() or ""
        return Tag(start, start + len(raw), tuple(attrs), self_closing)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> None:
        if tag == "img":
            self.images.append(ImgTag(self._tag(attrs, self_closing), self._picture_depth > 0, self._link))
        elif tag == "picture" and not self_closing:
            self._picture_depth += 1
        elif tag == "a" and not self_closing:
            self._link = self._tag(attrs, self_closing)

    def handle_endtag(self, tag: str) -> None:
        if tag == "picture":
            self._picture_depth = max(0, self._picture_depth - 1)
        elif tag == "a":
            self._link = None


def find_images(text: str) -> list[ImgTag]:
    """Every ``<img>`` start tag in the page, in document order."""
    finder = _ImgFinder(text)
    finder.feed(text)
    finder.close()
    return finder.images


def splice(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """Replace non-overlapping ``(start, end, replacement)`` spans; the rest stays identical."""
    out: list[str] = []
    cursor = 0
    for start, end, replacement in sorted(edits):
        out.append(text[cursor:start])
        out.append(replacement)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def start_tag(name: str, attrs: Attrs, self_closing: bool) -> str:
    """Serialise a start tag: attributes in the given order, values escaped, bare booleans kept."""
    parts = [name]
    for key, value in attrs:
        parts.append(key if value is None else f'{key}="{html.escape(value, quote=True)}"')
    return "<" + " ".join(parts) + (" />" if self_closing else ">")


def with_attrs(attrs: Attrs, replace: dict[str, str], add: dict[str, str]) -> Attrs:
    """``attrs`` with some values replaced in place and missing ones appended (author wins)."""
    out = [(key, replace.get(key, value)) for key, value in attrs]
    present = {key for key, _ in attrs}
    out += [(key, value) for key, value in add.items() if key not in present]
    return tuple(out)


@dataclass(frozen=True)
class Source:
    """One ``<source>`` of a ``<picture>``: a MIME type and its srcset."""

    mime: str
    srcset: str


def picture(
    img: ImgTag,
    sources: list[Source],
    fallback_src: str,
    fallback_srcset: str,
    sizes: str,
    width: int,
    height: int,
) -> str:
    """The ``<picture>`` that replaces one ``<img>``, keeping every attribute the author wrote."""
    sizes = img.tag.get("sizes") or sizes
    closing = img.tag.self_closing
    parts = ["<picture>"]
    for source in sources:
        attrs: Attrs = (("type", source.mime), ("srcset", source.srcset), ("sizes", sizes))
        parts.append(start_tag("source", attrs, closing))
    added = {
        "srcset": fallback_srcset,
        "sizes": sizes,
        "width": str(width),
        "height": str(height),
        "loading": "lazy",
        "decoding": "async",
    }
    attrs = with_attrs(img.tag.attrs, {"src": fallback_src}, added)
    parts.append(start_tag("img", _keep_aspect(attrs), closing))
    parts.append("</picture>")
    return "".join(parts)


def _keep_aspect(attrs: Attrs) -> Attrs:
    """Add ``height: auto`` so the width/height we add never stretch a CSS-narrowed image.

    Themes cap images with ``max-width: 100%``; with a ``height`` attribute and no
    ``height: auto`` rule (MkDocs' own theme has none) the picture would be distorted. The
    attributes still give the browser the aspect ratio before the file arrives (no layout shift).
    """
    style = next((value for key, value in attrs if key == "style"), None)
    if style is None:
        return (*attrs, ("style", "height: auto"))
    if "height" in style:
        return attrs
    merged = "height: auto; " + style
    return tuple((key, merged if key == "style" else value) for key, value in attrs)
