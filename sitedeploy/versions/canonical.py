"""Canonical links of a versioned target, as mike's ``canonical_version`` gives them.

Every page of a version carries ``<link rel="canonical">`` to the same page of the *default*
version (``/latest/guide/``) when the default has that page; a page the default lacks keeps its
own (or none), since a canonical link to a 404 is worse than none. Search engines then rank the
default's page and show old versions only when asked for them (robots.txt lets them crawl).

When: at the publish of a version, against the default the root will serve once this run is
done (its aliases following their rules), and the pages that default's live release (or this
run's build of it, published first) has. A later move of the default does not rewrite versions
already live: ``sitedeploy versions deploy --rebuild`` republishes exactly the versions whose
links would change (the links are part of the line's release key; the others are "unchanged",
and builds come from the build cache).

The href: when the page already names a canonical URL (MkDocs writes one from ``site_url``),
its site part (``https://example.com/``, a version or alias segment at its end dropped) is
kept, so the link is absolute; otherwise it is root-relative, like the root's ``404.html``
(the versioned root served at the site's root).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..redirects.removed import is_page, page_url
from ..release.records import read_manifest
from .sitemap import site_base
from .state import FamilyState, served_default

if TYPE_CHECKING:
    from .layout import Family

_CANONICAL = re.compile(rb"<link\b[^>]*\brel=[\"']?canonical\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(rb"\bhref=(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.IGNORECASE)
_HEAD = re.compile(rb"<head[^>]*>", re.IGNORECASE)
_SITE = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%/-]*)?")


@dataclass(frozen=True)
class Canonical:
    """Where a version's pages point: ``default`` (a version or alias name) and its pages."""

    default: str
    pages: frozenset[str] | None
    """Release paths of the default's HTML pages; None: the version *is* the default's."""
    names: frozenset[str] = frozenset()
    """Every version and alias name, to drop from the end of a page's own ``site_url``."""

    @property
    def fingerprint(self) -> str:
        pages = sorted(self.pages) if self.pages is not None else None
        data = json.dumps([self.default, pages]).encode()  # not names: they only trim a site_url
        return hashlib.sha256(data).hexdigest()[:16]

    def href(self, path: str, page: bytes) -> str | None:
        """The canonical URL of release file ``path`` (a page), or None to leave it as it is."""
        if not is_page(path) or (self.pages is not None and path not in self.pages):
            return None
        url = page_url(path)
        return f"{self.site(url, page)}{self.default}{url}"

    def site(self, url: str, page: bytes) -> str:
        """``https://host/base/`` from the page's own canonical link, else ``/``."""
        own = existing_href(page)
        if own is None or not _SITE.fullmatch(own) or not own.endswith(url):
            return "/"
        return site_base(own[: len(own) - len(url)] + "/", set(self.names))


def existing_href(page: bytes) -> str | None:
    link = _CANONICAL.search(page)
    href = _HREF.search(link.group(0)) if link else None
    if href is None:
        return None
    raw = next(g for g in href.groups() if g is not None)
    return html.unescape(raw.decode("utf-8", "replace"))


def with_canonical(page: bytes, href: str) -> bytes:
    """``page`` with its canonical link replaced by (or, without one, given) ``href``."""
    tag = f'<link rel="canonical" href="{html.escape(href, quote=True)}">'.encode()
    link = _CANONICAL.search(page)
    if link is not None:
        return page[: link.start()] + tag + page[link.end() :]
    match = _HEAD.search(page)
    at = match.end() if match else 0
    return page[:at] + tag + page[at:]


def plan_canonical(family: Family, state: FamilyState, name: str) -> Canonical | None:
    """Where version ``name``'s pages point once ``state`` is served; None: no default yet, or
    its version has no live release to compare with (its pages are not known)."""
    default = served_default(state)
    target = state.resolve(default) if default else None
    if default is None or target is None:
        return None
    names = frozenset(state.links())
    if target == name:
        return Canonical(default, None, names)
    with family.line(target) as line:
        live = line.live_release()
        manifest = read_manifest(line, live) if live else None
    if manifest is None:
        return None
    return Canonical(default, frozenset(p for p in manifest if is_page(p)), names)
