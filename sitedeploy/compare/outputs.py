"""One engine's build output as the comparison reads it: its pages (:mod:`.facts`), its other
files and their sizes, and its search index.

The folder is the deployer's own copy of what the sandboxed build wrote (``copy_out`` moved
regular files and folders only), and it is walked by descriptor without following links
(:func:`sitedeploy.release.manifest.files`) like any build output. A page over
:data:`MAX_PAGE_BYTES` is read only that far; a search index over :data:`MAX_INDEX_BYTES` is
counted as unreadable.

Search indexes: MkDocs, ProperDocs and Material write ``search/search_index.json`` (entries in
``docs``), Zensical writes ``search.json`` (entries in ``items``); an entry's ``location`` is a
page (``guide/``) or a heading on it (``guide/#setup``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..release.manifest import files
from .facts import PageFacts, read_page

MAX_PAGE_BYTES = 8 * 1024 * 1024
MAX_INDEX_BYTES = 256 * 1024 * 1024
SEARCH_INDEXES = (("search/search_index.json", "docs"), ("search.json", "items"))


@dataclass
class SearchIndex:
    file: str
    pages: set[str] = field(default_factory=set)
    headings: set[str] = field(default_factory=set)


@dataclass
class Output:
    engine: str
    seconds: float
    pages: dict[str, PageFacts] = field(default_factory=dict)
    assets: dict[str, int] = field(default_factory=dict)
    """Every file that is not a page, and its size in bytes."""
    search: SearchIndex | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(self.assets.values()) + sum(self.page_bytes.values())

    page_bytes: dict[str, int] = field(default_factory=dict)


def read_output(root: Path, engine: str, seconds: float, warnings: list[str]) -> Output:
    out = Output(engine, seconds, warnings=warnings)
    for rel, full, st in files(root):
        if rel.endswith(".html"):
            with full.open("rb") as f:
                html = f.read(MAX_PAGE_BYTES).decode("utf-8", "replace")
            out.pages[rel] = read_page(html, rel)
            out.page_bytes[rel] = st.st_size
        else:
            out.assets[rel] = st.st_size
    out.search = _search_index(root, out.assets)
    return out


def _search_index(root: Path, assets: dict[str, int]) -> SearchIndex | None:
    for name, key in SEARCH_INDEXES:
        if name in assets and assets[name] <= MAX_INDEX_BYTES:
            try:
                data = json.loads((root / name).read_bytes())
            except ValueError:
                return SearchIndex(name)
            entries = data.get(key, []) if isinstance(data, dict) else []
            return _entries(name, entries if isinstance(entries, list) else [])
    return None


def _entries(name: str, entries: list[object]) -> SearchIndex:
    index = SearchIndex(name)
    for entry in entries:
        location = entry.get("location") if isinstance(entry, dict) else None
        if not isinstance(location, str):
            continue
        page, hashmark, anchor = location.partition("#")
        index.pages.add(page)
        if hashmark and anchor:
            index.headings.add(location)
    return index
