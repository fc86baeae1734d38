"""What each cached piece of an incremental MkDocs build depends on, as digests.

Three levels, each containing the one before:

- the **site key** (one digest per component, so a change can be named): the installed
  packages and their versions (MkDocs, plugins, themes, Markdown extensions, Pygments, Jinja),
  Python, the theme override files (``custom_dir``), and this builder's own source. Any
  change: full build. Each setting of the loaded ``mkdocs.yml`` (after ``!ENV`` and
  ``INHERIT``) gets a digest of its own (:func:`config_settings`).
- the **render key** of a page (its Markdown → HTML): site key, the page's own file (path,
  destination, URL), its source and metadata. The render also depends on what it was seen to
  read while it rendered (:mod:`.tracking`): each path its links looked up in the file
  set and the file found there (or none), and each setting it read (``markdown_extensions``,
  ``mdx_configs``, ``validation``, ``use_directory_urls``, ``plugins``). A stored render is
  reused only if all of those are the same now (:func:`render_inputs`); the *render id*, which
  the keys below build on, is the render key with them. So a page added, or ``copyright``
  edited, re-renders the Markdown of no page but those that read it.
- the **template key** of a page (its HTML file): render id, every setting of
  ``mkdocs.yml``, the whole file set (every file's path, destination and URL: themes can list
  all pages), the page's title and metadata, and the navigation with every title, URL and
  metadata of the pages in it (which decides prev/next, parents and the active item) and
  ``nav:`` as written. A template that used the build date (the ``mkdocs``
  theme's home page) also depends on ``SOURCE_DATE_EPOCH``; one that read another page's body
  also depends on every page's render key. Those two are found while rendering (see
  :mod:`.tracking`).

Inputs that this cannot key — a plugin or Markdown extension not known to be pure, a hook, a
config value that is arbitrary code — raise :class:`NotIncremental`: the caller then runs a
plain full build and caches nothing.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mkdocs
from mkdocs.config.base import Config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import PluginCollection
from mkdocs.structure import StructureItem
from mkdocs.structure.files import File, Files
from mkdocs.structure.nav import Link, Navigation, Section
from mkdocs.structure.pages import Page
from mkdocs.theme import Theme

FORMAT = 3  # of the keys and the cache (:mod:`.pack`)
# MkDocs versions whose build steps were read for what a page render and a template can see
# (1.6: a render resolves links against the file set only). Others build in full.
VERIFIED_MKDOCS = ("1.6.",)

# Plugins whose every event we have read: all only index the current page for search
# (ProperDocs' search is MkDocs' own, renamed; it runs the builder under ProperDocs).
SAFE_PLUGINS = frozenset(
    {
        "mkdocs.contrib.search.SearchPlugin",
        "properdocs.contrib.search.SearchPlugin",
        "material.plugins.search.plugin.SearchPlugin",
    }
)
# Python-Markdown's own extensions: each turns one page's text into HTML, reading nothing else.
_MARKDOWN_BUILTINS = frozenset(
    {
        *("abbr", "admonition", "attr_list", "codehilite", "def_list", "extra", "fenced_code"),
        *("footnotes", "legacy_attrs", "legacy_em", "md_in_html", "meta", "nl2br", "sane_lists"),
        *("smarty", "tables", "toc", "wikilinks"),
    }
)
_PURE_EXTENSION_PACKAGES = ("markdown.extensions.", "pymdownx.", "material.extensions.")
# These pull other files into a page, which the render key does not cover.
_FILE_READING_EXTENSIONS = frozenset({"pymdownx.snippets", "pymdownx.b64"})
# `!!python/name:` values (superfences formatters, slug functions) trusted to be pure.
_TRUSTED_CODE = ("markdown.", "pymdownx.", "material.", "mkdocs.", "properdocs.")
_TRUSTED_REPR = ("babel.", "mkdocs.", "properdocs.")
_UNKEYED_CONFIG = frozenset({"site_dir"})  # a fresh folder per build; never in the output


class NotIncremental(Exception):
    """An input this builder cannot key: build in full and cache nothing."""


def digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=_typed_str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def key(*parts: object) -> str:
    """A digest for the per-page keys, where :func:`digest` would spend its time escaping a
    page's whole source into JSON: each part is hashed as its UTF-8 bytes (other values as
    their JSON), prefixed with its kind and length, so no two part lists give the same input."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            kind, data = b"s", part.encode("utf-8", "surrogatepass")
        elif part is None:
            kind, data = b"n", b""
        else:
            kind = b"j"
            data = _key_json(part).encode("utf-8", "surrogatepass")
        h.update(kind + len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _typed_str(value: object) -> str:
    # Front matter may hold dates and other YAML types; the type keeps 1 and "1" apart.
    return f"{type(value).__name__}:{value!r}"


# json.dumps(part, sort_keys=True, default=_typed_str), without a new encoder per call
_key_json = json.JSONEncoder(sort_keys=True, default=_typed_str).encode


# ---------------------------------------------------------------------------- site key


def check_supported(config: MkDocsConfig) -> None:
    """Raise NotIncremental for hooks, unknown plugins and unknown Markdown extensions."""
    if not mkdocs.__version__.startswith(VERIFIED_MKDOCS):
        raise NotIncremental(f"MkDocs {mkdocs.__version__} is not verified for incremental builds")
    if config.hooks:
        raise NotIncremental("hooks in mkdocs.yml run code that may read other pages")
    for name, plugin in config.plugins.items():
        if _qualname(type(plugin)) not in SAFE_PLUGINS:
            raise NotIncremental(f"plugin '{name}' is not known to be safe to build incrementally")
    for extension in config.markdown_extensions:
        if not isinstance(extension, str) or not _pure_extension(extension):
            raise NotIncremental(f"markdown extension '{extension}' is not known to read only its page")


def _pure_extension(name: str) -> bool:
    module = name.split(":", 1)[0]
    if module in _FILE_READING_EXTENSIONS:
        return False
    return module in _MARKDOWN_BUILTINS or module.startswith(_PURE_EXTENSION_PACKAGES)


def site_components(config: MkDocsConfig) -> dict[str, str]:
    """The site key, one digest per component that a message can name."""
    return {
        "builder": digest(FORMAT, _own_source()),
        "mkdocs": digest(mkdocs.__version__, sys.version),
        "packages": digest(installed_packages()),
        "theme": digest([_tree_digest(d) for d in config.theme.dirs if not _installed(d)]),
    }


COMPONENT_REASONS = {
    "builder": "the incremental builder changed",
    "mkdocs": "MkDocs or Python version changed",
    "packages": "installed packages changed",
    "theme": "theme override files changed",
}


def config_settings(config: MkDocsConfig) -> dict[str, str]:
    """Every setting of the loaded ``mkdocs.yml`` by name, as a digest of its value."""
    return {k: digest(stable(v, k)) for k, v in config.items() if k not in _UNKEYED_CONFIG}


def stable(value: Any, where: str) -> Any:
    """A JSON-able value that changes whenever ``value`` (a loaded config value) does."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, PluginCollection):  # a dict of plugin objects: key each one's config
        return [[k, _qualname(type(p)), stable(p.config, f"{where}.{k}")] for k, p in value.items()]
    if isinstance(value, (Config, Mapping)):
        return {
            str(k): stable(v, f"{where}.{k}") for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
        }
    if isinstance(value, (list, tuple)):
        return [stable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted(json.dumps(stable(v, where), sort_keys=True) for v in value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, Theme):
        return [value.name, value.dirs, sorted(value.static_templates), stable(dict(value), where)]
    if callable(value) and hasattr(value, "__qualname__"):
        return _code_name(value, where)
    if type(value).__module__.startswith(_TRUSTED_REPR) and " at 0x" not in repr(value):
        return f"{_qualname(type(value))}:{value!r}"
    raise NotIncremental(f"config value '{where}' ({type(value).__name__}) cannot be keyed")


def _code_name(value: Any, where: str) -> str:
    name = f"{value.__module__}.{value.__qualname__}"
    if not name.startswith(_TRUSTED_CODE):
        raise NotIncremental(f"config value '{where}' refers to code '{name}' that may read other files")
    return f"code:{name}"


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def installed_packages() -> list[str]:
    """Every installed distribution with its version, as its metadata folder names say
    (``mkdocs-1.6.1.dist-info``): a listing, not a metadata parse of each package."""
    found: set[str] = set()
    for entry in sys.path:
        if os.path.isdir(entry):
            found.update(n for n in os.listdir(entry) if n.endswith((".dist-info", ".egg-info")))
    return sorted(found)


@functools.cache
def _install_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths["purelib"], paths["platlib"], paths["stdlib"], paths["platstdlib"], sys.base_prefix}
    return tuple(os.path.realpath(r) + os.sep for r in roots)


def _installed(path: str) -> bool:
    return (os.path.realpath(path) + os.sep).startswith(_install_roots())


def _tree_digest(folder: str) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(folder).as_posix()}\0{path.stat().st_size}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _own_source() -> list[str]:
    here = Path(__file__).parent
    return [_file_sha(p) for p in sorted(here.glob("*.py"))]  # this package, as copied


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def local_code() -> dict[str, str]:
    """Imported modules that no installed package owns (a module beside mkdocs.yml shadowing
    an extension, say): their bytes are inputs too. Checked again before the next build."""
    found: dict[str, str] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and os.path.isfile(path) and not _installed(path):
            found[os.path.realpath(path)] = _file_sha(Path(path))
    return found


def changed_code(recorded: Mapping[str, str]) -> str | None:
    """The first recorded local module whose bytes differ now, or None."""
    for path, sha in sorted(recorded.items()):
        if not os.path.isfile(path) or _file_sha(Path(path)) != sha:
            return path
    return None


# ---------------------------------------------------------------------------- pages and nav


def file_row(file: File) -> list[str]:
    """A file as links to it and templates see it."""
    return [file.src_uri, file.dest_uri, file.url, file.inclusion.name, str(file.generated_by or "")]


def file_rows(files: Files) -> dict[str, list[str]]:
    """Every file by its source path (what links look up), as :func:`file_row` gives it."""
    return {f.src_uri: file_row(f) for f in files}


def page_meta(page: Page) -> str:
    return json.dumps(page.meta, sort_keys=True, default=_typed_str)


def render_key(site: str, page: Page) -> str:
    return key("render", site, file_row(page.file), page.markdown, page_meta(page))


def render_inputs(
    found: Mapping[str, list[str] | None],
    files_key: str | None,
    settings: Mapping[str, str],
    config_key: str | None,
) -> dict[str, Any]:
    """What a render was seen to read, as stored with it: every path its links looked up and
    the row of the file found there (or None), every setting it read and its digest, and the
    digest of the whole file set or config where it used more of them."""
    return {
        "links": [[path, found[path]] for path in sorted(found)],
        "files": files_key,
        "settings": [[name, settings[name]] for name in sorted(settings)],
        "config": config_key,
    }


def render_id(rkey: str, inputs: dict[str, Any]) -> str:
    """A render's identity: its key and what it read (:func:`render_inputs`)."""
    return key("render-id", rkey, inputs)


def nav_digest(nav: Navigation) -> str:
    """Every navigation item as templates can see it: titles, URLs, metadata and order."""
    return digest([_nav_item(item) for item in nav.items])


def _nav_item(item: StructureItem) -> list[Any]:
    if isinstance(item, Section):
        return ["section", item.title, [_nav_item(child) for child in item.children]]
    if isinstance(item, Link):
        return ["link", item.title, item.url]
    assert isinstance(item, Page), f"unknown navigation item {item!r}"
    return [
        "page",
        item.file.src_uri,
        item.title,
        item.url,
        page_meta(item),
        item.canonical_url,
        item.edit_url,
    ]


def template_inputs(
    site: str, config_key: str, files_key: str, nav_key: str, rid: str, page: Page
) -> tuple[object, ...]:
    """What every template render of ``page`` depends on; the reads seen while rendering add
    the build date and the digest of every page (:func:`template_key`)."""
    uri, meta = page.file.src_uri, page_meta(page)
    return ("template", site, config_key, files_key, nav_key, rid, uri, page.title, meta)


def template_key(inputs: tuple[object, ...], date: str | None, every_page: str | None) -> str:
    """The key of a template render: its inputs, and the build date and the digest of every
    page where it read them (None where it did not)."""
    return key(*inputs, date, every_page)


def search_key(rid: str, config_key: str, page: Page) -> str:
    """Search entries depend on the page's render, title and URL, and on the search plugin's
    settings, not on its template."""
    return key("search", rid, config_key, page.title, page.url)
