"""Pages a preview changes against production, and the comment that lists them.

A preview's pages carry a ``noindex`` mark, so their bytes always differ from production's;
the comparison uses the preview's build *before* the mark (:class:`~sitedeploy.versions.building.LineBuild`
keeps it), which is reproducible: a page whose source did not change has production's hash.
Only pages count (``.html``); assets that changed show through the pages that use them.

The comment quotes names a pull request chose (its branch, its files), which may come from a
fork: each goes in a code span with backticks removed, and links are percent-encoded, so
neither Markdown, HTML nor ``@mentions`` in a file name do anything.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import SitedeployError
from ..release.records import read_manifest

if TYPE_CHECKING:
    from ..release.manifest import Manifest
    from ..versions.layout import Family

LISTED = 50
"""Pages listed per kind; the rest are counted."""


@dataclass(frozen=True)
class PageChanges:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def against_production(family: Family, preview: Manifest | None) -> PageChanges | None:
    """What the preview adds, changes and removes against the target's live release."""
    if preview is None:
        return None
    from ..targets import open_target
    from ..versions.layout import plain

    try:
        with open_target(family.target, plain(family.cfg), family.config) as t:
            live = t.live_release()
            production = read_manifest(t, live) if live else None
    except SitedeployError:
        return None
    return compare(preview, production)


def compare(preview: Manifest, production: Manifest | None) -> PageChanges:
    new = {p: e.sha256 for p, e in preview.items() if _page(p)}
    old = {p: e.sha256 for p, e in (production or {}).items() if _page(p)}
    return PageChanges(
        added=sorted(p for p in new if p not in old),
        changed=sorted(p for p in new if p in old and old[p] != new[p]),
        removed=sorted(p for p in old if p not in new),
    )


def _page(path: str) -> bool:
    return path.endswith((".html", ".htm")) and not path.startswith(".")


MARKER = "<!-- sitedeploy-preview:{target} -->"


def comment(target: str, ref: str, sha: str, url: str | None, pages: PageChanges | None) -> str:
    lines = [MARKER.format(target=target), f"**sitedeploy preview** of {_code(ref)} at {_code(sha[:8])}"]
    lines.append(f"Preview: {url}" if url else "Preview: published (no `preview_url` configured)")
    if pages is None:
        return "\n\n".join(lines)
    total = len(pages.added) + len(pages.changed) + len(pages.removed)
    counts = f"{len(pages.changed)} changed, {len(pages.added)} added, {len(pages.removed)} removed"
    lines.append(f"Pages against production: {counts}" if total else "No page differs from production.")
    for title, paths, linked in (
        ("Changed", pages.changed, True),
        ("Added", pages.added, True),
        ("Removed", pages.removed, False),
    ):
        if paths:
            lines.append(_section(title, paths, url if linked else None))
    return "\n\n".join(lines)


def _section(title: str, paths: list[str], base: str | None) -> str:
    items = [f"- {_link(p, base)}" for p in paths[:LISTED]]
    if len(paths) > LISTED:
        items.append(f"- and {len(paths) - LISTED} more")
    return f"<details><summary>{title} ({len(paths)})</summary>\n\n" + "\n".join(items) + "\n\n</details>"


def _link(path: str, base: str | None) -> str:
    shown = _code(path.removesuffix("index.html") or "/")
    if not base:
        return shown
    page = path.removesuffix("index.html")
    return f"[{shown}]({base.rstrip('/')}/{urllib.parse.quote(page)})"


def _code(text: str) -> str:
    clean = "".join(c for c in text if c.isprintable()).replace("`", "'")
    return f"`{clean}`"
