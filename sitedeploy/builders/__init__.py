"""Builders: turn a site's checked-out folder into its output folder.

``builder = "mkdocs" | "properdocs" | "zensical" | "static"`` per site; when the key is absent
the folder decides (``zensical.toml`` -> Zensical, ``properdocs.yml`` -> ProperDocs,
``mkdocs.yml`` or ``mkdocs.toml`` -> MkDocs, anything else is copied).
MkDocs and Zensical run the content repo's code (hooks, plugins, Markdown extensions), so
they run through :mod:`sitedeploy.sandbox`, each exactly as a user's ``mkdocs build`` or
``zensical build`` would: the tool's console entry point, nothing of the site folder on
``sys.path`` unless the tool puts it there itself.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import sandbox
from ..errors import BuildError
from ..progress import SILENT, Progress
from ..sandbox import Mode, untrusted
from ..sandbox.hints import namespace_hint

KINDS = ("mkdocs", "properdocs", "zensical", "static")
MKDOCS_FILES = ("mkdocs.yml", "mkdocs.yaml")
MKDOCS2_FILES = ("mkdocs.toml",)
"""MkDocs 2's config: recognised, refused with what to do (:mod:`.mkdocs2`)."""
PROPERDOCS_FILES = ("properdocs.yml", "properdocs.yaml")
ZENSICAL_FILES = ("zensical.toml",)
SHOWN_WARNINGS = 10
"""Warning lines kept for the deploy output; the count covers all of them."""
LOG_TAIL_LINES = 30
LOG_TAIL_BYTES = 64 * 1024
LOG_READ_LINES = 1_000_000
"""Lines of a log read for warnings and the first error; a build printing more is not read on."""
LOG_LINE_BYTES = 64 * 1024
TIMEOUT = 3600.0
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def detect(names: Iterable[str]) -> str:
    """The builder a folder with these top-level ``names`` gets when ``builder`` is not set."""
    present = set(names)
    if present.intersection(ZENSICAL_FILES):
        return "zensical"
    if present.intersection(PROPERDOCS_FILES):
        return "properdocs"
    if present.intersection(MKDOCS_FILES + MKDOCS2_FILES):
        return "mkdocs"
    return "static"


@dataclass(frozen=True)
class Job:
    """One site to build: where its input is, where its output goes, how to confine it."""

    site: str
    label: str
    """The site's folder in the repo (``sites/docs``), for messages."""
    src: Path
    """The checked-out input; the builder only reads it."""
    out: Path
    """The output folder to create."""
    work: Path
    """A private, writable folder for this build only (HOME, /tmp, logs, copies)."""
    epoch: int
    strict: bool
    sandbox: Mode
    venvs: Path
    """This site's own virtual environments (requirements.txt), never shared with another site."""
    cache: Path | None = None
    """The site's incremental-build cache (MkDocs); None builds in full without one."""
    progress: Progress = field(default=SILENT, compare=False)
    """Where a long step (a first virtual environment) says what it is doing."""
    state: Path | None = None
    """The trust level's state folder, of which a build is bound only named subfolders: the
    deployer keeps its own files there (the incremental builder's code, caches' seals)."""


@dataclass
class Warnings:
    """The builder's warnings: how many, and the first few lines for the deploy output."""

    count: int = 0
    first: list[str] = field(default_factory=list)
    path: str = ""
    """Which way the build went, when the builder says (``incremental: 1 page, search index``)."""

    def add(self, line: str) -> None:
        self.count += 1
        if len(self.first) < SHOWN_WARNINGS:
            self.first.append(line[:500])


def build(kind: str, job: Job) -> Warnings:
    """Build ``job`` with the builder ``kind``; raises BuildError with the tool's log tail."""
    return _builders()[kind](job)


def _builders() -> dict[str, Callable[[Job], Warnings]]:
    from . import mkdocs, properdocs, static, zensical  # each imports what it needs only when used

    return {
        "mkdocs": mkdocs.build,
        "properdocs": properdocs.build,
        "zensical": zensical.build,
        "static": static.build,
    }


def find_config(job: Job, names: tuple[str, ...]) -> Path:
    for name in names:
        if (job.src / name).is_file():
            return job.src / name
    raise BuildError(
        f"site '{job.site}': {job.label}/ has no {' or '.join(names)}; add one, or set builder = \"static\""
    )


def run_tool(job: Job, tool: str, step: sandbox.Step, python: Path) -> Path:
    """Run one builder step confined; its log on success, a BuildError naming the site otherwise."""
    try:
        code, log = sandbox.run(step, job.sandbox, python, TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BuildError(f"site '{job.site}' ({job.label}): {tool} took over an hour; stopped") from None
    if code != 0:
        raise failure(job, tool, log)
    return log


def log_lines(log: Path) -> Iterable[str]:
    """The tool's output, line by line, colours stripped; read from disk, never all at once,
    and at most :data:`LOG_READ_BYTES` of it. The log is the deployer's own file (see
    :func:`sitedeploy.sandbox.log_path`); it is still opened without following a link and
    read only when it is a regular file."""
    fd = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        for _ in range(LOG_READ_LINES):
            raw = f.readline(LOG_LINE_BYTES)  # bounded: a line without an end is read in pieces
            if not raw:
                return
            yield _clean(raw)


def _clean(raw: bytes) -> str:
    return _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()


def failure(job: Job, tool: str, log: Path) -> BuildError:
    """A BuildError naming the site and the line a user needs (the first error, else the first
    warning, else the last line), with the log's tail (its last bytes, however long it is)."""
    firsts: dict[str, str] = {}
    for line in log_lines(log):
        level = _level(line)
        if level:
            firsts.setdefault(level, line.strip())
    tail = [_clean(raw) for raw in untrusted.read_tail(log, LOG_TAIL_BYTES).splitlines()[-LOG_TAIL_LINES:]]
    reason = firsts.get("error") or firsts.get("warning") or (tail[-1].strip() if tail else "no output")
    reason += namespace_hint(tail)  # bwrap blames the kernel; name the usual culprits too
    return BuildError(f"site '{job.site}' ({job.label}): {tool} failed: {reason}", log_tail="\n".join(tail))


def _level(line: str) -> str | None:
    stripped = line.lstrip()
    if stripped.startswith(("ERROR", "Error", "error:")) or " ERROR " in line:
        return "error"
    if stripped.startswith(("WARNING", "Warning")):
        return "warning"
    return None
