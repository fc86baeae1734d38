"""The root ``sitemap.xml`` of a versioned target: an index of the default version's sitemap.

MkDocs writes ``sitemap.xml`` with absolute URLs when ``site_url`` is set. When a version is
published, the site those URLs share (``https://docs.example.com/``) is recorded with its line
in the family state (:func:`site_of`); the root release then serves a ``<sitemapindex>``
naming ``<site><default>/sitemap.xml`` and a ``Sitemap:`` line in ``robots.txt``. Without
``site_url`` (relative or no sitemap) there is no absolute URL to give, and the root serves no
sitemap.

The URLs come from a build (untrusted): only plain ``http(s)://host[:port]/path`` characters are
accepted, so nothing read from a sitemap can break out of the XML or robots.txt it lands in.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from ..release.manifest import Manifest

LIMIT = 4 << 20
"""Bytes of a version's sitemap read (MkDocs writes about 150 bytes a page)."""
_LOC = re.compile(rb"<loc>\s*([^<\s]{1,2000})\s*</loc>")
SITE = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?/[A-Za-z0-9._~%/-]*")


def site_of(root: Path, manifest: Manifest) -> str:
    """The base URL every ``<loc>`` of the build's ``sitemap.xml`` shares, ending in ``/``;
    empty when there is no sitemap or a URL is not absolute (no ``site_url``)."""
    if "sitemap.xml" not in manifest:  # a regular file of the build (the manifest lists no links)
        return ""
    fd = os.open(root / "sitemap.xml", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        data = f.read(LIMIT)
    locs = [m.decode("ascii", "replace") for m in _LOC.findall(data)]
    if not locs or not all(SITE.fullmatch(u) for u in locs):
        return ""
    common = os.path.commonprefix(locs)  # noqa: RUF071 - by character, then cut at the last "/"
    return common[: common.rindex("/") + 1] if common.count("/") >= 3 else ""


def site_base(site: str, names: set[str]) -> str:
    """``site`` without a version or alias segment at its end (``site_url`` set per version)."""
    head, _, last = site.rstrip("/").rpartition("/")
    return head + "/" if last in names and "://" in head else site


def sitemap_index(base: str, default: str) -> bytes:
    loc = html.escape(f"{base}{default}/sitemap.xml", quote=True)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"<sitemap><loc>{loc}</loc></sitemap>\n</sitemapindex>\n"
    ).encode()
