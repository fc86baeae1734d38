"""MkDocs, run as ``mkdocs build`` runs for its users.

The command is the ``mkdocs`` console script of the interpreter that builds the site (the
site's own venv when it has a requirements.txt), so ``sys.path[0]`` is that script's folder,
not the site folder: a folder named ``mkdocs/`` in the site cannot shadow the installed
package (``python -m mkdocs`` with the site as working directory let it). Where no console
script exists, the entry point is called with ``python -P``, which also keeps the working
directory off ``sys.path``. MkDocs itself puts the config's folder on ``sys.path`` while it
loads hooks; that is the tool's own behaviour and kept.

The build writes into a folder of its own; :func:`sitedeploy.untrusted.copy_out` then moves
its files into ``job.out`` (regular files and folders only, never through a link).
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import sandbox, untrusted, venvs
from . import MKDOCS_FILES, Job, Warnings, find_config, log_lines, run_tool

INCREMENTAL = "sitedeploy_mkdocs"
INCREMENTAL_MODULES = (
    "mkdocs_incremental.py",
    "mkdocs_cache.py",
    "mkdocs_keys.py",
    "mkdocs_pack.py",
    "mkdocs_tracking.py",
)
PATH_PREFIX = "sitedeploy-build: "
"""The incremental builder's last line: which way the build went and why."""
# Calls the console-script entry point the way the generated script does.
_LAUNCH = (
    "import sys; from importlib.metadata import entry_points; "
    "(ep,) = entry_points(group='console_scripts', name=sys.argv[1]); "
    "sys.argv = sys.argv[1:]; sys.exit(ep.load()())"
)


def build(job: Job) -> Warnings:
    config = find_config(job, MKDOCS_FILES)
    python = venvs.python_for(job, "mkdocs")
    site = job.work / "site"  # what the build writes: untrusted until copied out
    site.mkdir(parents=True)
    env = {"SOURCE_DATE_EPOCH": str(job.epoch)}
    read_only, writable = [job.src], [site]
    if job.cache is None:
        command = [*entry_point(python, "mkdocs"), "build", "--clean"]
    else:
        lib = _incremental_lib(job.cache.parent / ".lib")  # a stable path: part of the cache key
        job.cache.mkdir(parents=True, exist_ok=True)
        command = [str(python), "-P", "-m", f"{INCREMENTAL}.mkdocs_incremental", "--cache", str(job.cache)]
        env["PYTHONPATH"] = str(lib)
        read_only, writable = [*read_only, lib], [*writable, job.cache]
    command += [
        "--config-file",
        str(config),
        "--site-dir",
        str(site),
        *(["--strict"] if job.strict else []),
    ]
    step = sandbox.Step(
        command, job.work / "run", cwd=job.src, read_only=read_only, writable=writable, env=env
    )
    found = warnings(run_tool(job, "mkdocs build", step, python))
    job.out.parent.mkdir(parents=True, exist_ok=True)
    untrusted.copy_out(job.work, ["site"], job.out, f"site '{job.site}' ({job.label})")
    return found


def _incremental_lib(lib: Path) -> Path:
    """The incremental builder as a package of its own, importable by the site's interpreter.

    It runs in the site's environment (its MkDocs, its plugins), which has no sitedeploy
    installed; its modules import only each other, the standard library and MkDocs, so a copy
    under another package name works there, and sitedeploy's own site-packages never shadow
    the site's MkDocs.
    """
    package = lib / INCREMENTAL
    package.mkdir(parents=True, exist_ok=True)
    _install(package / "__init__.py", b'"""sitedeploy\'s incremental MkDocs builder (a copy)."""\n')
    here = Path(__file__).parent
    for name in INCREMENTAL_MODULES:
        _install(package / name, (here / name).read_bytes())
    return lib


def _install(path: Path, data: bytes) -> None:
    """Write ``path`` only when its bytes change (by rename: a build reading it sees old or new)."""
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def entry_point(python: Path, name: str) -> list[str]:
    """The argv prefix that runs ``name``'s console script with ``python``."""
    script = python.parent / name
    if script.is_file():
        return [str(script)]
    return [str(python), "-P", "-c", _LAUNCH, name]


def warnings(log: Path) -> Warnings:
    found = Warnings()
    for line in log_lines(log):
        if line.startswith("WARNING"):
            found.add(" ".join(line.split()))
        elif line.startswith(PATH_PREFIX):
            found.path = line[len(PATH_PREFIX) :].strip()
    return found
