"""Virtual environments for sites that pin their build requirements.

A site with a ``requirements.txt`` beside its config (a theme, plugins) is built with a
Python from a venv made from exactly that file, keyed by its bytes, the files of the site it
names and the builder. Each site has its own venvs (``<state>/venvs/<site>/``): a package
one site installs (a ``.pth`` file runs at every interpreter start) never runs in another's.

``pip install`` runs whatever the named packages ship, so it is done in two parts:

1. **download, on the host, running no repo code**: ``pip download --only-binary :all:``
   with the operator's own pip settings (``PIP_*``, pip.conf: a private index and its token)
   and network. Wheels only: pip builds an sdist to learn its metadata, which would run its
   ``setup.py`` here, so an index package without a wheel is refused, and a source archive
   or folder committed in the site folder (``./vendor/pkg-1.0.tar.gz``) is left to part 2.
   Refused: option lines (``-r``, ``-e``, ``--index-url``...), paths that leave the site
   folder, URLs other than ``https://`` wheels (the operator decides where packages come
   from), ``${VAR}`` (pip fills in the operator's environment: a key in a URL would leave),
   and any other line that does not name a package (pip reads ``file:..%2Fa%2Ffolder`` as a
   folder and runs its ``setup.py`` here to learn its metadata, wheels only or not). The
   commit's own wheels are downloaded first without dependencies and refused when their
   metadata requires a package by URL or path (``x @ file:///folder``), for the same reason.
2. **install, in the sandbox, offline**: ``pip install --no-index --find-links <wheels>``
   with no network and none of the operator's ``PIP_*``, proxy or credential variables
   (``PIP_CONFIG_FILE`` is ``/dev/null``). A committed sdist is built here, offline, from
   the downloaded wheels: its build requirements and dependencies must be named too.

Every sandboxed step gets a new work folder (``mkdtemp``), its log beside it where the step
cannot write; the venv's completion marker is beside the venv (``<venv>.complete``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import BuildError
from . import bwrap, cacheseal, untrusted
from .hints import namespace_hint

if TYPE_CHECKING:
    from ..builders import Job

COMPLETE = ".complete"
"""Suffix of the marker beside a finished venv (``mkdocs-0123abcd.complete``)."""
PIP_TIMEOUT = 1800.0
_ARCHIVES = (".whl", ".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz")
_PACKAGE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\s*(?:$|[\[(=!<>~;])")
"""A requirement by name (PEP 508), followed by extras, a version, a marker or nothing."""
_NAMED = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\s*(?:\[[A-Za-z0-9._,\s-]*\])?")
"""What may stand before ``@ https://…`` in a requirement: a name, maybe extras."""
_BUILD_TOOLS = ("setuptools", "wheel")
"""Downloaded too when the site commits a source archive: pip builds it with them, offline."""


def python_for(job: Job, tool: str) -> Path:
    """The interpreter to build with: sitedeploy's own, or this site's venv for its requirements."""
    requirements = job.src / "requirements.txt"
    if not requirements.is_file():
        return _own_python(job, tool)
    if requirements.stat().st_size > 1024**2:  # read whole below: git stores it compressed
        raise BuildError(f"site '{job.site}': {job.label}/requirements.txt is over 1 MB; shorten it")
    digest = _venv_key(job, tool, requirements.read_bytes())
    venv = job.venvs / f"{tool}-{digest[:16]}"
    if not (_is_regular(marker(venv)) and untrusted.is_real_dir(venv)) or _changed_since_made(job, venv):
        job.progress.step(f"site '{job.site}': installing {job.label}/requirements.txt in a new venv")
        _create(venv, job, tool)
        _seal(job, venv)
    return venv / "bin" / "python"


def _venv_key(job: Job, tool: str, requirements: bytes) -> str:
    """The venv's name: the tool, requirements.txt, and the bytes of every file of the site
    it names (``./plugin-1.0-py3-none-any.whl``): a wheel replaced under the same name (a
    reverted plugin, another pull request's) gets a venv of its own, never the old one."""
    key = hashlib.sha256(tool.encode() + b"\0" + requirements)
    for rel in _named_files(requirements.decode("utf-8", "replace")):
        path = job.src / rel
        key.update(b"\0" + rel.encode() + b"\0")
        if ".." not in PurePosixPath(rel).parts and path.is_file():  # else refused when installed
            with path.open("rb") as f:
                key.update(hashlib.file_digest(f, "sha256").digest())
    return key.hexdigest()


