"""The on-disk cache of an incremental MkDocs build.

Layout of the cache folder (one per site)::

    state.json          site key, file rows, one record per page (keys, title, anchors, logs,
                        search entries); replaced by rename, so it is whole or absent
    content/<rkey>.json a page's rendered Markdown (HTML body, table of contents), by render key
    html/<name>.html    a page's finished HTML file, by template key (+ date / all-pages digests)
    last-build.json     which path the last build took and why, for callers to show

Store files are named by the key of their content and never rewritten, so a page file that a
finished site (or a release made from it) hard-links stays as it was. ``state.json`` is
written after the stores and unreferenced store files are pruned after it: a crash at any
point leaves a state whose every reference exists (and one that is missing is rebuilt).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page
from mkdocs.structure.toc import AnchorLink, TableOfContents

STATE = "state.json"
LAST_BUILD = "last-build.json"
TRASH = ".trash-"


@dataclass
class PageRecord:
    """What a later build needs to reuse one page without rendering it."""

    rkey: str
    title_from_render: str | None
    anchors: list[str] | None
    links: dict[str, dict[str, str]] | None
    render_logs: list[list[Any]]
    tkey: str = ""
    html: str = ""  # store name of the HTML file; "" if the template wrote nothing
    stored: bool = False  # the template's output (or its absence) is in the cache
    reads_others: bool = False
    reads_date: bool = False
    search: list[Any] = field(default_factory=list)
    search_key: str = ""
    template_logs: list[list[Any]] = field(default_factory=list)
    content_after: str | None = None  # page.content after on_page_context, if it changed


@dataclass
class State:
    site: dict[str, str]
    local_code: dict[str, str]
    files: list[list[str]]
    pages: dict[str, PageRecord]


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.content = root / "content"
        self.html = root / "html"
        self._made: set[str] = set()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-writer")
        self._pending: list[Future[None]] = []

    def load(self) -> State | None:
        try:
            raw = json.loads((self.root / STATE).read_text(encoding="utf-8"))
            pages = {uri: PageRecord(**rec) for uri, rec in raw["pages"].items()}
            return State(raw["site"], raw["local_code"], raw["files"], pages)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no cache, or one from another format: a full build makes a new one

    def save(self, state: State) -> None:
        data = {
            "site": state.site,
            "local_code": state.local_code,
            "files": state.files,
            "pages": {uri: vars(rec) for uri, rec in state.pages.items()},
        }
        self.root.mkdir(parents=True, exist_ok=True)
        self.flush()
        _write_atomic(self.root / STATE, json.dumps(data, separators=(",", ":")).encode())
        self._prune(state)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One build per cache at a time (an agent and a person may build the same site)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                self._writer.shutdown(wait=True)

    def start_fresh(self) -> None:
        """Nothing of the old cache will be reused: move it aside, to be deleted while the
        build renders (thousands of unlinks would otherwise add seconds to a full build)."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / STATE).unlink(missing_ok=True)  # if this build fails, nothing points there
        trash = Path(tempfile.mkdtemp(prefix=TRASH, dir=self.root))
        for folder in (self.content, self.html):
            if folder.is_dir():
                folder.rename(trash / folder.name)
        self.sweep()

    def sweep(self) -> None:
        """Delete moved-aside caches (also those a killed build left) on the writer thread,
        which the build joins before it returns: in a sandbox every process of the build ends
        with it, so a detached ``rm`` would never finish, and the trash would pile up."""
        trash = sorted(self.root.glob(f"{TRASH}*")) if self.root.is_dir() else []
        for folder in trash:
            self._writer.submit(shutil.rmtree, folder, ignore_errors=True)

    def clear(self) -> None:
        """Forget everything (a build that cannot be cached must not leave one to reuse)."""
        (self.root / STATE).unlink(missing_ok=True)
        for folder in (self.content, self.html):
            shutil.rmtree(folder, ignore_errors=True)

    def _prune(self, state: State) -> None:
        keep_content = {f"{rec.rkey}.json" for rec in state.pages.values()}
        keep_html = {rec.html for rec in state.pages.values() if rec.html and rec.stored}
        for folder, keep in ((self.content, keep_content), (self.html, keep_html)):
            if folder.is_dir():
                for entry in os.scandir(folder):
                    if entry.name not in keep:
                        os.unlink(entry.path)

    # ------------------------------------------------------------------ page content

    def has_content(self, rkey: str) -> bool:
        return (self.content / f"{rkey}.json").is_file()

    def put_content(self, rkey: str, page: Page) -> None:
        path = self.content / f"{rkey}.json"
        if str(self.content) not in self._made:
            self.content.mkdir(parents=True, exist_ok=True)
            self._made.add(str(self.content))
        if not path.exists():
            # Written by a thread: the file system calls overlap with rendering the next page.
            body = {"content": page.content, "toc": [_toc_row(a) for a in page.toc]}
            self._pending.append(self._writer.submit(_write_json, path, body))

    def flush(self) -> None:
        """Wait for the content writes (before ``state.json`` may point at them)."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def restore_content(self, rkey: str, page: Page) -> None:
        body = json.loads((self.content / f"{rkey}.json").read_text(encoding="utf-8"))
        page.content = body["content"]
        page.toc = TableOfContents([_toc_item(row) for row in body["toc"]])

    # ------------------------------------------------------------------ page HTML

    def has_html(self, name: str) -> bool:
        return (self.html / name).is_file()

    def put_html(self, name: str, built: str) -> None:
        path = self.html / name
        if str(self.html) not in self._made:
            self.html.mkdir(parents=True, exist_ok=True)
            self._made.add(str(self.html))
        if not path.exists():
            _link_or_copy(built, path)

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


def record_render(page: Page, rkey: str, logs: list[list[Any]]) -> PageRecord:
    links = page.links_to_anchors
    return PageRecord(
        rkey=rkey,
        title_from_render=page._title_from_render,
        anchors=None if page.present_anchor_ids is None else sorted(page.present_anchor_ids),
        links=None if links is None else {f.src_uri: dict(v) for f, v in links.items()},
        render_logs=logs,
    )


def restore_render(page: Page, record: PageRecord, files: Files) -> None:
    """Set what ``Page.render`` sets, from the cache (``content``/``toc`` come separately)."""
    page._title_from_render = record.title_from_render
    page.present_anchor_ids = None if record.anchors is None else set(record.anchors)
    if record.links is None:
        page.links_to_anchors = None
        return
    page.links_to_anchors = {}
    for uri, links in record.links.items():
        target = files.get_file_from_path(uri)
        if target is not None:
            page.links_to_anchors[target] = dict(links)


def _toc_row(item: AnchorLink) -> list[Any]:
    return [item.title, item.id, item.level, [_toc_row(child) for child in item.children]]


def _toc_item(row: list[Any]) -> AnchorLink:
    item = AnchorLink(row[0], row[1], row[2])
    item.children = [_toc_item(child) for child in row[3]]
    return item


def _write_json(path: Path, body: dict[str, Any]) -> None:
    _write_atomic(path, json.dumps(body, separators=(",", ":")).encode())


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
