"""MkDocs, run as ``mkdocs build`` runs for its users.

The command is the ``mkdocs`` console script of the interpreter that builds the site (the
site's own venv when it has a requirements.txt), so ``sys.path[0]`` is that script's folder,
not the site folder: a folder named ``mkdocs/`` in the site cannot shadow the installed
package (``python -m mkdocs`` with the site as working directory let it). Where no console
script exists, the entry point is called with ``python -P``, which also keeps the working
directory off ``sys.path``. MkDocs itself puts the config's folder on ``sys.path`` while it
loads hooks; that is the tool's own behaviour and kept.
"""

from __future__ import annotations

from pathlib import Path

from .. import sandbox, venvs
from . import MKDOCS_FILES, Job, Warnings, find_config, log_lines, run_tool

# Calls the console-script entry point the way the generated script does.
_LAUNCH = (
    "import sys; from importlib.metadata import entry_points; "
    "(ep,) = entry_points(group='console_scripts', name=sys.argv[1]); "
    "sys.argv = sys.argv[1:]; sys.exit(ep.load()())"
)


def build(job: Job) -> Warnings:
    config = find_config(job, MKDOCS_FILES)
    python = venvs.python_for(job, "mkdocs")
    command = [*entry_point(python, "mkdocs"), "build", "--clean", "--config-file", str(config)]
    command += ["--site-dir", str(job.out), *(["--strict"] if job.strict else [])]
    job.out.mkdir(parents=True, exist_ok=True)
    step = sandbox.Step(
        command, job.work / "run", cwd=job.src, read_only=[job.src], writable=[job.out],
        env={"SOURCE_DATE_EPOCH": str(job.epoch)},
    )  # fmt: skip
    return warnings(run_tool(job, "mkdocs build", step, python))


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
    return found
