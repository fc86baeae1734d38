"""ProperDocs (the drop-in fork of MkDocs 1.x), run as ``properdocs build`` runs.

ProperDocs reads ``properdocs.yml`` first and ``mkdocs.yml`` when told to (its own rule for
an explicit builder), and runs MkDocs 1 plugins and themes: its ``properdocs.replacement``
module redirects every ``mkdocs.*`` import to ``properdocs.*``. The plain build is the
``properdocs`` console script of the interpreter that builds the site (the site's own venv
when it has a requirements.txt), confined like MkDocs (:mod:`.mkdocs`).

ProperDocs keeps MkDocs' build API step for step (``commands.build``, ``structure.*``,
``config``), so sitedeploy's incremental MkDocs builder runs under it unchanged: a launcher
imports ``properdocs.replacement`` first, and the builder's ``mkdocs`` imports are
ProperDocs'. The differential tests of :mod:`.mkdocs_incremental` run under ProperDocs too
(``tests/test_properdocs.py``) and prove its output equals a plain ``properdocs build``. Its
cache is its own (``properdocs-cache/``): a cache an MkDocs build left is never read by
ProperDocs, nor the other way round.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import sandbox
from ..errors import BuildError
from ..sandbox import cacheseal, untrusted, venvs
from . import MKDOCS_FILES, PROPERDOCS_FILES, Job, Warnings, find_config, run_tool
from .mkdocs import INCREMENTAL, LIB, entry_point, incremental_lib, warnings
from .mkdocs import _check_cache as check_cache

CACHES = "properdocs-cache"
"""The trust level's folder of ProperDocs' incremental caches, one per site."""
TOOL = "properdocs"
# The incremental builder, with ProperDocs standing in for every ``mkdocs`` import; its
# modules log to ``properdocs.*``, which then reaches the builder's ``mkdocs`` handlers (the
# output and the ``--strict`` counter), as ``properdocs build`` joins the two loggers.
_LAUNCH = (
    "import logging, runpy, properdocs.replacement; "
    "logging.getLogger('properdocs').parent = logging.getLogger('mkdocs'); "
    f"runpy.run_module('{INCREMENTAL}', run_name='__main__', alter_sys=True)"
)


def build(job: Job) -> Warnings:
    if job.cache is None or job.state is None:
        return _build(job)
    _check_cache_place(job)
    with _cache_lock(job):
        return _build(job)


def _build(job: Job) -> Warnings:
    config = find_config(job, PROPERDOCS_FILES + MKDOCS_FILES)
    python = venvs.python_for(job, TOOL)
    site = job.work / "site"  # what the build writes: untrusted until copied out
    site.mkdir(parents=True)
    env = {"SOURCE_DATE_EPOCH": str(job.epoch), "DISABLE_MKDOCS_2_WARNING": "true"}
    read_only, writable = [job.src], [site]
    discarded = ""
    if job.cache is None or job.state is None:
        command = [*entry_point(python, TOOL), "build", "--clean"]
    else:
        lib = incremental_lib(job.state / LIB)  # the MkDocs builder's own, checked copy
        discarded = check_cache(job.cache, _seal_of(job))
        command = [str(python), "-P", "-c", _LAUNCH, "--cache", str(job.cache)]
        env["PYTHONPATH"] = str(lib)
        read_only, writable = [*read_only, lib], [*writable, job.cache]
    command += ["--config-file", str(config), "--site-dir", str(site), *(["--strict"] if job.strict else [])]
    step = sandbox.Step(
        command, job.work / "run", cwd=job.src, read_only=read_only, writable=writable, env=env
    )
    found = warnings(run_tool(job, "properdocs build", step, python))
    if job.cache is not None and job.state is not None:
        cacheseal.write_seal(job.cache, _seal_of(job))
        if discarded and found.path.startswith("full"):
            found.path = f"full: {discarded}"
    job.out.parent.mkdir(parents=True, exist_ok=True)
    untrusted.copy_out(job.work, ["site"], job.out, f"site '{job.site}' ({job.label})")
    return found


def _check_cache_place(job: Job) -> None:
    """The cache bound writable must be one folder of ``properdocs-cache/`` (see
    :func:`.mkdocs._check_cache_place`: a site named ``..`` would bind the state folder)."""
    assert job.cache is not None and job.state is not None
    if job.cache.parent != job.state / CACHES or job.cache.name in ("", ".", ".."):
        raise BuildError(
            f"site '{job.site}': its name cannot name a cache folder (it would be {job.cache}); "
            "rename the site"
        )


@contextmanager
def _cache_lock(job: Job) -> Iterator[None]:
    """One build per cache from the seal check to the new seal (a deployer-only lock file)."""
    path = _seal_of(job).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _seal_of(job: Job) -> Path:
    assert job.cache is not None and job.state is not None
    return job.state / "seals" / CACHES / f"{job.cache.name}.json"
