"""The on-disk cache of an incremental MkDocs build.

Layout of the cache folder (one per site)::

    pages.pack          the build's state (site key, one small record per page) and its
                        chunks: each page's Markdown render (HTML body, table of contents,
                        title, anchors, links, logs, what it read: links, settings) by render
                        key, and its search entries by search key (:mod:`.pack`);
                        replaced by rename, whole or absent
    html/<tkey>.html    a page's finished HTML file, by template key (+ date / all-pages digests)
    last-build.json     which path the last build took and why, for callers to show

HTML files are named by the key of their content and never rewritten, so a page file that a
finished site (or a release made from it) hard-links stays as it was. The whole folder is
sealed by the deployer after each finished build and thrown away before the next one if
anything changed since (``sitedeploy.builders.mkdocs``, ``sitedeploy.sandbox.cacheseal``). The pack is written
after the HTML files it names, and unreferenced HTML files are pruned after it: a crash at any
point leaves a pack whose every reference exists (and one that is missing is rendered again).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page
from mkdocs.structure.toc import AnchorLink, TableOfContents

from .pack import FORMAT, PackError, PackReader, PackWriter

PACK = "pages.pack"
LAST_BUILD = "last-build.json"
TRASH = ".trash-"
LEGACY = ("state.json", "content")  # format 1: a JSON state and one JSON file per page
_RMTREE = "import shutil, sys\nfor path in sys.argv[1:]:\n    shutil.rmtree(path, ignore_errors=True)"


@dataclass
class PageRecord:
    """What a later build needs to reuse one page's template output (its render and search
    entries are chunks of the pack, under ``rkey`` and ``search_key``)."""

    rkey: str  # the render id (:func:`.keys.render_id`)
    tkey: str = ""
    html: bool = False  # the template wrote a file (html/<tkey>.html when stored)
    stored: bool = False  # the template's output (or its absence) is in the cache
    reads_others: bool = False
    reads_date: bool = False
    search_key: str = ""
    template_logs: list[list[Any]] = field(default_factory=list)
    content_after: str | None = None  # page.content after on_page_context, if it changed

    @property
    def html_name(self) -> str:
        return f"{self.tkey}.html"

    def row(self) -> list[Any]:
        """The fields in order, as the pack's index stores them (``PageRecord(*row)``)."""
        return [getattr(self, name) for name in _FIELD_NAMES]


_FIELD_NAMES = tuple(f.name for f in fields(PageRecord))


