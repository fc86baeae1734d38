"""A site's rules, read when it is built: ``_redirects`` and ``_headers`` from its output (or
its source folder), mkdocs-redirects' ``redirect_maps``, and whether it has a ``404.html``.

The output is the deployer's own copy (:func:`sitedeploy.sandbox.untrusted.copy_out`), the source folder
one the sandbox could write: both are read by descriptor, without following a link, regular
files only (:mod:`sitedeploy.sandbox.untrusted`), and a file over :data:`~.rules.MAX_FILE_BYTES` is
refused before it is read. ``_redirects`` and ``_headers`` are taken out of the output: they
are instructions for the server, not pages.

The site's rules are stored in its build cache entry (``rules.json`` beside ``out/``), so a
reused build keeps them; the release joins them (:mod:`.ruleset`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import RulesError, SitedeployError
from ..sandbox.untrusted import UnsafeOutput, open_dir, open_regular
from .headers import parse_headers
from .rules import MAX_FILE_BYTES, Redirect, parse_line, parse_redirects
from .ruleset import RuleSet

RULE_FILES = ("_redirects", "_headers")
SITE_RULES = "rules.json"
"""The site's rules in its build cache entry, beside ``out/``."""
MKDOCS_CONFIGS = ("mkdocs.yml", "mkdocs.yaml", "properdocs.yml")


def collect_site(out: Path, src: Path, mount: str, site: str, label: str) -> RuleSet:
    """The rules of one freshly built site (``out`` loses its ``_redirects``/``_headers``)."""
    where = f"site '{site}' ({label})"
    texts: dict[str, tuple[str, str]] = {}
    for name in RULE_FILES:
        text = read_small(out, name, where)
        if text is not None:
            texts[name] = (text, _origin(text, src, name, label))
            (out / name).unlink()
            continue
        text = read_small(src, name, where)
        if text is not None:
            texts[name] = (text, f"{label}/{name}")
    redirects = list(mkdocs_redirect_maps(src, mount, label))
    if "_redirects" in texts:
        redirects += parse_redirects(*texts["_redirects"], mount)
    headers = parse_headers(*texts["_headers"], mount) if "_headers" in texts else []
    page = (mount, mount + "404.html") if _is_file(out, "404.html") else None
    return RuleSet(tuple(redirects), tuple(headers), (page,) if page else ())


def _origin(text: str, src: Path, name: str, label: str) -> str:
    """The source file an output's rules file was copied from, for messages (a static site's
    own file, or MkDocs' ``docs/``), else the output itself."""
    for rel in (name, f"docs/{name}"):
        *inner, last = rel.split("/")
        try:
            if read_small(src, last, label, inner) == text:
                return f"{label}/{rel}"
        except SitedeployError:
            continue
    return f"{label}: {name} in the build output"


def read_small(folder: Path, name: str, where: str, inner: Sequence[str] = ()) -> str | None:
    """``folder/inner.../name`` as text if it is a regular file, refusing links and big files
    (``folder`` is the deployer's; nothing below it is followed if it is a link)."""
    try:
        dir_fd = open_dir(folder, inner, where)
    except (UnsafeOutput, FileNotFoundError):
        return None
    try:
        try:
            os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        fd = open_regular(dir_fd, name, name, where)  # a link or a FIFO there is refused
        with os.fdopen(fd, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_FILE_BYTES:
                raise RulesError(f"{where}: {name} is over 1 MB; shorten it (splats: /old/* /new/:splat)")
            raw = f.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(dir_fd)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RulesError(f"{where}: {name} is not UTF-8 text") from None


def _is_file(folder: Path, name: str) -> bool:
    try:
        return (folder / name).is_file() and not (folder / name).is_symlink()
    except OSError:
        return False


def mkdocs_redirect_maps(src: Path, mount: str, label: str) -> list[Redirect]:
    """mkdocs-redirects' ``redirect_maps`` as 301 rules, when the site's config uses the plugin."""
    for name in MKDOCS_CONFIGS:
        text = read_small(src, name, f"{label}/{name}")
        if text is not None:
            return _from_config(_load(text), mount, f"{label}/{name}")
    return []


def _load(text: str) -> Any:
    from ..builders.zensical import _LenientSafeLoader

    try:
        return yaml.load(text, Loader=_LenientSafeLoader)  # nosec B506: a SafeLoader subclass
    except yaml.YAMLError:
        return None  # the build itself reports a broken config


def _from_config(config: Any, mount: str, where: str) -> list[Redirect]:
    plugins = config.get("plugins") if isinstance(config, dict) else None
    found: Any = None
    for plugin in plugins if isinstance(plugins, list) else []:
        if isinstance(plugin, dict) and isinstance(plugin.get("redirects"), dict):
            found = plugin["redirects"].get("redirect_maps")
    if isinstance(plugins, dict) and isinstance(plugins.get("redirects"), dict):
        found = plugins["redirects"].get("redirect_maps")
    if not isinstance(found, dict):
        return []
    directory_urls = config.get("use_directory_urls", True) is not False
    rules = []
    for old, new in found.items():
        here = f"{where}: redirect_maps {str(old)[:80]!r}"
        source, target = page_url(str(old), directory_urls), str(new)
        if not target.startswith(("https://", "http://")):
            target = page_url(target, directory_urls)
        rules.append(parse_line([source, target, "301"], here, mount))
    return rules


def page_url(page: str, directory_urls: bool) -> str:
    """The URL MkDocs gives a Markdown file (``a/b.md`` → ``/a/b/``), keeping a ``#fragment``."""
    path, sep, fragment = page.partition("#")
    path = path.lstrip("/")
    if path.endswith(".md"):
        stem = path[:-3]
        if stem == "index" or stem.endswith("/index"):
            path = stem[:-5]
        else:
            path = f"{stem}/" if directory_urls else f"{stem}.html"
    return "/" + path + (sep + fragment if sep else "")
