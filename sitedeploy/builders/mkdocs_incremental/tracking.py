"""Find out, while a page renders, which inputs beyond its own it read.

A page's Markdown render is handed stand-ins for the file set and the config that note what
it looked up (:mod:`.render_reads`); its template, the page and file objects themselves, as
follows.

A theme can reach any page from any template (``pages``, ``nav``, ``page.next_page``), and
Python code in filters can too, so instead of guessing from template text every Page and File
object is switched, for the template phase, to a subclass whose attributes report reads of
*other* pages:

- a navigation page's title, URL, metadata, parents and neighbours are in the navigation
  digest already (:func:`.keys.nav_digest`), so reading them is free;
- anything else of another page (its ``content``, ``toc``, source, a page outside the nav)
  or another file's bytes marks the render as depending on every page;
- ``update_date``, or any use of the ``build_date_utc`` variable, marks it as depending on the
  build date.

A cached render is reused only if the inputs it read then are unchanged now; since rendering
is deterministic, the same inputs read give the same output (the dynamic-dependency argument
of build systems such as Shake). Reads *inside* an allowed attribute (``title`` looks at
``meta`` and ``content`` to compute itself) are not counted: the allowed value is keyed.

How: each watched subclass carries a data descriptor for every attribute name that counts
(every name its class or any of its instances has, except the free ones; a name set for the
first time during the phase gets one at once, by ``__setattr__``). A data descriptor on the
class comes before the instance's ``__dict__``, so no read of a counted name escapes it, while
the free names — the ones themes read in hot loops over the navigation — stay plain attribute
reads (a ``__getattribute__`` hook would cost several percent of a full build). The page
being rendered is switched to a subclass that only watches ``update_date``.

The build date: Jinja looks up every name a template mentions when the template starts, even
one used only in a branch that does not run (the ``mkdocs`` theme prints the date on the home
page only), so a lookup says nothing. Each page's context instead gets a
:class:`WatchedDate`: a ``datetime`` of the same value whose every use (an attribute, a method,
``str``, ``format``, a comparison, arithmetic, hashing, pickling) notes the read and then acts
as the plain ``datetime`` would, returning what it would return. Only ``type(x) is datetime``
tells them apart, and templates cannot call ``type``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from mkdocs.commands import build as mkdocs_build
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
# Free names whose getters read nothing but names in this set: plain reads, no bookkeeping.
# The other free names (``title`` computes itself from the page's source and render) are
# computed one level deeper, where reads are not counted.
_NAV_PLAIN = NAV_SAFE - {"title", "meta"}
# Attributes of any file covered by the file rows (:func:`.keys.file_rows`).
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
DATE_ATTRIBUTE = "update_date"
DATE_VARIABLE = "build_date_utc"


class Reads:
    """What the template of ``current`` read besides its own page."""

    def __init__(self) -> None:
        self.current: Page | None = None
        self.current_file: File | None = None
        self.depth = 0
        self.others: set[str] = set()
        self.date = False

    def start(self, page: Page) -> None:
        self.current, self.others, self.date = page, set(), False
        self.current_file = page.file

    def counts(self, obj: object) -> bool:
        """Whether a read of ``obj`` now is one to record."""
        return self.current is not None and not self.depth and obj is not self.current


_READS = Reads()
_MISSING = object()


# ---------------------------------------------------------------------------- descriptors


class _Attribute:
    """A watched attribute: gives what the unwatched class would (see :meth:`value`).

    Without ``__set__`` this is a non-data descriptor: an instance's ``__dict__`` comes first,
    as it would for the base attribute it stands for."""

    def __init__(self, name: str, base: Any, label: str) -> None:
        self.name, self.base, self.label = name, base, label
        kind = type(base)
        self.data = base is not _MISSING and (hasattr(kind, "__set__") or hasattr(kind, "__delete__"))
        self.bind = getattr(kind, "__get__", None) if base is not _MISSING else None

    def value(self, obj: Any, owner: Any) -> Any:
        """The attribute as Python would look it up on the original class."""
        if obj is not None and not self.data:
            found = obj.__dict__.get(self.name, _MISSING)
            if found is not _MISSING:
                return found
        if self.bind is not None:
            return self.bind(self.base, obj, owner)
        if self.base is _MISSING:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}")
        return self.base


class _DataAttribute(_Attribute):
    """A data descriptor: comes before the instance's ``__dict__``, so every read passes here."""

    def __set__(self, obj: Any, value: Any) -> None:
        if self.data:
            self.base.__set__(obj, value)
        else:
            obj.__dict__[self.name] = value

    def __delete__(self, obj: Any) -> None:
        if self.data:
            self.base.__delete__(obj)
        elif obj.__dict__.pop(self.name, _MISSING) is _MISSING:
            raise AttributeError(self.name)