@dataclass
class State:
    site: dict[str, str]
    local_code: dict[str, str]
    pages: dict[str, PageRecord]


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.html = root / "html"
        self.reader: PackReader | None = None
        self.writer: PackWriter | None = None
        self._made: set[str] = set()
        self._sweepers: list[subprocess.Popen[bytes]] = []

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One build per cache at a time (an agent and a person may build the same site)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for tmp in self.root.glob(f".{PACK}.*.tmp"):  # a killed build's unfinished pack
                tmp.unlink(missing_ok=True)
            try:
                yield
            finally:
                if self.writer is not None:
                    self.writer.abort()
                for sweeper in self._sweepers:
                    sweeper.wait()

    def load(self) -> tuple[State | None, str]:
        """The previous build's state, or None and why there is none to use."""
        try:
            self.reader = PackReader(self.root / PACK)
            return _state(self.reader.index), ""
        except FileNotFoundError:
            if any((self.root / name).exists() for name in LEGACY):
                return None, "the cache is in an older format"
            return None, "no previous build in the cache"
        except PackError as e:
            return None, f"the cache is unreadable: {e}"
        except (KeyError, TypeError, ValueError) as e:
            return None, f"the cache is unreadable: its index is malformed ({type(e).__name__})"

    def start(self, fresh: bool) -> None:
        """Begin this build's pack (``fresh``: reusing nothing of the old one)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.drop_old()
        self.writer = PackWriter(self.root / PACK)

    def drop_old(self) -> None:
        """Nothing of the old cache will be reused: move it aside, to be deleted while the
        build renders (thousands of unlinks of stored HTML files would otherwise add a second
        to a full build)."""
        self.reader = None
        (self.root / PACK).unlink(missing_ok=True)  # if this build fails, nothing points there
        trash = Path(tempfile.mkdtemp(prefix=TRASH, dir=self.root))
        for name in ("html", *LEGACY):
            if (self.root / name).exists():
                (self.root / name).rename(trash / name)
        self.sweep()

    def sweep(self) -> None:
        """Delete moved-aside caches (also those a killed build left) in a child process,
        which the build waits for before it returns: in a sandbox every process of the build
        ends with it, so a detached one would never finish, and the trash would pile up.
        Not a thread: one that makes thousands of system calls takes the interpreter lock
        back after each, and slowed the rendering thread by 1.5 s of CPU in a full build."""
        trash = sorted(self.root.glob(f"{TRASH}*")) if self.root.is_dir() else []
        if trash:
            argv = [sys.executable, "-c", _RMTREE, *(str(folder) for folder in trash)]
            self._sweepers.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL))  # nosec B603

    def clear(self) -> None:
        """Forget everything (a build that cannot be cached must not leave one to reuse)."""
        (self.root / PACK).unlink(missing_ok=True)
        for name in ("html", *LEGACY):
            path = self.root / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def save(self, state: State) -> None:
        assert self.writer is not None
        self.writer.commit(
            {
                "format": FORMAT,
                "site": state.site,
                "local_code": state.local_code,
                "pages": {uri: rec.row() for uri, rec in state.pages.items()},
            }
        )
        self.writer = None
        self._prune(state)

    def _prune(self, state: State) -> None:
        keep = {rec.html_name for rec in state.pages.values() if rec.html and rec.stored}
        if self.html.is_dir():
            for entry in os.scandir(self.html):
                if entry.name not in keep:
                    os.unlink(entry.path)

    # ------------------------------------------------------------------ chunks

    def stored_render(self, rkey: str) -> dict[str, Any] | None:
        """The previous build's render of this key, or None."""
        raw = self.reader.raw(f"r{rkey}") if self.reader is not None else None
        return None if raw is None else dict(json.loads(bytes(raw)))

    def reuse_render(self, rkey: str, body: dict[str, Any], page: Page, files: Files) -> list[list[Any]]:
        """Set what ``Page.render`` sets from a stored render (:meth:`stored_render`) and keep
        it for the next build; its logs."""
        raw = self.reader.raw(f"r{rkey}") if self.reader is not None else None
        assert raw is not None and self.writer is not None
        self.writer.add(f"r{rkey}", raw)  # carried over as bytes, not encoded again
        _restore(page, body, files)
        logs: list[list[Any]] = body["logs"]
        return logs

    def put_render(self, rkey: str, page: Page, logs: list[list[Any]], inputs: dict[str, Any]) -> None:
        """Store a page's render, with what it read (:func:`.keys.render_inputs`)."""
        assert self.writer is not None
        links = page.links_to_anchors
        body = {
            "content": page.content,
            "toc": [_toc_row(a) for a in page.toc],
            "title": page._title_from_render,
            "anchors": None if page.present_anchor_ids is None else sorted(page.present_anchor_ids),
            "links": None if links is None else {f.src_uri: dict(v) for f, v in links.items()},
            "logs": logs,
            "inputs": inputs,
        }
        self.writer.add_json(f"r{rkey}", body)

    def search_entries(self, key: str) -> list[Any] | None:
        """A page's stored search entries (carried into the new pack), or None."""
        raw = self.reader.raw(f"s{key}") if self.reader is not None else None
        if raw is None:
            return None
        assert self.writer is not None
        self.writer.add(f"s{key}", raw)
        entries: list[Any] = json.loads(bytes(raw))
        return entries

    def put_search(self, key: str, entries: list[Any]) -> None:
        assert self.writer is not None
        self.writer.add_json(f"s{key}", entries)

    # ------------------------------------------------------------------ page HTML

    def has_html(self, name: str) -> bool:
        return (self.html / name).is_file()

    def put_html(self, name: str, built: str) -> None:
        if str(self.html) not in self._made:
            self.html.mkdir(parents=True, exist_ok=True)
            self._made.add(str(self.html))
        path = os.path.join(self.html, name)
        try:
            os.link(built, path)
        except FileExistsError:
            pass  # named by the key of its content: the same bytes
        except OSError:  # another filesystem: a copy costs time, not correctness
            shutil.copyfile(built, path)

    def place_html(self, name: str, dest: str) -> None:
        """Put a cached page into the site being built (a new name there, never a write
        through an existing file)."""
        folder = os.path.dirname(dest)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        _link_or_copy(str(self.html / name), Path(dest))

    def write_report(self, report: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.root / LAST_BUILD, (json.dumps(report, indent=2) + "\n").encode())


