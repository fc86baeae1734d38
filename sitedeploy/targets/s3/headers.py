"""HTTP headers of the objects the S3 target writes, and the order it writes them in.

Cache-Control is chosen by the first matching rule: the target's ``cache_control`` table
(in file order), then the built-in rules below. A glob without ``/`` matches the file name
anywhere (``*.css``); a glob with ``/`` matches the whole release path (``assets/*``), and
``*`` crosses folders there, as in :func:`fnmatch.fnmatchcase`.

Built-in rules:
    pages and indexes (html, xml, json, txt, webmanifest)   public, max-age=0, must-revalidate
    content-hashed names (``main.6f8fc17f.min.css``,
    ``photo-960.0123456789.webp``)                          public, max-age=31536000, immutable
    everything else                                         public, max-age=300

Content-Type comes from the manifest (``charset=utf-8`` on text). Files matching a ``gzip``
glob are stored compressed with ``Content-Encoding: gzip``.

A release's ``_redirects`` and ``_headers`` (:mod:`.site_rules`) add to this: an exact 301
becomes a zero-byte object whose ``redirect`` is its location, and ``_headers`` values S3
stores with an object (``EXTRA``) override these.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

REVALIDATE = "public, max-age=0, must-revalidate"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"

_REVALIDATE_EXT = (".html", ".htm", ".xml", ".json", ".txt", ".webmanifest", ".xml.gz")
_HASHED = re.compile(r"\.[0-9a-f]{8,64}(\.min)?\.[A-Za-z0-9]+$")

ASSETS, PAGES, INDEXES = 0, 1, 2
"""Publishing groups, written in this order: a page goes live only after its assets do, and
the sitemap and search index only after the pages they point to."""


EXTRA = {
    "Content-Language": "ContentLanguage",
    "Content-Disposition": "ContentDisposition",
    "Expires": "Expires",
}
"""Headers S3 keeps with an object besides Content-Type, Cache-Control and Content-Encoding:
name -> the PutObject argument."""


class ObjectHeaders(NamedTuple):
    content_type: str
    cache_control: str
    content_encoding: str | None = None
    redirect: str | None = None
    """``x-amz-website-redirect-location``: the website endpoint answers 301 to it."""
    extra: tuple[tuple[str, str], ...] = ()
    """(name, value) of :data:`EXTRA` headers, sorted by name."""

    def put_args(self) -> dict[str, str]:
        """Keyword arguments for PutObject / CopyObject."""
        args = {"ContentType": self.content_type, "CacheControl": self.cache_control}
        if self.content_encoding:
            args["ContentEncoding"] = self.content_encoding
        if self.redirect:
            args["WebsiteRedirectLocation"] = self.redirect
        args.update((EXTRA[name], value) for name, value in self.extra)
        return args

    def to_row(self) -> list[object]:
        """The state object's form: the three first fields alone when nothing else is set, so
        the state of a site without rules is what it was before they existed."""
        row: list[object] = list(self[:3])
        if self.redirect or self.extra:
            row += [self.redirect, [list(x) for x in self.extra]]
        return row

    @classmethod
    def from_row(cls, row: list[Any]) -> ObjectHeaders:
        content_type, cache_control, encoding, redirect, extra = [*row, None, None, None][:5]
        return cls(
            str(content_type),
            str(cache_control),
            None if encoding is None else str(encoding),
            None if redirect is None else str(redirect),
            tuple((str(n), str(v)) for n, v in extra or ()),
        )

    @classmethod
    def from_response(cls, response: Any) -> ObjectHeaders:
        """The headers a HeadObject or GetObject answer shows (compared with what was written)."""
        extra = []
        for name, arg in EXTRA.items():
            value = response.get("ExpiresString") if name == "Expires" else response.get(arg)
            if value:
                extra.append((name, str(value)))
        return cls(
            response.get("ContentType", ""),
            response.get("CacheControl", ""),
            response.get("ContentEncoding"),
            response.get("WebsiteRedirectLocation"),
            tuple(sorted(extra)),
        )


def glob_matches(glob: str, path: str) -> bool:
    if "/" not in glob:
        return fnmatch.fnmatchcase(posixpath.basename(path), glob)
    return fnmatch.fnmatchcase(path, glob.lstrip("/"))


def is_content_hashed(path: str) -> bool:
    """``name.<8+ hex>.ext``: the name changes whenever the bytes do, so caches may keep it."""
    return bool(_HASHED.search(posixpath.basename(path)))


class HeaderRules:
    def __init__(self, cache_control: Mapping[str, str], gzip: Sequence[str]) -> None:
        self.cache_control = list(cache_control.items())
        self.gzip = tuple(gzip)

    def cache_control_for(self, path: str) -> str:
        for glob, value in self.cache_control:
            if glob_matches(glob, path):
                return value
        if path.lower().endswith(_REVALIDATE_EXT):
            return REVALIDATE
        if is_content_hashed(path):
            return IMMUTABLE
        return SHORT

    def tag(self) -> str:
        """The rules as a short ASCII string (stored beside each manifest: see :mod:`.live`)."""
        return json.dumps([self.cache_control, list(self.gzip)], separators=(",", ":"))

    @classmethod
    def from_tag(cls, tag: str | None) -> HeaderRules | None:
        """Rules back from :meth:`tag`; None if there is none or it is not one."""
        try:
            cache_control, gzip = json.loads(tag or "")
            return cls({str(glob): str(value) for glob, value in cache_control}, [str(g) for g in gzip])
        except (TypeError, ValueError):
            return None

    def gzipped(self, path: str) -> bool:
        return any(glob_matches(glob, path) for glob in self.gzip)

    def headers_for(self, path: str, content_type: str) -> ObjectHeaders:
        encoding = "gzip" if self.gzipped(path) else None
        return ObjectHeaders(content_type, self.cache_control_for(path), encoding)


class KeyHeaders(Protocol):
    """Whatever gives each key its headers: :class:`HeaderRules`, or ``site_rules.SiteRules``."""

    def headers_for(self, path: str, content_type: str) -> ObjectHeaders: ...


def publish_group(path: str) -> int:
    """Which group a path is written in: assets, then pages, then sitemap and search index."""
    name = posixpath.basename(path).lower()
    if name.startswith("sitemap") and (name.endswith(".xml") or name.endswith(".xml.gz")):
        return INDEXES
    if name == "search_index.json":
        return INDEXES
    if name.endswith((".html", ".htm")):
        return PAGES
    return ASSETS