def _named_files(text: str) -> list[str]:
    """The paths requirements.txt names (the lines :func:`host_requirements` takes as files)."""
    found = []
    for _, spec in _logical_lines(text):
        first = spec.split()[0]
        if "://" in spec or first.startswith(("-", "~", "/")):
            continue
        if "/" in first or first.startswith(".") or first.lower().endswith(_ARCHIVES):
            found.append(PurePosixPath(first).as_posix())
    return sorted(found)


def _seal(job: Job, venv: Path) -> None:
    """Record the finished venv where no build can write (:mod:`.cacheseal`)."""
    if job.state is not None:
        cacheseal.write_seal(venv, job.state / "seals" / "venvs" / job.site / f"{venv.name}.json")


def _changed_since_made(job: Job, venv: Path) -> bool:
    """Whether anything in the venv changed since it was made: then it is made again."""
    if job.state is None:
        return False
    seal = job.state / "seals" / "venvs" / job.site / f"{venv.name}.json"
    return cacheseal.broken_seal(venv, seal) is not None


def marker(venv: Path) -> Path:
    """The file that says ``venv`` is complete: beside it, not in it (pip's code writes in it)."""
    return venv.with_name(venv.name + COMPLETE)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _own_python(job: Job, tool: str) -> Path:
    if importlib.util.find_spec(tool) is None:
        raise BuildError(
            f"site '{job.site}': {tool} is not installed beside sitedeploy; run 'pip install {tool}' "
            f"in sitedeploy's environment, or add a requirements.txt naming it to {job.label}/"
        )
    return Path(sys.executable)


