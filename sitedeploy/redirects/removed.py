"""Pages a deploy removes: listed, with the ``_redirects`` lines that would keep their links
working, before anything is written.

The plan already knows every file the release deletes; an HTML page among them (other than a
404 page) is a URL readers, search engines and other sites link to. Unless a rule of the new
release answers it (:meth:`.ruleset.RuleSet.resolve`), the target's ``removed_pages`` decides:

- ``"warn"`` (default): the deploy goes on and says which URLs went, with a suggested rule for
  each (the surviving page whose path is nearest);
- ``"refuse"``: the deploy stops with one line (:class:`~sitedeploy.errors.PlanRefused`);
  ``--force`` publishes anyway and history notes it;
- ``"allow"``: say nothing.
"""

from __future__ import annotations

import difflib
import logging
import posixpath
from pathlib import Path
from typing import Literal

from ..errors import PlanRefused
from ..progress import Progress
from ..release.diff import Plan
from ..release.manifest import Manifest
from .release import read_rules
from .ruleset import GENERATED_PREFIX

RemovedPages = Literal["warn", "refuse", "allow"]
SHOWN = 5
"""URLs named in the one-line message; the rest are counted."""
log = logging.getLogger(__name__)


def page_url(path: str) -> str:
    """The URL a release file is served at (``a/index.html`` → ``/a/``)."""
    if path == "index.html" or path.endswith("/index.html"):
        return "/" + path[: -len("index.html")]
    return "/" + path


def is_page(path: str) -> bool:
    name = posixpath.basename(path)
    return name.endswith((".html", ".htm")) and name != "404.html" and not path.startswith(GENERATED_PREFIX)


def uncovered(plan: Plan, build_dir: Path | None) -> list[str]:
    """URLs of the pages ``plan`` deletes that no rule of the new release answers."""
    rules = read_rules(build_dir) if build_dir is not None else None
    urls = [page_url(p) for p in plan.deletes if is_page(p)]
    return sorted(u for u in urls if rules is None or rules.resolve(u) is None)


def suggestions(urls: list[str], manifest: Manifest) -> list[str]:
    """A ``_redirects`` line per URL: to the surviving page whose path is most alike."""
    pages = [page_url(p) for p in manifest if is_page(p)]
    lines = []
    for url in urls:
        near = difflib.get_close_matches(url, pages, n=1, cutoff=0.0) or ["/"]
        lines.append(f"{url} {near[0]}")
    return lines


def check_removed(
    target: str, mode: RemovedPages, force: bool, plan: Plan, manifest: Manifest,
    build_dir: Path | None, progress: Progress, *, what: str | None = None,
) -> str | None:  # fmt: skip
    """Warn about or refuse a deploy removing live pages; the history note when forced.

    ``what`` says which pages go (``{n}``: how many): a new version's check against the
    previous version (:mod:`sitedeploy.versions.dropped`) says it its own way."""
    urls = uncovered(plan, build_dir) if mode != "allow" else []
    if not urls:
        return None
    lines = suggestions(urls, manifest)
    shown = "; ".join(lines[:SHOWN]) + (f"; and {len(lines) - SHOWN} more" if len(lines) > SHOWN else "")
    said = (
        f"target '{target}': {(what or 'this deploy removes {n} live page(s)').format(n=len(urls))} "
        "that no redirect covers; "
        f"add to the site's _redirects (paths are relative to its mount): {shown}"
    )
    if mode == "refuse" and not force:
        raise PlanRefused(f'{said}; or set removed_pages = "allow", or pass --force')
    progress.step(f"warning: {said}")
    log.warning("%s", said)
    gone = (what or "removed {n} live page(s)").format(n=len(urls))
    return f"forced: {gone} without redirects" if mode == "refuse" else None
