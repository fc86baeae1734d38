"""Virtual environments for sites that pin their build requirements.

A site with a ``requirements.txt`` beside its mkdocs.yml (a theme, plugins) is built with a
Python from a virtual environment made from exactly that file, cached by the file's hash, so
sites with different plugins coexist and sitedeploy's own environment stays clean.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import BuildError

COMPLETE = ".sitedeploy-complete"


def python_for(requirements: Path, venv_root: Path) -> Path:
    """The interpreter to build with: sitedeploy's own, or a cached venv for ``requirements``."""
    if not requirements.is_file():
        return Path(sys.executable)
    venv = venv_root / hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    if not (venv / COMPLETE).exists():
        _create(venv, requirements)
    return venv / "bin" / "python"


def _create(venv: Path, requirements: Path) -> None:
    # A venv's scripts embed its own path, so it cannot be built elsewhere and renamed; a
    # marker file written last tells a finished venv from one an interrupted run left behind.
    shutil.rmtree(venv, ignore_errors=True)
    try:
        _run([sys.executable, "-m", "venv", str(venv)], requirements)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run([*pip, "-r", str(requirements)], requirements)
        if not _imports_mkdocs(venv):
            _run([*pip, "mkdocs"], requirements)
    except BuildError:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    (venv / COMPLETE).touch()


def _imports_mkdocs(venv: Path) -> bool:
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import mkdocs"], capture_output=True)
    return probe.returncode == 0


def _run(cmd: list[str], requirements: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
        raise BuildError(
            f"{requirements.name}: installing the site's build requirements failed: "
            f"{tail[-1] if tail else 'no output'}",
            log_tail="\n".join(tail),
        )
