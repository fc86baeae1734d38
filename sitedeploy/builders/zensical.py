"""Zensical (the Material team's successor to MkDocs), run as ``zensical build`` runs.

Zensical has no ``--site-dir``: it writes ``site_dir`` (default ``site``, always inside the
project) and a ``.cache`` next to its config. The site's input stays read-only, so the build
runs on a private copy of it in the job's work folder, and the produced ``site_dir`` is moved
to the output. Its output was checked byte-identical across two builds of the same commit in
different folders (with ``SOURCE_DATE_EPOCH`` set).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .. import sandbox, venvs
from ..errors import BuildError
from . import MKDOCS_FILES, ZENSICAL_FILES, Job, Warnings, find_config, log_lines, run_tool
from .mkdocs import entry_point
from .static import copy_tree


def build(job: Job) -> Warnings:
    config = find_config(job, ZENSICAL_FILES + MKDOCS_FILES)
    python = venvs.python_for(job, "zensical")
    project = job.work / "project"
    copy_tree(job.src, project, job)
    site_dir = project / _site_dir(job, project / config.name)
    command = [*entry_point(python, "zensical"), "build", "--config-file", str(project / config.name)]
    command += ["--strict"] if job.strict else []
    step = sandbox.Step(
        command, job.work / "run", cwd=project, writable=[project], env={"SOURCE_DATE_EPOCH": str(job.epoch)}
    )
    log = run_tool(job, "zensical build", step, python)
    if not site_dir.is_dir():
        raise BuildError(f"site '{job.site}' ({job.label}): zensical build wrote no {site_dir.name}/ folder")
    job.out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(site_dir, job.out)
    return warnings(log)


def _site_dir(job: Job, config: Path) -> str:
    """``site_dir`` from the config (Zensical refuses one outside the project)."""
    raw = _read_config(job, config).get("site_dir", "site")
    path = PurePosixPath(str(raw))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BuildError(
            f"site '{job.site}' ({job.label}/{config.name}): site_dir {raw!r} must be a relative folder "
            "inside the site; sitedeploy decides where the output goes"
        )
    return str(path)


def _read_config(job: Job, config: Path) -> dict[str, Any]:
    try:
        if config.suffix == ".toml":
            data = tomllib.loads(config.read_text(encoding="utf-8")).get("project", {})
        else:  # a SafeLoader: tags like !ENV or !!python/name read as null, never run
            text = config.read_text(encoding="utf-8")
            data = yaml.load(text, Loader=_LenientSafeLoader)  # nosec B506: a SafeLoader subclass
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise BuildError(f"site '{job.site}' ({job.label}/{config.name}): cannot read: {exc}") from None
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
