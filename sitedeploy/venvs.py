"""Virtual environments for sites that pin their build requirements.

A site with a ``requirements.txt`` beside its config (a theme, plugins) is built with a
Python from a virtual environment made from exactly that file, cached by the file's hash
and the builder, so sites with different plugins coexist and sitedeploy's own environment
stays clean. Each site has its own venvs (``<state>/venvs/<site>/``): a package one site
installs (a ``.pth`` file runs at every interpreter start) never runs in another's build.

``pip install`` runs whatever the named packages ship, so it runs in the sandbox like the
build itself, with network (it has to download) but without the deployer's environment:
pip's own ``PIP_*`` settings reach it through a config file in its private work folder,
not through the command line, where the host's process list would show them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from . import cacheseal, sandbox
from .errors import BuildError
from .sandbox_hints import namespace_hint

if TYPE_CHECKING:
    from .builders import Job

COMPLETE = ".sitedeploy-complete"
PIP_TIMEOUT = 1800.0


def python_for(job: Job, tool: str) -> Path:
    """The interpreter to build with: sitedeploy's own, or this site's venv for its requirements."""
    requirements = job.src / "requirements.txt"
    if not requirements.is_file():
        return _own_python(job, tool)
    digest = hashlib.sha256(tool.encode() + b"\0" + requirements.read_bytes()).hexdigest()
    venv = job.venvs / f"{tool}-{digest[:16]}"
    if not (venv / COMPLETE).exists() or _changed_since_made(job, venv):
        job.progress.step(f"site '{job.site}': installing {job.label}/requirements.txt in a new venv")
        _create(venv, job, tool)
        _seal(job, venv)
    return venv / "bin" / "python"


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


def _own_python(job: Job, tool: str) -> Path:
    if importlib.util.find_spec(tool) is None:
        raise BuildError(
            f"site '{job.site}': {tool} is not installed beside sitedeploy; run 'pip install {tool}' "
            f"in sitedeploy's environment, or add a requirements.txt naming it to {job.label}/"
        )
    return Path(sys.executable)


def _create(venv: Path, job: Job, tool: str) -> None:
    # A venv's scripts embed its own path, so it cannot be built elsewhere and renamed; a
    # marker file written last tells a finished venv from one an interrupted run left behind.
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".pip-", dir=venv.parent))
    try:
        _make_venv(venv, job)
        _install(venv, job, tool, work)
    except BuildError:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (venv / COMPLETE).touch()


def _make_venv(venv: Path, job: Job) -> None:
    # sitedeploy's own interpreter and the standard library only: nothing of the site runs here.
    proc = subprocess.run(  # nosec B603: argv list, no shell, no repo input
        [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BuildError(f"site '{job.site}': cannot create a venv in {venv}: {proc.stderr.strip()[-300:]}")


def _install(venv: Path, job: Job, tool: str, work: Path) -> None:
    python = venv / "bin" / "python"
    cache = job.venvs / ".pip-cache"
    cache.mkdir(parents=True, exist_ok=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["--cache-dir", str(cache)]
    env = {"PIP_CONFIG_FILE": str(_pip_config(work))}
    _confined(job, [*pip, "-r", str(job.src / "requirements.txt")], python, work, venv, cache, env)
    if not _imports(job, python, tool, work):
        _confined(job, [*pip, tool], python, work, venv, cache, env)


def _imports(job: Job, python: Path, tool: str, work: Path) -> bool:
    """Whether the venv can import ``tool``; runs the venv's Python, so confined, offline."""
    step = sandbox.Step([str(python), "-I", "-c", f"import {tool}"], work / "probe", cwd=work / "probe")
    try:
        code, _ = sandbox.run(step, job.sandbox, python, 300)
    except subprocess.TimeoutExpired:
        return False
    return code == 0


def _confined(
    job: Job, command: list[str], python: Path, work: Path, venv: Path, cache: Path, env: dict[str, str]
) -> None:
    step = sandbox.Step(
        command, work / "pip", cwd=job.src, read_only=[job.src], writable=[venv, cache, work],
        network=True, env=env,
    )  # fmt: skip
    try:
        code, log = sandbox.run(step, job.sandbox, python, PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BuildError(f"site '{job.site}': pip install took over {PIP_TIMEOUT:.0f} s; stopped") from None
    if code != 0:
        tail = log.read_bytes()[-20_000:].decode("utf-8", "replace").strip().splitlines()[-20:]
        raise BuildError(
            f"site '{job.site}' ({job.label}/requirements.txt): installing the site's build requirements "
            f"failed: {tail[-1] if tail else 'no output'}{namespace_hint(tail)}",
            log_tail="\n".join(tail),
        )


def _pip_config(work: Path) -> Path:
    """The operator's ``PIP_*`` settings (index URL, certificates...) as a pip config file."""
    lines = ["[global]"]
    for key, value in sorted(os.environ.items()):
        if key.startswith("PIP_") and key != "PIP_CONFIG_FILE":
            lines.append(f"{key[4:].lower().replace('_', '-')} = {value}")
    path = work / "pip.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