class _Other(_DataAttribute):
    """Another page's (or file's) attribute that no digest covers: reading it counts."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        reads = _READS
        if obj is None or not reads.counts(obj) or obj is reads.current_file:
            return self.value(obj, owner)
        reads.depth += 1  # what this attribute reads to compute itself is keyed with it
        try:
            value = self.value(obj, owner)
        finally:
            reads.depth -= 1
        # Reached only if the attribute exists: themes probe for attributes that other plugins
        # may set (Material asks every nav item for `typeset` and `pages`); which attributes a
        # page has is decided by code and config, both in the site key.
        reads.others.add(self.label)
        return value


class _Date(_Other):
    """``update_date``: the build date, whichever page it is read from."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        reads = _READS
        if obj is not None and reads.current is not None and not reads.depth:
            reads.date = True
            if obj is reads.current:
                return self.value(obj, owner)
        return super().__get__(obj, owner)


class _Free(_Attribute):
    """A navigation page's attribute that the navigation digest covers but that computes
    itself from others (``title``): computed one level deeper, where reads are not counted."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        reads = _READS
        if obj is None or not reads.counts(obj):
            return self.value(obj, owner)
        reads.depth += 1
        try:
            return self.value(obj, owner)
        finally:
            reads.depth -= 1


class _FreeData(_Free, _DataAttribute):
    """As :class:`_Free`, for a computed attribute that is a data descriptor (a property)."""


def _base_attribute(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return _MISSING


# ---------------------------------------------------------------------------- watched classes


class _Roles:
    """The watched subclasses of one page or file class, one per role."""

    def __init__(self, cls: type, is_page: bool) -> None:
        self.cls, self.is_page = cls, is_page
        self.names: set[str] = set()
        prefix = "page" if is_page else "file"
        self.label = prefix + ".{}"
        # Named as the class they watch: Page's repr (what `{{ page }}` prints) shows the name.
        body = {"__setattr__": _setattr, "_sitedeploy_roles": self, "__qualname__": cls.__qualname__}
        body["__module__"] = cls.__module__
        roles = ("nav", "other", "current") if is_page else ("file",)
        self.classes = {role: type(cls.__name__, (cls,), dict(body)) for role in roles}
        # What the class machinery put in each new class's own namespace (ABCMeta's
        # `_abc_impl`, which keeps the isinstance() caches of that class) is never shadowed:
        # a descriptor there would hand every watched class the caches of the base class.
        self.reserved: set[str] = set().union(*(vars(c) for c in self.classes.values()))

    def watch(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.names:
                self.names.add(name)
                if not name.startswith("__") and name not in self.reserved:
                    self._add(name)

    def _add(self, name: str) -> None:
        base, label = _base_attribute(self.cls, name), self.label.format(name)
        if not self.is_page:
            if name not in FILE_SAFE:
                setattr(self.classes["file"], name, _Other(name, base, label))
            return
        if name == DATE_ATTRIBUTE:
            for role in ("nav", "other", "current"):
                setattr(self.classes[role], name, _Date(name, base, label))
            return
        setattr(self.classes["other"], name, _Other(name, base, label))
        if name not in NAV_SAFE:
            setattr(self.classes["nav"], name, _Other(name, base, label))
        elif name not in _NAV_PLAIN and base is not _MISSING and hasattr(type(base), "__get__"):
            free = _FreeData if _Attribute(name, base, label).data else _Free
            setattr(self.classes["nav"], name, free(name, base, label))


def _setattr(self: Any, name: str, value: Any) -> None:
    """A name set for the first time during the template phase is watched from now on."""
    object.__setattr__(self, name, value)
    if name.startswith("__"):  # `obj.__class__ = ...` switches roles
        return
    roles: _Roles = type(self)._sitedeploy_roles
    if name not in roles.names:
        roles.watch([name])


class _Watch:
    def __init__(self) -> None:
        self.roles: dict[type, _Roles] = {}
        self.nav_pages: set[int] = set()

    def roles_of(self, obj: object) -> _Roles:
        cls = type(obj)
        if cls not in self.roles:
            self.roles[cls] = roles = _Roles(cls, isinstance(obj, Page))
            roles.watch(dir(cls))
        return self.roles[cls]

    def role(self, obj: object) -> type:
        roles = self.roles_of(obj)
        if not roles.is_page:
            return roles.classes["file"]
        return roles.classes["nav" if id(obj) in self.nav_pages else "other"]


# ---------------------------------------------------------------------------- the build date


def _note_date_use() -> None:
    if _READS.current is not None:
        _READS.date = True


def _plain(date: datetime.datetime) -> datetime.datetime:
    """The same instant as a plain ``datetime`` (unbound base methods: no use is noted)."""
    return datetime.datetime.combine(datetime.datetime.date(date), datetime.datetime.timetz(date))


def _watched(name: str) -> Callable[..., Any]:
    def method(self: datetime.datetime, *args: Any) -> Any:
        _note_date_use()
        return getattr(_plain(self), name)(*args)

    method.__name__ = name
    return method


class WatchedDate(datetime.datetime):
    """The build date as page templates get it: a ``datetime`` that notes any use of itself.

    Special methods are looked up on the type, not through ``__getattribute__``, so each one
    a ``datetime`` has is overridden to note the use and answer as the plain value does (a
    subclass's reflected operator is tried first, so ``plain - watched`` comes here too)."""

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        _note_date_use()
        return getattr(_plain(self), name)

    @classmethod
    def of(cls, date: datetime.datetime) -> WatchedDate:
        return cls.combine(date.date(), date.timetz())


for _name in (
    *("__str__", "__repr__", "__format__", "__hash__", "__reduce__", "__reduce_ex__"),
    *("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"),
    *("__add__", "__radd__", "__sub__", "__rsub__"),
):
    setattr(WatchedDate, _name, _watched(_name))


def _watching_dates(get_context: Callable[..., Any]) -> Callable[..., Any]:
    def page_context(*args: Any, **kwargs: Any) -> Any:
        context = get_context(*args, **kwargs)
        date = context.get(DATE_VARIABLE)
        if type(date) is datetime.datetime:
            context[DATE_VARIABLE] = WatchedDate.of(date)
        return context

    return page_context


@contextmanager
def watching(files: list[File], nav_pages: list[Page]) -> Iterator[Reads]:
    """Switch every page and file to its watched subclass for the template phase, and give
    every page's template a :class:`WatchedDate` (MkDocs makes each page's context with its
    module's ``get_context``)."""
    objects: list[Any] = [*files, *(f.page for f in files if f.page is not None)]
    originals = [(obj, type(obj)) for obj in objects]
    watch = _Watch()
    watch.nav_pages = {id(p) for p in nav_pages}
    get_context = mkdocs_build.get_context
    mkdocs_build.get_context = _watching_dates(get_context)
    try:
        for obj, _ in originals:
            watch.roles_of(obj).watch(vars(obj))
        for obj, _ in originals:
            obj.__class__ = watch.role(obj)
        yield _READS
    finally:
        for obj, cls in originals:
            obj.__class__ = cls
        mkdocs_build.get_context = get_context
        _READS.current = _READS.current_file = None


@contextmanager
def rendering(page: Page) -> Iterator[Reads]:
    """Record what the template of ``page`` reads (inside :func:`watching`)."""
    watched = type(page)
    roles: _Roles | None = getattr(watched, "_sitedeploy_roles", None)
    if roles is not None:  # inside watching(): reads of itself are free
        page.__class__ = roles.classes["current"]
    _READS.start(page)
    try:
        yield _READS
    finally:
        _READS.current = _READS.current_file = None
        page.__class__ = watched
