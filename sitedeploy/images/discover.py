"""Which built pages mention images, and which files in the site those ``src`` URLs name.

URLs are resolved the way a browser would from the published page (``mount`` + the page's path),
then mapped back into ``site_dir``. Anything that does not land inside ``site_dir`` (another
site's mount, an external host, ``..`` games, a symlink pointing out) is never opened.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

RASTER_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".avif", ".gif"})
_HAS_IMG = re.compile(rb"<img[\s/>]", re.IGNORECASE)


@dataclass(frozen=True)
class Resolved:
    """An ``src`` that names a raster file inside the site."""

    path: Path
    """Absolute path of the image file."""
    directory_url: str
    """The ``src`` up to and including its last ``/`` (``../img/``), reused for variant URLs."""


class Escapes(Exception):
    """An image URL that resolves outside ``site_dir`` or names no possible file (refused,
    reported as a warning naming the page)."""

    def __init__(self, reason: str = "points outside the site") -> None:
        super().__init__(reason)
        self.reason = reason


MAX_PAGE_BYTES = 64 * 1024**2
"""Larger "pages" are not parsed (left as they are): no docs page is that big, and reading one
whole would cost its size in memory."""


def html_pages(site_dir: Path) -> Iterator[tuple[Path, bytes]]:
    """Pages that contain ``<img`` at all, in a stable order; most pages are skipped unparsed."""
    for root, dirs, files in os.walk(site_dir):
        dirs.sort()
        for name in sorted(files):
            if name.endswith((".html", ".htm")):
                path = Path(root, name)
                if path.is_symlink() or path.stat().st_size > MAX_PAGE_BYTES:
                    continue
                data = path.read_bytes()
                if _HAS_IMG.search(data):
                    yield path, data


def page_url(site_dir: Path, page: Path, mount: str) -> str:
    """The URL path a page is published at: ``/docs/`` + ``guide/index.html``."""
    return mount + page.relative_to(site_dir).as_posix()


def resolve(src: str, page: str, mount: str, site_dir: Path) -> Resolved | None:
    """The raster file ``src`` refers to, or None when it is not ours to touch.

    Raises :class:`Escapes` when a path inside the mount resolves outside the site.
    """
    parts = urlsplit(src.strip())
    if parts.scheme or parts.netloc or not parts.path:
        return None  # external, protocol-relative, data: URI, or a bare #fragment
    if posixpath.splitext(parts.path)[1].lower() not in RASTER_SUFFIXES:
        return None  # SVG and everything else
    url = posixpath.normpath(posixpath.join(posixpath.dirname(page), unquote(parts.path)))
    if any(ord(c) < 32 for c in url):  # %00 and friends: no file has that name
        raise Escapes("contains a NUL or control character")
    if not url.startswith(mount):
        return None  # another site's mount (or outside every mount)
    path = _inside(site_dir, url[len(mount) :])
    if not path.is_file():
        return None
    directory = parts.path[: parts.path.rfind("/") + 1]
    return Resolved(path, directory)


def _inside(site_dir: Path, relative: str) -> Path:
    """``site_dir / relative`` as written (variants go next to it, even if it is a symlink),
    after checking that what it really points at is inside the site."""
    path = site_dir / relative
    if not path.resolve().is_relative_to(site_dir.resolve()):
        raise Escapes()
    return path
