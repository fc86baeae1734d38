"""The gate before the switch: every internal ``href`` and ``src`` resolves to a file.

Runs on the built release tree before anything is staged; a broken link raises
:class:`~sitedeploy.errors.GateError` listing the links, and the live release stays. A link is
internal when it has no scheme and no host; it resolves like a browser would (relative to the
page's folder, ``/`` is the release root), and a folder means its ``index.html``.
Resolution is cached per (folder, link), since navigation repeats the same links on every page.
``404.html`` pages are skipped: MkDocs writes their links from the server root on purpose
(the page is served for any missing path), so they only resolve where the server maps them.
"""

from __future__ import annotations

import html
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..build import Built
from ..errors import GateError

SHOWN = 10
_ATTR = re.compile(rb"""\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_SRCSET = re.compile(rb"""\ssrcset\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_COMMENT = re.compile(rb"<!--.*?-->", re.S)


@dataclass(frozen=True)
class BrokenLink:
    page: str
    link: str

    def __str__(self) -> str:
        return f"{self.page} -> {self.link}"


def check_links(built: Built) -> None:
    broken = broken_links(built.root, set(built.manifest))
    if broken:
        listed = "; ".join(str(b) for b in broken[:SHOWN])
        more = f" (and {len(broken) - SHOWN} more)" if len(broken) > SHOWN else ""
        raise GateError(
            f"{len(broken)} broken internal link{'s' * (len(broken) != 1)} in the build of "
            f"{built.commit.short}: {listed}{more}; fix them and commit again"
        )


def broken_links(root: Path, files: set[str]) -> list[BrokenLink]:
    resolved: dict[tuple[str, str], bool] = {}
    broken = []
    for page in sorted(p for p in files if p.endswith((".html", ".htm")) and not p.endswith("404.html")):
        folder = posixpath.dirname(page)
        for link in page_links((root / page).read_bytes()):
            key = (folder, link)
            ok = resolved.get(key)
            if ok is None:
                ok = resolved[key] = _resolves(folder, link, files)
            if not ok:
                broken.append(BrokenLink(page, link))
    return broken


def page_links(data: bytes) -> set[str]:
    data = _COMMENT.sub(b"", data)
    links = {next(g for g in m.groups() if g is not None) for m in _ATTR.finditer(data)}
    for m in _SRCSET.finditer(data):
        for candidate in (m.group(1) or m.group(2)).split(b","):
            if candidate.strip():
                links.add(candidate.split()[0])
    return {html.unescape(link.decode("utf-8", "replace")).strip() for link in links}


def _resolves(folder: str, link: str, files: set[str]) -> bool:
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not parts.path or link.startswith("//"):
        return True  # external, same-page anchor, or query only: not ours to check
    path = unquote(parts.path)
    joined = posixpath.normpath(path if path.startswith("/") else posixpath.join("/", folder, path))
    if joined.startswith("/.."):
        return False
    rel = joined.lstrip("/")
    if path.endswith("/") or not rel:
        return posixpath.join(rel, "index.html") in files
    return rel in files or posixpath.join(rel, "index.html") in files
