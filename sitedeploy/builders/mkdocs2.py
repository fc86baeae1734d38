"""MkDocs 2 is recognised and refused with what to do, never built as if it were MkDocs 1.

MkDocs 2 (pre-releases only so far) reads a new ``mkdocs.toml``, has no plugins and builds
other HTML; a site that asks for it would otherwise fail deep in a build with a confusing
log, or (worse) a venv that resolved MkDocs 2 under a ``mkdocs.yml`` whose plugins need
MkDocs 1 would fail on the first plugin. Three checks, each one line naming the file:

1. a ``mkdocs.toml`` without a ``mkdocs.yml`` (MkDocs 2's config);
2. a ``requirements.txt`` line naming ``mkdocs`` whose specifier admits no 1.x release
   (``mkdocs>=2``, ``mkdocs==2.0.dev6``), parsed with ``packaging``;
3. the interpreter that builds the site has MkDocs 2 installed (a venv that resolved
   ``mkdocs>=1.6.0.dev0`` to a 2.0 pre-release, or a plugin that requires it). The version is
   read from the name of the ``mkdocs-<version>.dist-info`` folder: no code of the venv runs.

What to do: pin ``mkdocs<2`` (the site stays on MkDocs 1.6), or change engine
(``builder = "properdocs"`` builds the same ``mkdocs.yml`` and plugins; ``"zensical"``
reads it too but ignores plugins it does not support — ``sitedeploy compare`` shows what
changes).
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import UnsupportedEngine
from . import MKDOCS2_FILES, MKDOCS_FILES, Job

WHAT_TO_DO = 'pin "mkdocs<2" in requirements.txt, or set builder = "properdocs" (or "zensical") for the site'
_MKDOCS_1 = (Version("1.6.1"), Version("1.5.3"), Version("1.99"))


def check_source(job: Job) -> None:
    """Refuse a site whose files ask for MkDocs 2, before anything is installed or run."""
    names = set(os.listdir(job.src))
    if names.intersection(MKDOCS2_FILES) and not names.intersection(MKDOCS_FILES):
        raise UnsupportedEngine(
            f"site '{job.site}': {job.label}/mkdocs.toml is MkDocs 2's config, which sitedeploy does "
            f"not build yet (MkDocs 2 is a pre-release without plugins); keep a mkdocs.yml and {WHAT_TO_DO}"
        )
    requirements = job.src / "requirements.txt"
    if requirements.is_file() and requirements.stat().st_size <= 1024**2:
        text = requirements.read_text(encoding="utf-8", errors="replace")
        for number, spec in enumerate(text.splitlines(), 1):
            if _asks_for_mkdocs2(spec):
                raise UnsupportedEngine(
                    f"site '{job.site}': {job.label}/requirements.txt line {number} asks for "
                    f"'{spec.split('#')[0].strip()[:80]}', MkDocs 2, which sitedeploy does not build yet; "
                    f"{WHAT_TO_DO}"
                )


def _asks_for_mkdocs2(line: str) -> bool:
    """Whether a requirements line names ``mkdocs`` with a specifier no MkDocs 1 satisfies."""
    spec = line.split(" #", 1)[0].strip()
    if not spec or spec.startswith(("#", "-")):
        return False
    try:
        requirement = Requirement(spec)
    except InvalidRequirement:
        return False  # not a named requirement (a path, a URL): venvs.py judges it
    if canonicalize_name(requirement.name) != "mkdocs" or not requirement.specifier:
        return False
    return not any(requirement.specifier.contains(v, prereleases=True) for v in _MKDOCS_1)


def check_interpreter(job: Job, python: Path, config: Path) -> None:
    """Refuse a build whose interpreter has MkDocs 2 installed, naming the plugins of
    ``config`` (the site's mkdocs.yml) that need MkDocs 1."""
    version = installed_version(python)
    if version is None or version.major < 2:
        return
    plugins = plugin_names(job, config)
    where = (
        f"{job.label}/requirements.txt"
        if python.parent.parent.parent == job.venvs
        else "sitedeploy's environment"
    )
    need = (
        f"its plugins ({', '.join(plugins)}) need MkDocs 1" if plugins else "sitedeploy builds MkDocs 1 only"
    )
    raise UnsupportedEngine(
        f"site '{job.site}': {where} installed mkdocs {version}, MkDocs 2, but {need}; {WHAT_TO_DO}"
    )


def plugin_names(job: Job, config: Path) -> list[str]:
    """The plugins a mkdocs.yml configures (a list of names or of one-key tables, or a table)."""
    from .zensical import _read_config  # the bounded, lenient YAML reader of the builders

    listed = _read_config(job, config).get("plugins", [])
    items = (
        listed.items() if isinstance(listed, dict) else enumerate(listed if isinstance(listed, list) else [])
    )
    names = []
    for key, item in items:
        name = key if isinstance(key, str) else next(iter(item), None) if isinstance(item, dict) else item
        if isinstance(name, str):
            names.append(name[:60])
    return names


def installed_version(python: Path) -> Version | None:
    """MkDocs' version in ``python``'s environment: sitedeploy's own, or a venv's, read from
    the ``mkdocs-<version>.dist-info`` folder name (nothing in the venv is run or followed)."""
    if python == Path(sys.executable):
        try:
            return Version(metadata.version("mkdocs"))
        except (metadata.PackageNotFoundError, InvalidVersion):
            return None
    for site_packages in (python.parent.parent / "lib").glob("python3*/site-packages"):
        for name in os.listdir(site_packages):
            if name.lower().startswith("mkdocs-") and name.endswith(".dist-info"):
                try:
                    return Version(name[len("mkdocs-") : -len(".dist-info")])
                except InvalidVersion:
                    continue
    return None
