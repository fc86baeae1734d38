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
import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import GateError
from ..release.manifest import FileEntry, Manifest
from .sites import Built

SHOWN = 10
_ATTR = re.compile(rb"""\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_SRCSET = re.compile(rb"""\ssrcset\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_COMMENT = re.compile(rb"<!--.*?-->", re.S)
# A start tag, quoted values included: attributes count only inside one, so HTML shown as text
# in a code sample (``&lt;img src="x"&gt;``, whose quotes MkDocs leaves unescaped) is no link.
_TAG = re.compile(rb"""<[A-Za-z](?:"[^"]*"|'[^']*'|[^'">])*>""")
Candidates = tuple[str, ...]


@dataclass(frozen=True)
class BrokenLink:
    page: str
    link: str

    def __str__(self) -> str:
        return f"{self.page} -> {self.link}"


class LinkIndex:
    """The internal links of each page, by (path, content hash), kept from one gate to the next.

    A one-page edit changes a handful of HTML files; only those are read and parsed again.
    Each distinct link target is then looked up once, however many pages share it (the nav).
    """

    def __init__(self) -> None:
        self._pages: dict[tuple[str, str], list[tuple[str, Candidates]]] = {}

    @classmethod
    def load(cls, path: Path) -> LinkIndex:
        """The index saved by an earlier gate (``--once`` runs share it); empty if unreadable."""
        index = cls()
        try:
            raw = json.loads(path.read_bytes())
            index._pages = {
                (page, sha): [(link, tuple(c)) for link, c in links] for page, sha, links in raw["pages"]
            }
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return index

    def save(self, path: Path) -> None:
        pages = [[page, sha, links] for (page, sha), links in self._pages.items()]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"pages": pages}, separators=(",", ":")))
        tmp.replace(path)

    def broken(self, root: Path, manifest: Manifest) -> list[BrokenLink]:
        resolved: dict[tuple[str, str], Candidates | None] = {}
        current: dict[tuple[str, str], list[tuple[str, Candidates]]] = {}
        for page, entry in manifest.items():
            if page.endswith((".html", ".htm")) and not page.endswith("404.html"):
                key = (page, entry.sha256)
                links = self._pages.get(key)
                current[key] = links if links is not None else _page_targets(root, page, resolved)
        self._pages = current  # pages no longer in the release are forgotten
        files = set(manifest)
        found: dict[Candidates, bool] = {}
        broken = []
        for (page, _), links in sorted(current.items()):
            for link, candidates in links:
                ok = found.get(candidates)
                if ok is None:
                    ok = found[candidates] = any(c in files for c in candidates)
                if not ok:
                    broken.append(BrokenLink(page, link))
        return broken


def check_links(built: Built, index: LinkIndex | None = None) -> None:
    broken = (index or LinkIndex()).broken(built.root, built.manifest)
    if broken:
        listed = "; ".join(str(b) for b in broken[:SHOWN])
        more = f" (and {len(broken) - SHOWN} more)" if len(broken) > SHOWN else ""
        raise GateError(
            f"{len(broken)} broken internal link{'s' * (len(broken) != 1)} in the build of "
            f"{built.commit.short}: {listed}{more}; fix them and commit again"
        )


def broken_links(root: Path, files: set[str]) -> list[BrokenLink]:
    """The broken internal links of the release tree at ``root`` holding ``files``."""
    manifest = Manifest({p: FileEntry(p, 0, "") for p in files})  # the path stands in for a hash
    return LinkIndex().broken(root, manifest)


def _page_targets(
    root: Path, page: str, resolved: dict[tuple[str, str], Candidates | None]
) -> list[tuple[str, Candidates]]:
    folder = posixpath.dirname(page)
    out = []
    for link in sorted(page_links((root / page).read_bytes())):
        key = (folder, link)
        if key not in resolved:
            resolved[key] = _candidates(folder, link)
        candidates = resolved[key]
        if candidates is not None:
            out.append((link, candidates))
    return out


def page_links(data: bytes) -> set[str]:
    tags = b"\n".join(_TAG.findall(_COMMENT.sub(b"", data)))
    links = {next(g for g in m.groups() if g is not None) for m in _ATTR.finditer(tags)}
    for m in _SRCSET.finditer(tags):
        for candidate in (m.group(1) or m.group(2)).split(b","):
            if candidate.strip():
                links.add(candidate.split()[0])
    return {html.unescape(link.decode("utf-8", "replace")).strip() for link in links}


def _candidates(folder: str, link: str) -> Candidates | None:
    """The release paths that would satisfy ``link`` on a page in ``folder``; None if external."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not parts.path or link.startswith("//"):
        return None  # external, same-page anchor, or query only: not ours to check
    path = unquote(parts.path)
    joined = posixpath.normpath(path if path.startswith("/") else posixpath.join("/", folder, path))
    rel = joined.lstrip("/")
    if path.endswith("/") or not rel:
        return (posixpath.join(rel, "index.html"),)
    return (rel, posixpath.join(rel, "index.html"))
