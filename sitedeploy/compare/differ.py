"""Two engines' outputs of one site, compared as a reader would notice: pages present in one
only, pages whose visible text differs (with a short diff), navigation, internal links and
anchors, search coverage, assets and sizes, plugins one engine ignores, and build times.

Text is compared after normalising what differs without a reader seeing it: whitespace,
content hashes in asset names, permalink marks, and the generator's name where a page says
it (``built with MkDocs``); most of the chrome is outside the content area compared
(:mod:`.facts`). ``differences`` counts what decides
equivalence: pages in one output only, pages whose text differs, navigation rows, links that
resolve in one output and not the other, search index pages and headings in one only, and
plugins one engine ignores. Sizes and build times are shown, never counted.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from dataclasses import dataclass, field

from .facts import NavEntry, PageFacts, page_file, unhashed
from .outputs import Output

DIFF_LINES = 14
"""Lines of unified diff kept per page for the terminal and JSON."""
SIDE_LINES = 400
"""Lines of each side kept per page for the HTML report."""
LISTED = 50
"""Items kept per list (the count covers them all)."""
LARGEST = 5
_GENERATOR = re.compile(
    r"\b(built|made|generated|powered)(\s+(?:with|by|using)\s+)"
    r"(Material for MkDocs|MkDocs|ProperDocs|Zensical)\b",
    re.IGNORECASE,
)
"""The engine's name in a page's footer (``Documentation built with MkDocs.``): a generator tag."""


@dataclass
class PageDiff:
    page: str
    diff: list[str]
    left: list[str] = field(default_factory=list)
    right: list[str] = field(default_factory=list)


@dataclass
class SearchStats:
    file: str | None
    pages: int = 0
    headings: int = 0
    pages_only_here: list[str] = field(default_factory=list)
    headings_only_here: list[str] = field(default_factory=list)


@dataclass
class AddedFile:
    file: str
    bytes: int


@dataclass
class AssetStats:
    files: int
    bytes: int
    largest_additions: list[AddedFile]


@dataclass
class SiteComparison:
    site: str
    commit: str
    engines: tuple[str, str]
    seconds: dict[str, float]
    only_in: dict[str, list[str]]
    text_differs: list[PageDiff]
    nav: list[str]
    links: dict[str, list[str]]
    """Per engine: internal links (``page -> target#anchor``) that resolve in its output only."""
    search: dict[str, SearchStats]
    assets: dict[str, AssetStats]
    plugins_ignored: dict[str, list[str]]
    warnings: dict[str, list[str]] = field(default_factory=dict)
    differences: int = 0
    tolerance: int = 0
    """How many differences still count as equivalent (``--tolerance``)."""

    @property
    def equivalent(self) -> bool:
        return self.differences <= self.tolerance


def compare_outputs(
    site: str, commit: str, a: Output, b: Output, ignored: dict[str, list[str]]
) -> SiteComparison:
    only = {a.engine: sorted(set(a.pages) - set(b.pages)), b.engine: sorted(set(b.pages) - set(a.pages))}
    shared = sorted(set(a.pages) & set(b.pages))
    texts = [d for page in shared if (d := _text_diff(page, a.pages[page], b.pages[page])) is not None]
    nav = nav_differences(a, b)
    links = {a.engine: _resolving_only(a, b, shared), b.engine: _resolving_only(b, a, shared)}
    search, search_count = _search(a, b)
    result = SiteComparison(
        site=site,
        commit=commit,
        engines=(a.engine, b.engine),
        seconds={a.engine: round(a.seconds, 2), b.engine: round(b.seconds, 2)},
        only_in=only,
        text_differs=texts,
        nav=nav,
        links=links,
        search=search,
        assets=_assets(a, b),
        plugins_ignored=ignored,
        warnings={a.engine: a.warnings, b.engine: b.warnings},
    )
    result.differences = (
        (sum(map(len, only.values())) + len(texts) + len(nav) + sum(map(len, links.values())))
        + search_count
        + sum(map(len, ignored.values()))
    )
    for items in [*only.values(), *links.values()]:
        del items[LISTED:]
    del result.nav[LISTED:]
    return result


# ---------------------------------------------------------------------------- text


def normalised(facts: PageFacts) -> list[str]:
    lines = [f"[title] {facts.title}", *facts.lines]
    return [_GENERATOR.sub(r"\1\2<engine>", unhashed(line)) for line in lines]


def _text_diff(page: str, a: PageFacts, b: PageFacts) -> PageDiff | None:
    left, right = normalised(a), normalised(b)
    if left == right:
        return None
    diff = list(difflib.unified_diff(left, right, lineterm="", n=1))[2:]  # no file headers
    return PageDiff(page, diff[:DIFF_LINES], left[:SIDE_LINES], right[:SIDE_LINES])


# ---------------------------------------------------------------------------- navigation


def _nav_of(out: Output) -> list[NavEntry]:
    home = out.pages.get("index.html") or next(iter(out.pages.values()), None)
    return home.nav if home else []


def _label(entry: NavEntry) -> str:
    shown = f"{'  ' * (entry.depth - 1)}{entry.title}"
    return f"{shown} ({_path(entry.target)})" if entry.target else f"{shown} (section)"


def _path(target: str) -> str:
    """A nav target as a reader sees it in the address bar (``guide/`` for ``guide/index.html``)."""
    return target[: -len("index.html")] or "/" if target.endswith("index.html") else target


def nav_differences(a: Output, b: Output) -> list[str]:
    """One line per navigation row that differs: in one only, retitled, or moved."""
    left, right = _nav_of(a), _nav_of(b)
    keys_a = [(e.depth, e.title, e.target) for e in left]
    keys_b = [(e.depth, e.title, e.target) for e in right]
    if keys_a == keys_b:
        return []
    if sorted(keys_a) == sorted(keys_b):
        order_a, order_b = " | ".join(e.title for e in left), " | ".join(e.title for e in right)
        return [f"order: {order_a} ({a.engine}) vs {order_b} ({b.engine})"]
    lines: list[str] = []
    matcher = difflib.SequenceMatcher(a=keys_a, b=keys_b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        olds, news = left[i1:i2], right[j1:j2]
        if op == "replace" and len(olds) == len(news):
            lines += [_replaced(old, new, a.engine, b.engine) for old, new in zip(olds, news, strict=True)]
            continue
        lines += [f"only in {a.engine}: {_label(e).strip()}" for e in olds]
        lines += [f"only in {b.engine}: {_label(e).strip()}" for e in news]
    return lines


def _replaced(old: NavEntry, new: NavEntry, left: str, right: str) -> str:
    if old.target == new.target and old.depth == new.depth:
        return (
            f"title: '{old.title}' ({left}) vs '{new.title}' ({right}) for {_label(old).split(' (')[-1][:-1]}"
        )
    return f"{_label(old).strip()} ({left}) vs {_label(new).strip()} ({right})"


# ---------------------------------------------------------------------------- links


def _broken(out: Output, pages: list[str]) -> set[str]:
    broken = set()
    for page in pages:
        for target, anchor in out.pages[page].links:
            if not _resolves(out, target, anchor):
                broken.add(f"{page} -> {target}{'#' + anchor if anchor else ''}")
    return broken


def _resolves(out: Output, target: str, anchor: str) -> bool:
    found = out.pages.get(target) or out.pages.get(page_file(target + "/"))
    if found is None:
        return target in out.assets or posixpath.splitext(target)[1] not in ("", ".html")
    return not anchor or anchor in found.anchors


def _resolving_only(here: Output, there: Output, shared: list[str]) -> list[str]:
    """Links of pages both outputs have that resolve in ``here`` and not in ``there``."""
    return sorted(_broken(there, shared) - _broken(here, shared))


# ---------------------------------------------------------------------------- search, assets


def _search(a: Output, b: Output) -> tuple[dict[str, SearchStats], int]:
    report: dict[str, SearchStats] = {}
    count = 0
    for here, there in ((a, b), (b, a)):
        mine, theirs = here.search, there.search
        if mine is None:
            report[here.engine] = SearchStats(None)
            continue
        only_pages = sorted(mine.pages - theirs.pages) if theirs else sorted(mine.pages)
        only_headings = sorted(mine.headings - theirs.headings) if theirs else sorted(mine.headings)
        count += len(only_pages) + len(only_headings)
        report[here.engine] = SearchStats(
            mine.file, len(mine.pages), len(mine.headings), only_pages[:LISTED], only_headings[:LISTED]
        )
    return report, count


def _assets(a: Output, b: Output) -> dict[str, AssetStats]:
    report: dict[str, AssetStats] = {}
    for here, there in ((a, b), (b, a)):
        theirs = {unhashed(name) for name in there.assets}
        added = sorted(
            ((name, size) for name, size in here.assets.items() if unhashed(name) not in theirs),
            key=lambda item: (-item[1], item[0]),
        )
        largest = [AddedFile(name, size) for name, size in added[:LARGEST]]
        report[here.engine] = AssetStats(len(here.assets) + len(here.pages), here.total_bytes, largest)
    return report
