"""MkDocs, run as ``mkdocs build`` runs for its users.

The command is the ``mkdocs`` console script of the interpreter that builds the site (the
site's own venv when it has a requirements.txt), so ``sys.path[0]`` is that script's folder,
not the site folder: a folder named ``mkdocs/`` in the site cannot shadow the installed
package (``python -m mkdocs`` with the site as working directory let it). Where no console
script exists, the entry point is called with ``python -P``, which also keeps the working
directory off ``sys.path``. MkDocs itself puts the config's folder on ``sys.path`` while it
loads hooks; that is the tool's own behaviour and kept.

With an incremental cache the build runs sitedeploy's incremental builder instead (the package
:mod:`.mkdocs_incremental`, the part of sitedeploy that runs inside the sandbox), from a copy
in the trust level's ``mkdocs-lib/``: a folder no build is ever bound writable, checked byte
for byte before each build. The cache itself is bound writable, so the deployer seals it after
each finished build and discards it before the next one if anything in it changed since
(:mod:`sitedeploy.sandbox.cacheseal`).

The build writes into a folder of its own; :func:`sitedeploy.sandbox.untrusted.copy_out` then
moves its files into ``job.out`` (regular files and folders only, never through a link).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import sandbox
from ..errors import BuildError
from ..sandbox import cacheseal, untrusted, venvs
from . import MKDOCS_FILES, Job, Warnings, find_config, log_lines, mkdocs2, run_tool

INCREMENTAL = "sitedeploy_mkdocs"
LIB = "mkdocs-lib"
"""The incremental builder's code, in the trust level's state folder: never bound writable."""
SANDBOX_SIDE = Path(__file__).parent / "mkdocs_incremental"
"""The package that runs inside the sandbox, copied as a folder (as ``INCREMENTAL``)."""
PATH_PREFIX = "sitedeploy-build: "
"""The incremental builder's last line: which way the build went and why."""
# Calls the console-script entry point the way the generated script does.
_LAUNCH = (
    "import sys; from importlib.metadata import entry_points; "
    "(ep,) = entry_points(group='console_scripts', name=sys.argv[1]); "
    "sys.argv = sys.argv[1:]; sys.exit(ep.load()())"
)


def build(job: Job) -> Warnings:
    mkdocs2.check_source(job)  # a site asking for MkDocs 2 is told what to do, not misbuilt
    if job.cache is None or job.state is None:
        return _build(job)
    _check_cache_place(job)
    with _cache_lock(job):
        return _build(job)


@contextmanager
def _cache_lock(job: Job) -> Iterator[None]:
    """One build per cache from the seal check to the new seal (an agent and a person may
    build the same site): a deployer-only lock file, not the cache's own ``.lock``, which a
    build could swap for a link."""
    path = _seal_of(job).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(job: Job) -> Warnings:
    config = find_config(job, MKDOCS_FILES)
    python = venvs.python_for(job, "mkdocs")
    mkdocs2.check_interpreter(job, python, config)
    site = job.work / "site"  # what the build writes: untrusted until copied out
    site.mkdir(parents=True)
    env = {"SOURCE_DATE_EPOCH": str(job.epoch)}
    read_only, writable = [job.src], [site]
    discarded = ""
    if job.cache is None or job.state is None:
        command = [*entry_point(python, "mkdocs"), "build", "--clean"]
    else:
        lib = incremental_lib(job.state / LIB)  # a stable path: part of the cache key
        discarded = _check_cache(job.cache, _seal_of(job))
        command = [str(python), "-P", "-m", INCREMENTAL, "--cache", str(job.cache)]
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
    if job.cache is not None and job.state is not None:  # a finished build: what it left is reusable
        cacheseal.write_seal(job.cache, _seal_of(job))
        if discarded and found.path.startswith("full"):
            found.path = f"full: {discarded}"
    job.out.parent.mkdir(parents=True, exist_ok=True)
    untrusted.copy_out(job.work, ["site"], job.out, f"site '{job.site}' ({job.label})")
    return found


def _check_cache_place(job: Job) -> None:
    """The cache to bind writable must be one folder of ``mkdocs-cache/``: a site name such
    as ``..`` would otherwise bind the state folder (its seals, the builder's code) writable.
    Names are refused where they are read; this is the last line, at the bind."""
    assert job.cache is not None and job.state is not None
    if job.cache.parent != job.state / "mkdocs-cache" or job.cache.name in ("", ".", ".."):
        raise BuildError(
            f"site '{job.site}': its name cannot name a cache folder (it would be {job.cache}); "
            "rename the site"
        )


def _seal_of(job: Job) -> Path:
    assert job.cache is not None and job.state is not None
    return job.state / "seals" / "mkdocs-cache" / f"{job.cache.name}.json"


def _check_cache(cache: Path, seal: Path) -> str:
    """Empty the cache unless it is exactly as the last finished build left it; why, if not."""
    if cache.is_symlink() or not cache.is_dir() or not any(cache.iterdir()):
        cacheseal.discard(cache)
        return ""  # nothing to reuse: the builder says so itself
    broken = cacheseal.broken_seal(cache, seal)
    if broken is None:
        return ""
    cacheseal.discard(cache)
    return f"the cache was discarded: {broken}"


def incremental_lib(lib: Path) -> Path:
    """The incremental builder as a package of its own, importable by the site's interpreter.

    It runs in the site's environment (its MkDocs, its plugins), which has no sitedeploy
    installed; its modules import only each other, the standard library and MkDocs, so a copy
    under another package name works there, and sitedeploy's own site-packages never shadow
    the site's MkDocs.

    The folder is on every incremental build's ``PYTHONPATH``, so whatever it holds runs in
    every build (a ``sitecustomize.py`` would). It is the deployer's own (``<level>/mkdocs-lib``,
    outside every cache a build is bound writable) and bound read-only; before each build it
    must hold exactly the package's files with exactly their bytes, or it is made again.
    """
    wanted = {path.name: path.read_bytes() for path in sorted(SANDBOX_SIDE.glob("*.py"))}
    if not _lib_intact(lib, wanted):
        _remake_lib(lib, wanted)
    return lib


def _lib_intact(lib: Path, wanted: dict[str, bytes]) -> bool:
    try:
        if not _real_dir(lib) or os.listdir(lib) != [INCREMENTAL] or not _real_dir(lib / INCREMENTAL):
            return False
        package = lib / INCREMENTAL
        if sorted(os.listdir(package)) != sorted(wanted):
            return False
        return all(_holds(package / name, data) for name, data in wanted.items())
    except OSError:
        return False


def _real_dir(path: Path) -> bool:
    return stat.S_ISDIR(path.lstat().st_mode)


def _holds(path: Path, data: bytes) -> bool:
    return stat.S_ISREG(path.lstat().st_mode) and path.read_bytes() == data


def _remake_lib(lib: Path, wanted: dict[str, bytes]) -> None:
    """Build the folder beside ``lib`` and swap it in (a build reading it sees old or new)."""
    lib.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{lib.name}-", dir=lib.parent))
    (fresh / INCREMENTAL).mkdir()
    for name, data in wanted.items():
        (fresh / INCREMENTAL / name).write_bytes(data)
    old = Path(tempfile.mkdtemp(prefix=f".{lib.name}-old-", dir=lib.parent))
    if lib.is_symlink() or lib.exists():
        os.replace(lib, old / "lib")
    try:
        os.rename(fresh, lib)
    except OSError:  # another build made it at the same moment (the same bytes)
        shutil.rmtree(fresh, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


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
