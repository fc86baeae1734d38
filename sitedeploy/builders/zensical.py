"""Zensical (the Material team's successor to MkDocs), run as ``zensical build`` runs.

Zensical has no ``--site-dir``: it writes ``site_dir`` (default ``site``, always inside the
project) and a ``.cache`` next to its config. The site's input stays read-only, so the build
runs on a copy of it, and the produced ``site_dir`` is moved to the output. Its output was
checked byte-identical across two builds of the same commit in different folders (with
``SOURCE_DATE_EPOCH`` set).

Zensical's differential build is its own: its ``.cache`` says what it may skip. That cache is
keyed by the project's absolute path (a copy in a new folder renders every page again), so
with incremental builds on, the copy lives at the same place every time
(``<state_dir>/zensical-cache/<site>/project``): each build makes that folder anew, moves
the last build's ``.cache`` back in (when it is a real folder), copies the commit's files in
and runs there. The output is taken from the project by descriptor
(:func:`sitedeploy.sandbox.untrusted.copy_out`): a ``site_dir`` the build replaced with a link is
refused, not followed. A build that fails leaves no cache behind, and
with ``--full-build`` (``[build] incremental = false``) the copy is a fresh one in the job's
work folder, as before.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .. import sandbox
from ..errors import BuildError
from ..sandbox import untrusted, venvs
from . import MKDOCS_FILES, ZENSICAL_FILES, Job, Warnings, find_config, log_lines, run_tool
from .mkdocs import entry_point
from .static import copy_tree

CACHE = ".cache"
"""Zensical's own cache folder, next to its config."""


def build(job: Job) -> Warnings:
    config = find_config(job, ZENSICAL_FILES + MKDOCS_FILES)
    python = venvs.python_for(job, "zensical")
    with _project(job) as (project, cached):
        site_dir = _site_dir(job, config)  # read from the checkout: the build cannot change it
        copy_tree(job.src, project, job)
        log = _run(job, python, project, project / config.name, site_dir)
    found = warnings(log)
    if job.cache is not None:
        found.path = "incremental: Zensical's own cache" if cached else "full: no previous build in the cache"
    return found


def _run(job: Job, python: Path, project: Path, config: Path, site_dir: str) -> Path:
    """``zensical build`` in ``project``, its ``site_dir`` copied out to the output; its log."""
    command = [*entry_point(python, "zensical"), "build", "--config-file", str(config)]
    command += ["--strict"] if job.strict else []
    env = {"SOURCE_DATE_EPOCH": str(job.epoch)}
    step = sandbox.Step(command, job.work / "run", cwd=project, writable=[project], env=env)
    log = run_tool(job, "zensical build", step, python)
    job.out.parent.mkdir(parents=True, exist_ok=True)
    # By descriptor from the project folder: a site_dir (or a folder above it) that the build
    # swapped for a link is refused, never moved or published.
    untrusted.copy_out(project, site_dir.split("/"), job.out, f"site '{job.site}' ({job.label})")
    return log


@contextmanager
def _project(job: Job) -> Iterator[tuple[Path, bool]]:
    """The folder to build in, and whether it holds Zensical's cache from an earlier build."""
    if job.cache is None:
        yield job.work / "project", False
        return
    job.cache.mkdir(parents=True, exist_ok=True)
    with (job.cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # an agent and a person may build the same site at once
        project = job.cache / "project"
        try:
            yield project, _fresh_project(project, keep_cache=not os.path.lexists(job.src / CACHE))
        except BaseException:
            shutil.rmtree(project, ignore_errors=True)  # a failed build's cache is not to be trusted
            raise


def _fresh_project(project: Path, keep_cache: bool) -> bool:
    """Make ``project`` a new, empty folder of the deployer's, with only Zensical's cache
    folder of the last build moved back in; whether there was one.

    Everything the last build left is planted until proven otherwise, so nothing is written
    into it: the old folder is renamed away whole (a rename moves a link, never follows it),
    its ``.cache`` is moved back only when it is a real folder, and the rest is removed.
    """
    old = project.with_name(f".old-{os.getpid()}")
    if os.path.lexists(project):
        os.rename(project, old)
    os.mkdir(project, 0o755)
    cached = False
    if untrusted.is_real_dir(old):
        if keep_cache and untrusted.is_real_dir(old / CACHE):
            os.rename(old / CACHE, project / CACHE)
            with os.scandir(project / CACHE) as kept:
                cached = any(kept)
        shutil.rmtree(old)  # removes links, never follows them
    elif os.path.lexists(old):
        os.unlink(old)
    return cached


def _site_dir(job: Job, config: Path) -> str:
    """``site_dir`` from the config (Zensical refuses one outside the project)."""
    raw = _read_config(job, config).get("site_dir", "site")
    # Only text: YAML aliases let a few hundred bytes stand for a billion strings, which
    # str() or repr() would build here, in the deployer's memory.
    path = PurePosixPath(raw if isinstance(raw, str) else "/")
    if path.is_absolute() or ".." in path.parts or not path.parts:
        shown = repr(raw)[:200] if isinstance(raw, str) else f"a {type(raw).__name__}"
        raise BuildError(
            f"site '{job.site}' ({job.label}/{config.name}): site_dir {shown} must be a relative folder "
            "inside the site; sitedeploy decides where the output goes"
        )
    return str(path)


def _read_config(job: Job, config: Path) -> dict[str, Any]:
    try:
        if config.stat().st_size > 1024**2:  # read whole: git stores a file compressed
            raise BuildError(f"site '{job.site}' ({job.label}/{config.name}): over 1 MB; shorten it")
        if config.suffix == ".toml":
            data = tomllib.loads(config.read_text(encoding="utf-8")).get("project", {})
        else:  # a SafeLoader: tags like !ENV or !!python/name read as null, never run
            text = config.read_text(encoding="utf-8")
            data = yaml.load(text, Loader=_LenientSafeLoader)  # nosec B506: a SafeLoader subclass
    except (OSError, ValueError, yaml.YAMLError) as exc:
        said = " ".join(str(exc).split())[:300]  # PyYAML's spans lines and quotes the file
        raise BuildError(f"site '{job.site}' ({job.label}/{config.name}): cannot read: {said}") from None
    return data if isinstance(data, dict) else {}


class _LenientSafeLoader(yaml.SafeLoader):
    """SafeLoader that reads any tag it does not know as null instead of failing."""


_LenientSafeLoader.add_multi_constructor("", lambda loader, suffix, node: None)


def warnings(log: Path) -> Warnings:
    """``Warning: page does not exist`` plus the ``[ index.md:3:37 ]`` location under it."""
    found = Warnings()
    pending: str | None = None
    for line in log_lines(log):
        if pending is not None and "[" in line and "]" in line:
            where = line[line.index("[") + 1 : line.rindex("]")].strip()
            found.add(f"{pending} ({where})")
            pending = None
            continue
        if pending is not None:
            found.add(pending)
            pending = None
        if line.lstrip().startswith("Warning:"):
            pending = " ".join(line.split())
    if pending is not None:
        found.add(pending)
    return found
