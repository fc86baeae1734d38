"""``_headers`` in Netlify's syntax, and the defaults every server gets.

A path pattern on its own line, then its headers indented below it::

    /*
      X-Frame-Options: DENY
      Referrer-Policy: strict-origin-when-cross-origin
    /downloads/*
      Content-Disposition: attachment
      X-Robots-Tag: noindex

Patterns use the ``_redirects`` path syntax (``*`` as the last segment, ``:name`` for one
segment). Every pattern matching a path applies; for the same header a later block wins.

Only response headers that describe content or its security are accepted (the list below, plus
any ``X-`` header): a content repo may not set cookies, framing of the connection
(``Content-Length``, ``Transfer-Encoding``), ``Location`` or ``Content-Encoding``. Values are
printable ASCII without ``"``, ``\\`` or ``$`` (they are written into an nginx config and a
JavaScript function).

Defaults, before any ``_headers`` rule: content-hashed assets (``main.6f8fc17f.min.css``) are
``immutable`` for a year, pages and indexes (HTML, XML, JSON, text) revalidate on every
request, anything else may be cached five minutes -- the same rules as the S3 target's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import RulesError
from .rules import Redirect, check_source, under

ALLOWED = frozenset(
    name.lower()
    for name in (
        "Cache-Control",
        "Content-Type",
        "Content-Language",
        "Content-Disposition",
        "Expires",
        "Content-Security-Policy",
        "Content-Security-Policy-Report-Only",
        "Strict-Transport-Security",
        "Referrer-Policy",
        "Permissions-Policy",
        "Cross-Origin-Opener-Policy",
        "Cross-Origin-Embedder-Policy",
        "Cross-Origin-Resource-Policy",
        "Access-Control-Allow-Origin",
        "Link",
        "Vary",
        "Timing-Allow-Origin",
        "Report-To",
        "Reporting-Endpoints",
    )
)
"""Header names a ``_headers`` file may set (and any ``X-`` name but the few below)."""
REFUSED_X = frozenset(
    {
        "x-accel-redirect",
        "x-accel-buffering",
        "x-accel-expires",
        "x-accel-limit-rate",
        "x-accel-charset",
        "x-sendfile",
    }
)
"""``X-`` names nginx acts on instead of sending: they would let content steer the server."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_VALUE = re.compile(r"^[\x20-\x7e]{1,2000}$")
_HASHED = r"[.][0-9a-f]{8,64}([.]min)?[.][A-Za-z0-9]+$"
_PAGES = r"(/|[.]html?|[.]xml|[.]json|[.]txt|[.]webmanifest)$"
DEFAULTS: tuple[tuple[str, str, str], ...] = (
    (r".", "Cache-Control", "public, max-age=300"),
    (_HASHED, "Cache-Control", "public, max-age=31536000, immutable"),
    (_PAGES, "Cache-Control", "public, max-age=0, must-revalidate"),
)
"""(regex on the path, header, value) in order: a later match wins."""


@dataclass(frozen=True)
class HeaderRule:
    """A path pattern and the headers it sets, its path already under the site's mount."""

    source: str
    headers: tuple[tuple[str, str], ...]
    origin: str

    def regex(self) -> str:
        return Redirect(self.source, "/", 301, self.origin).regex()

    def matches(self, path: str) -> bool:
        return re.match(self.regex(), path) is not None


def parse_headers(text: str, origin: str, mount: str) -> list[HeaderRule]:
    """Every block of one ``_headers`` file; one bad line refuses the file."""
    rules: list[HeaderRule] = []
    source, where = "", ""
    found: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line, here = raw.strip(), f"{origin}:{number}"
        if not line or line.startswith("#"):
            continue
        if not raw[0].isspace():
            if source:
                rules.append(HeaderRule(under(mount, source), tuple(found), where))
            check_source(line, here)
            source, where, found = line, here, []
            continue
        if not source:
            raise RulesError(f"{here}: a header before any path; start the block with a path such as /*")
        found.append(header_line(line, here))
    if source:
        rules.append(HeaderRule(under(mount, source), tuple(found), where))
    return rules


def header_line(line: str, where: str) -> tuple[str, str]:
    name, sep, value = line.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _NAME.match(name):
        raise RulesError(f"{where}: expected 'Name: value' under a path, got {line[:80]!r}")
    lowered = name.lower()
    if lowered not in ALLOWED and (not lowered.startswith("x-") or lowered in REFUSED_X):
        raise RulesError(
            f"{where}: header {name!r} may not be set from _headers; allowed: caching, content "
            "and security headers (Cache-Control, Content-Type, Content-Security-Policy, X-...)"
        )
    if not _VALUE.match(value) or any(c in value for c in '"\\$'):
        raise RulesError(f"{where}: the value of {name} is empty, too long or holds a quote, \\ or $")
    return name, value


def headers_for(path: str, rules: list[HeaderRule]) -> dict[str, str]:
    """The headers a server sends for ``path``: the defaults, then every matching rule."""
    out: dict[str, str] = {}
    for pattern, name, value in DEFAULTS:
        if re.search(pattern, path):
            out[name] = value
    for rule in rules:
        if rule.matches(path):
            for name, value in rule.headers:
                out[_canonical(name, out)] = value
    return out


def _canonical(name: str, seen: dict[str, str]) -> str:
    """The spelling already used for this header, so ``cache-control`` replaces the default."""
    return next((k for k in seen if k.lower() == name.lower()), name)