class SearchEntries:
    """The entry lists of the (allow-listed) search plugins, which index each page in
    ``on_page_context``: a reused page's cached entries go in where a render would put them."""

    def __init__(self, config: MkDocsConfig) -> None:
        self.indexes: list[Any] = []
        self.lists: list[list[Any]] = []
        for plugin in config.plugins.values():
            index = getattr(plugin, "search_index", None)
            fields = vars(index) if index is not None else {}
            entries = fields.get("_entries", fields.get("entries"))
            if isinstance(entries, list):
                self.indexes.append(index)
                self.lists.append(entries)

    @contextmanager
    def reusing(self, cached: list[Any] | None) -> Iterator[None]:
        """While a page whose search entries are known renders, add those instead of parsing
        its HTML again (entries depend on its render, title and URL, not on the template)."""
        if cached is None:
            yield
            return
        for index, entries, new in zip(self.indexes, self.lists, cached, strict=True):
            index.add_entry_from_context = lambda page, entries=entries, new=new: entries.extend(new)
        try:
            yield
        finally:
            for index in self.indexes:
                del index.add_entry_from_context

    def mark(self) -> list[int]:
        return [len(entries) for entries in self.lists]

    def since(self, mark: list[int]) -> list[Any]:
        return [entries[n:] for entries, n in zip(self.lists, mark, strict=True)]

    def add(self, cached: list[Any]) -> None:
        for entries, new in zip(self.lists, cached, strict=True):
            entries.extend(new)


def _state(index: dict[str, Any]) -> State:
    pages = {}
    for uri, row in index["pages"].items():
        if len(row) != len(_FIELD_NAMES):
            raise ValueError(f"page record of {uri} has {len(row)} fields")
        pages[uri] = PageRecord(*row)
    return State(index["site"], index["local_code"], pages)


def _restore(page: Page, body: dict[str, Any], files: Files) -> None:
    page.content = body["content"]
    page.toc = TableOfContents([_toc_item(row) for row in body["toc"]])
    page._title_from_render = body["title"]
    page.present_anchor_ids = None if body["anchors"] is None else set(body["anchors"])
    if body["links"] is None:
        page.links_to_anchors = None
        return
    page.links_to_anchors = {}
    for uri, links in body["links"].items():
        target = files.get_file_from_path(uri)
        if target is not None:
            page.links_to_anchors[target] = dict(links)


def _toc_row(item: AnchorLink) -> list[Any]:
    return [item.title, item.id, item.level, [_toc_row(child) for child in item.children]]


def _toc_item(row: list[Any]) -> AnchorLink:
    item = AnchorLink(row[0], row[1], row[2])
    item.children = [_toc_item(child) for child in row[3]]
    return item


def _write_atomic(path: Path, data: bytes) -> None:
    """Write under a temporary name, then rename: a reader sees the whole file or none."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _link_or_copy(src: str, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another filesystem: a copy costs time, not correctness
        shutil.copyfile(src, dest)