def _create(venv: Path, job: Job, tool: str) -> None:
    # A venv's scripts embed its own path, so it cannot be built elsewhere and renamed; the
    # marker written last tells a finished venv from one an interrupted run left behind.
    wanted = host_requirements(job)  # refused lines stop here, before anything is made
    marker(venv).unlink(missing_ok=True)
    shutil.rmtree(venv, ignore_errors=True)
    if os.path.lexists(venv):
        os.unlink(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    downloads = Path(tempfile.mkdtemp(prefix=".download-", dir=venv.parent))
    try:
        _make_venv(venv, job)
        wheels = _download(venv, job, tool, downloads, wanted)
        _install(venv, job, tool, wheels)
    except BuildError:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(downloads, ignore_errors=True)
    fd = os.open(marker(venv), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    os.close(fd)


def _make_venv(venv: Path, job: Job) -> None:
    # sitedeploy's own interpreter and the standard library only: nothing of the site runs here.
    proc = subprocess.run(  # nosec B603: argv list, no shell, no repo input
        [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BuildError(f"site '{job.site}': cannot create a venv in {venv}: {proc.stderr.strip()[-300:]}")


# ---------------------------------------------------------------- part 1: download, on the host


def _download(venv: Path, job: Job, tool: str, downloads: Path, wanted: tuple[list[str], list[str]]) -> Path:
    """Wheels for the requirements (and ``tool``) in ``downloads/wheels``; runs no repo code.

    The fresh venv's pip runs here, before anything is installed in it (no ``.pth`` yet),
    isolated (``-I``), with the operator's environment: their index, token and proxy. First
    the commit's own lines without their dependencies, whose metadata is checked (a wheel
    may require ``x @ file:///a/folder``, which pip would prepare by running its
    ``setup.py`` here, wheels only or not); then everything, dependencies by name only.
    """
    lines, sources = wanted
    listed = downloads / "requirements.txt"
    listed.write_text("".join(f"{line}\n" for line in lines))
    wheels = downloads / "wheels"
    wheels.mkdir()
    command = [str(venv / "bin" / "python"), "-I", "-m", "pip", "download", "--quiet"]
    command += ["--disable-pip-version-check", "--only-binary", ":all:", "--dest", str(wheels)]
    if lines:
        _pip_download(job, [*command, "--no-deps", "-r", str(listed)], downloads)
        _refuse_direct_dependencies(job, wheels)
    _pip_download(job, [*command, "-r", str(listed), tool, *(_BUILD_TOOLS if sources else ())], downloads)
    return wheels


def _pip_download(job: Job, command: list[str], downloads: Path) -> None:
    try:
        proc = subprocess.run(  # nosec B603: argv list, no shell; --only-binary: no repo code runs
            command, cwd=downloads, stdin=subprocess.DEVNULL, capture_output=True, timeout=PIP_TIMEOUT,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BuildError(
            f"site '{job.site}': downloading requirements took over {PIP_TIMEOUT:.0f} s"
        ) from None
    if proc.returncode != 0:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BuildError(
            f"site '{job.site}' ({job.label}/requirements.txt): downloading the build requirements "
            f"failed: {said[-1] if said else 'no output'} (sitedeploy downloads wheels only, since "
            "building an sdist runs its code: pin a version that has a wheel, or commit the sdist "
            "in the site folder and name it as ./path/to/it.tar.gz)",
            log_tail="\n".join(said[-20:]),
        )


def _refuse_direct_dependencies(job: Job, wheels: Path) -> None:
    """Refuse a downloaded wheel that requires a package by URL or path (``x @ file:…``)."""
    for wheel in sorted(wheels.glob("*.whl")):
        for requirement in _requires_dist(wheel):
            if "@" in requirement.split(";", 1)[0]:
                raise BuildError(
                    f"site '{job.site}' ({job.label}/requirements.txt): {wheel.name} requires "
                    f"{requirement[:200]!r}, a package by URL or path, which would be fetched or "
                    "built on the deploy host; use a wheel that requires packages by name"
                )


def _requires_dist(wheel: Path) -> list[str]:
    """Every ``Requires-Dist`` of every top-level ``.dist-info/METADATA`` in ``wheel``; a
    METADATA over 1 MB counts as one that cannot be checked (it may be a zip bomb)."""
    found: list[str] = []
    try:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if info.filename.count("/") != 1 or not info.filename.endswith(".dist-info/METADATA"):
                    continue
                if info.file_size > 1024**2:
                    return ["@ a METADATA over 1 MB"]
                text = archive.read(info).decode("utf-8", "replace")
                # As pip reads it: an e-mail header block, where a line that starts with a
                # space continues the one before (``Requires-Dist: x`` + `` @ file:///…``).
                found += [str(v) for v in HeaderParser().parsestr(text).get_all("Requires-Dist") or []]
    except (OSError, zipfile.BadZipFile):
        return []  # not a wheel: pip cannot install it either, and says so
    return found


def host_requirements(job: Job) -> tuple[list[str], list[str]]:
    """The lines of the site's requirements.txt the host may download, and the committed
    source archives/folders left to the offline install; refuses what could make the host
    read outside the site folder, run code, or fetch from where the commit says."""
    path = job.src / "requirements.txt"
    lines: list[str] = []
    sources: list[str] = []
    for number, spec in _logical_lines(path.read_text(encoding="utf-8", errors="replace")):
        where = f"site '{job.site}' ({job.label}/requirements.txt line {number})"
        first = spec.split()[0]
        if "${" in spec:  # pip would put the deployer's variable (a key, a token) there
            raise BuildError(
                f"{where}: '${{...}}' is not allowed (pip would fill in the deployer's environment "
                "variables, its credentials among them); write the value itself"
            )
        if first.startswith("-"):
            raise BuildError(
                f"{where}: option {first!r} is not allowed (pip options come from the deployer's "
                "own settings, not the commit); name packages, versions or files in the site folder"
            )
        if "://" in spec or spec.startswith(("git+", "hg+", "svn+", "bzr+")):
            lines.append(_checked_url(spec, where))
        elif "/" in first or first.startswith((".", "~")) or first.lower().endswith(_ARCHIVES):
            local = _inside_site(first, job, where)
            if local.endswith(".whl"):
                lines.append(" ".join([str(job.src / local), *spec.split()[1:]]))
            else:
                sources.append(local)  # built by pip in the sandbox, offline
        else:
            lines.append(_checked_name(spec, where))
    return lines, sources


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with comments dropped and ``\\`` continuations joined."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = "" if raw.lstrip().startswith("#") else raw.split(" #", 1)[0].split("\t#", 1)[0]
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        spec = (pending + line).strip()
        pending = ""
        if spec:
            yield start, spec


def _checked_url(spec: str, where: str) -> str:
    """``spec`` when it is ``https://…/x.whl`` or ``name @ https://…/x.whl`` (a marker after).

    What stands before an ``@`` must be a package name: pip reads
    ``file:///some/folder#@https://x/y.whl`` as the folder and runs its ``setup.py`` here.
    """
    name, at, rest = spec.partition("@")
    url = (rest if at else spec).split(";", 1)[0].strip()
    named = _NAMED.fullmatch(name.strip()) is not None if at else True
    if not (named and url.startswith("https://") and url.split("#", 1)[0].split("?", 1)[0].endswith(".whl")):
        raise BuildError(
            f"{where}: {url!r}: only https:// links to wheels (.whl) are allowed (an sdist or a "
            "repository would be built, running its code, to learn what it is); commit it in the "
            "site folder instead"
        )
    return spec


def _checked_name(spec: str, where: str) -> str:
    """``spec`` when it names a package (``mkdocs-material[imaging]>=9 ; python_version…``).

    Anything else would be pip's to interpret: ``file:..%2F..%2Fsome%2Ffolder`` has no ``/``
    for the checks above to see, and pip prepares a local folder's metadata by running its
    ``setup.py`` even with ``--only-binary :all:`` — on the host, with network and secrets.
    """
    if _PACKAGE.match(spec) is None:
        raise BuildError(
            f"{where}: {spec.split()[0][:100]!r} is not a package name; name a package (with a "
            "version), an https:// link to a wheel, or a file in the site folder as ./path"
        )
    return spec


def _inside_site(name: str, job: Job, where: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("~") or ".." in path.parts:
        raise BuildError(f"{where}: {name!r} is outside the site folder; commit the file in {job.label}/")
    return path.as_posix()


# ---------------------------------------------------------------- part 2: install, sandboxed


def _install(venv: Path, job: Job, tool: str, wheels: Path) -> None:
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir"]
    pip += ["--no-index", "--find-links", str(wheels)]
    _confined(job, [*pip, "-r", str(job.src / "requirements.txt")], python, venv, wheels)
    if not _imports(job, python, tool, venv.parent):
        _confined(job, [*pip, tool], python, venv, wheels)


@contextmanager
def _step_work(parent: Path) -> Iterator[Path]:
    """A new work folder for one sandboxed step, in a new folder of the deployer's (the log
    goes beside the work folder there); both removed afterwards."""
    outer = Path(tempfile.mkdtemp(prefix=".step-", dir=parent))
    try:
        yield outer / "work"
    finally:
        shutil.rmtree(outer, ignore_errors=True)


def _imports(job: Job, python: Path, tool: str, parent: Path) -> bool:
    """Whether the venv can import ``tool``; runs the venv's Python, so confined, offline."""
    with _step_work(parent) as work:
        step = bwrap.Step([str(python), "-I", "-c", f"import {tool}"], work, cwd=job.src, read_only=[job.src])
        try:
            code, _ = bwrap.run(step, job.sandbox, python, 300)
        except subprocess.TimeoutExpired:
            return False
    return code == 0


def _confined(job: Job, command: list[str], python: Path, venv: Path, wheels: Path) -> None:
    """One offline ``pip install`` in the sandbox: it may write the venv and its own folder."""
    env = {"PIP_CONFIG_FILE": os.devnull}  # no pip.conf of the operator's, and no PIP_* at all
    with _step_work(venv.parent) as work:
        step = bwrap.Step(
            command, work, cwd=job.src, read_only=[job.src, wheels], writable=[venv], env=env
        )  # fmt: skip
        try:
            code, log = bwrap.run(step, job.sandbox, python, PIP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BuildError(
                f"site '{job.site}': pip install took over {PIP_TIMEOUT:.0f} s; stopped"
            ) from None
        if code != 0:
            tail = untrusted.read_tail(log, 20_000).decode("utf-8", "replace").strip().splitlines()[-20:]
            raise BuildError(
                f"site '{job.site}' ({job.label}/requirements.txt): installing the site's build "
                f"requirements failed: {tail[-1] if tail else 'no output'}{namespace_hint(tail)}",
                log_tail="\n".join(tail),
            )
