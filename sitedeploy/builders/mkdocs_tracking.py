"""Find out, while a page's template renders, which inputs beyond its own it read.

A theme can reach any page from any template (``pages``, ``nav``, ``page.next_page``), and
Python code in filters can too, so instead of guessing from template text every Page and File
object is switched, for the template phase, to a subclass whose ``__getattribute__`` reports
reads of *other* pages:

- a navigation page's title, URL, metadata, parents and neighbours are in the navigation
  digest already (:func:`.mkdocs_keys.nav_digest`), so reading them is free;
- anything else of another page (its ``content``, ``toc``, source, a page outside the nav)
  or another file's bytes marks the render as depending on every page;
- ``update_date`` or the ``build_date_utc`` variable marks it as depending on the build date.

A cached render is reused only if the inputs it read then are unchanged now; since rendering
is deterministic, the same inputs read give the same output (the dynamic-dependency argument
of build systems such as Shake). Reads *inside* an allowed attribute (``title`` looks at
``meta`` and ``content`` to compute itself) are not counted: the allowed value is keyed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jinja2
import jinja2.runtime
from mkdocs.structure.files import File
from mkdocs.structure.pages import Page

# Attributes of a navigation page covered by the navigation digest (or derived from it).
NAV_SAFE = frozenset(
    {
        "title",
        "url",
        "meta",
        "file",
        "canonical_url",
        "abs_url",
        "edit_url",
        "is_homepage",
        "is_index",
        "is_top_level",
        "is_page",
        "is_section",
        "is_link",
        "active",
        "parent",
        "children",
        "previous_page",
        "next_page",
        "ancestors",
        "_Page__active",
    }
)
# The subset read in hot loops (every nav item of every page) whose getters read nothing but
# names in this set: answered at once, without the bookkeeping for nested reads.
_NAV_FAST = NAV_SAFE - {"title", "meta"}
# Attributes of any file covered by the file rows (:func:`.mkdocs_keys.file_rows`).
FILE_SAFE = frozenset(
    {
        "src_uri",
        "dest_uri",
        "url",
        "name",
        "src_path",
        "dest_path",
        "page",
        "inclusion",
        "generated_by",
        "use_directory_urls",
        "is_documentation_page",
        "is_static_page",
        "is_media_file",
        "is_javascript",
        "is_css",
        "url_relative_to",
    }
)
DATE_NAMES = frozenset({"update_date", "build_date_utc"})


class Reads:
    """What the template of ``current`` read besides its own page."""

    def __init__(self) -> None:
        self.current: Page | None = None
        self.nav_pages: set[int] = set()
        self.depth = 0
        self.others: set[str] = set()
        self.date = False

    def start(self, page: Page) -> None:
        self.current, self.others, self.date = page, set(), False


_READS = Reads()


def _page_getattribute(self: Page, name: str) -> Any:
    reads = _READS
    if reads.current is None or reads.depth or name.startswith("__"):
        return object.__getattribute__(self, name)
    if name == "update_date":
        reads.date = True
    if self is reads.current:
        return object.__getattribute__(self, name)
    reads.depth += 1  # what an allowed attribute reads to compute itself is keyed with it
    try:
        value = object.__getattribute__(self, name)
    finally:
        reads.depth -= 1
    # Reached only if the attribute exists: themes probe for attributes that other plugins
    # may set (Material asks every nav item for `typeset` and `pages`); which attributes a
    # page has is decided by code and config, both in the site key.
    if name not in NAV_SAFE or id(self) not in reads.nav_pages:
        reads.others.add(f"page.{name}")
    return value


def _nav_page_getattribute(self: Page, name: str) -> Any:
    if name in _NAV_FAST:
        return object.__getattribute__(self, name)
    return _page_getattribute(self, name)


def _file_getattribute(self: File, name: str) -> Any:
    reads = _READS
    if reads.current is None or reads.depth or name.startswith("__"):
        return object.__getattribute__(self, name)
    value = object.__getattribute__(self, name)
    if name not in FILE_SAFE and self is not object.__getattribute__(reads.current, "file"):
        reads.others.add(f"file.{name}")
    return value


_SUBCLASSES: dict[tuple[type, Any], type] = {}


def _hook_for(obj: object) -> Any:
    if not isinstance(obj, Page):
        return _file_getattribute
    return _nav_page_getattribute if id(obj) in _READS.nav_pages else _page_getattribute


def _watched(cls: type, hook: Any) -> type:
    if (cls, hook) not in _SUBCLASSES:
        _SUBCLASSES[cls, hook] = type(f"Watched{cls.__name__}", (cls,), {"__getattribute__": hook})
    return _SUBCLASSES[cls, hook]


class _DateContext(jinja2.runtime.Context):
    def resolve_or_missing(self, key: str) -> Any:
        if key in DATE_NAMES and _READS.current is not None:
            _READS.date = True
        return super().resolve_or_missing(key)


@contextmanager
def watching(env: jinja2.Environment, files: list[File], nav_pages: list[Page]) -> Iterator[Reads]:
    """Switch every page and file to its watched subclass for the template phase."""
    originals = [(f, type(f)) for f in files] + [(f.page, type(f.page)) for f in files if f.page]
    env.context_class = _DateContext
    _READS.nav_pages = {id(p) for p in nav_pages}
    try:
        for obj, cls in originals:
            obj.__class__ = _watched(cls, _hook_for(obj))
        yield _READS
    finally:
        for obj, cls in originals:
            obj.__class__ = cls
        env.context_class = jinja2.runtime.Context
        _READS.current = None


@contextmanager
def rendering(page: Page) -> Iterator[Reads]:
    _READS.start(page)
    try:
        yield _READS
    finally:
        _READS.current = None


class LogCapture(logging.Handler):
    """Records what MkDocs logs while one page is processed, to replay when it is reused
    (so warnings, and ``strict`` mode counting them, are the same as in a full build)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[list[Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append([record.name, record.levelno, record.getMessage()])


@contextmanager
def capturing() -> Iterator[list[list[Any]]]:
    handler = LogCapture()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def replay(records: list[list[Any]]) -> None:
    for name, level, message in records:
        # The message as the format string (no args, so no %-formatting): MkDocs' duplicate
        # filter compares ``record.msg``, which must be the text as in a full build.
        logging.getLogger(name).log(level, message)
