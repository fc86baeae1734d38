"""From a page's ``<img>`` tags and the rendered outcomes to the rewritten page text.

:mod:`.rewrite` knows HTML; :mod:`.discover` knows URLs and files; this module joins them:
which images qualify, what their ``srcset`` lists say, where a lightbox link should point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from . import discover
from .model import MIME_TYPES, Outcome, Variant
from .rewrite import ImgTag, Source, find_images, picture, splice, start_tag, with_attrs


@dataclass(frozen=True)
class PageImage:
    """An ``<img>`` to rewrite, the file its ``src`` names, and a link to the same file."""

    img: ImgTag
    file: discover.Resolved
    link: discover.Resolved | None

    @property
    def source(self) -> Path:
        return self.file.path


def page_images(
    text: str, page_url: str, mount: str, site_dir: Path, on_escape: Callable[[str, str], None]
) -> list[PageImage]:
    """The ``<img>`` tags of one page that the stage should rewrite, with their files.

    Left alone: images with their own ``srcset``, inside an author's ``<picture>``, opted out,
    external, SVG or otherwise not raster, or whose file does not exist in the site.
    """
    found = []
    for img in find_images(text):
        src = img.tag.get("src")
        if not src or img.in_picture or img.opted_out or img.tag.has("srcset"):
            continue
        try:
            resolved = discover.resolve(src, page_url, mount, site_dir)
            href = img.link.get("href") if img.link else None
            link = discover.resolve(href, page_url, mount, site_dir) if href else None
        except discover.Escapes as refused:
            on_escape(src, refused.reason)
            continue
        if resolved is not None:
            found.append(PageImage(img, resolved, link if link and link.path == resolved.path else None))
    return found


def rewrite_page(text: str, images: list[PageImage], outcomes: dict[Path, Outcome], sizes: str) -> str:
    """The page with each qualifying ``<img>`` replaced by a ``<picture>``."""
    edits: dict[int, tuple[int, int, str]] = {}
    for image in images:
        outcome = outcomes.get(image.source)
        if outcome is None or outcome.status != "ok" or not outcome.variants:
            continue
        tag = image.img.tag
        edits[tag.start] = (tag.start, tag.end, _picture_for(image, outcome, sizes))
        relinked = _relinked(image, outcome)
        if relinked is not None and image.img.link is not None:
            link = image.img.link
            edits[link.start] = (link.start, link.end, relinked)
    return splice(text, edits.values())


def _picture_for(image: PageImage, outcome: Outcome, sizes: str) -> str:
    sources = [Source(MIME_TYPES[fmt], srcset(image, outcome, fmt)) for fmt in _modern_formats(outcome)]
    fallback = [v for v in outcome.variants if v.format == outcome.fallback]
    src = url_of(image.file, image.img.tag.get("src") or "", fallback[-1], image.source.stem)
    return picture(
        image.img,
        sources,
        src,
        srcset(image, outcome, outcome.fallback),
        sizes,
        outcome.width,
        outcome.height,
    )


def _modern_formats(outcome: Outcome) -> list[str]:
    """Formats other than the fallback, best first (AVIF before WebP), as the browser reads in order."""
    present = {v.format for v in outcome.variants if v.format != outcome.fallback}
    return [fmt for fmt in ("avif", "webp", "png", "jpeg") if fmt in present]


def srcset(image: PageImage, outcome: Outcome, fmt: str) -> str:
    authored = image.img.tag.get("src") or ""
    return ", ".join(
        f"{url_of(image.file, authored, v, image.source.stem)} {v.width}w"
        for v in outcome.variants
        if v.format == fmt
    )


def url_of(file: discover.Resolved, authored: str, variant: Variant, stem: str) -> str:
    """A variant's URL in the same form as the author's ``src`` (relative stays relative)."""
    if variant.is_original:
        return authored
    return file.directory_url + quote(variant.filename(stem))


def _relinked(image: PageImage, outcome: Outcome) -> str | None:
    """The wrapping ``<a>`` pointed at the largest fallback variant (lightboxes open that).

    None when there is no such link, or the largest candidate is the original anyway.
    """
    link = image.img.link
    largest = [v for v in outcome.variants if v.format == outcome.fallback][-1]
    if link is None or image.link is None or largest.is_original:
        return None
    href = url_of(image.link, link.get("href") or "", largest, image.source.stem)
    return start_tag("a", with_attrs(link.attrs, {"href": href}, {}), link.self_closing)
