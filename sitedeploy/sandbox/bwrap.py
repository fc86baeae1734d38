"""Run the code a content repo controls inside a bubblewrap sandbox.

A builder runs the repo's hooks and plugins, ``pip install -r requirements.txt`` runs
whatever the named packages ship (``setup.py``, ``.pth`` files), and the image worker decodes
the repo's images (a decoder bug is code execution). sitedeploy itself holds production
credentials, so each of those steps runs under ``bwrap`` with:

- new PID, IPC, UTS (and, where the kernel allows, user and cgroup) namespaces, a fresh
  ``/proc``: the parent's ``/proc/<pid>/environ`` does not exist in there;
- no network (requirements are downloaded beforehand, outside, running no repo code:
  :mod:`.venvs`);
- an empty environment plus an allow-list (``--clearenv`` / ``--setenv``), a private HOME
  and ``/tmp`` inside the step's own work folder;
- a file system made of read-only binds only: the system (``/usr``, the ``/lib*`` dirs, a few
  named pieces of ``/etc``), the Python installation and venv, the site's checked-out input;
  the writable binds are the step's own work folder (output, HOME, /tmp) and what the step
  exists to write (for the image worker, the variant cache). Nothing else of the state
  folder (the mirror, other sites' builds), no ``~/.ssh``, ``~/.aws``, agent sockets or ``/run``;
- no capabilities, ``--new-session`` (no TIOCSTI into the operator's terminal) and
  ``--die-with-parent``.

Values given with ``--setenv`` are visible in the host's process list, so only non-secret
ones go there (locale, paths, ``SOURCE_DATE_EPOCH``); the operator's pip settings never
reach a step (see :mod:`.venvs`).

What a step writes is read back only through :mod:`.untrusted`. Each step's work folder is
new, made by the deployer in a folder of its own, and its log is beside it there
(:func:`log_path`), out of the step's reach; every path is checked with ``lstat`` right
before it is bound (a link is refused: bwrap would bind what it names).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import BuildError, ConfigError

Mode = Literal["bwrap", "off"]
OFF_WARNING = (
    '[build] sandbox = "off": builds, pip and image decoding run unconfined and can read everything '
    "this user can (credentials, keys, other sites); turn it back on unless this machine builds only "
    "trusted content"
)
# Passed through to a build: what a tool needs to run, and nothing that grants access.
ENV_ALLOW = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
_SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
TMPFS_BYTES = 256 * 1024**2
"""Size of the sandbox's /tmp (memory); TMPDIR, on disk, is where tools put big files."""
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What a build needs from /etc: the dynamic loader's cache, time zone, MIME types, the
# alternatives symlinks /usr/bin points into, CA certificates. Not /etc/ssl/private, not
# /etc/ssh, not /etc/shadow, not /etc/passwd.
_ETC_BUILD = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/alternatives",
    "/etc/fonts",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates",
    "/etc/pki/tls/certs",
)
# Added for the one step that has network: name resolution and the system's pip settings.
_ETC_NETWORK = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/pip.conf",
    "/etc/xdg/pip",
)


def bwrap_argv(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    read_only: Iterable[Path],
    writable: Iterable[Path],
    cwd: Path,
    network: bool = False,
    bwrap: str = "bwrap",
) -> list[str]:
    """The argv that runs ``command`` confined; every path is bound at its own path.

    ``/tmp`` is a small private tmpfs; ``TMPDIR`` (see :func:`allowed_env`) points into the
    step's writable work folder on disk. The result is a list for ``subprocess.run`` (never a
    shell string): nothing in it is interpreted by a shell.
    """
    argv = [bwrap, "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    argv += ["--unshare-user-try", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    argv += [] if network else ["--unshare-net"]
    argv += ["--hostname", "sitedeploy-build", *_system_binds(network)]
    # /tmp first: binds below /tmp (a state folder there) are then mounted on top of it.
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]  # nosec B108
    for path in _dedupe(read_only):
        argv += ["--ro-bind", str(path), str(path)]
    for path in _dedupe(writable):
        argv += ["--bind", str(path), str(path)]
    # The root itself (a tmpfs holding the mount points) read-only: nothing to write but the binds.
    argv += ["--remount-ro", "/", "--chdir", str(cwd), "--clearenv"]
    for key, value in sorted(env.items()):
        argv += ["--setenv", key, value]
    return [*argv, "--", *command]


def _system_binds(network: bool) -> list[str]:
    """Read-only system folders; on merged-/usr systems /bin, /lib... are symlinks, kept as such."""
    argv: list[str] = []
    for name in _SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            argv += ["--symlink", str(path.readlink()), name]
        elif path.is_dir():
            argv += ["--ro-bind", name, name]
    for name in _ETC_BUILD + (_ETC_NETWORK if network else ()):
        argv += ["--ro-bind-try", name, name]
    return argv


def _dedupe(paths: Iterable[Path]) -> list[Path]:
    """Each path once, parents before children (a child bind must come after its parent's)."""
    unique = {Path(p).absolute() for p in paths}
    return sorted(unique, key=lambda p: (len(p.parts), str(p)))


def python_roots(python: Path) -> list[Path]:
    """What an interpreter needs to run: its venv (if any) and the installation it is based on.

    Refuses an installation that would expose the user's home or the whole file system.
    """
    roots = {Path(sys.base_prefix), Path(sys.prefix), python.parent.parent}
    home = Path.home().resolve()
    for root in roots:
        if root.resolve() in (Path("/"), home):
            raise ConfigError(
                f"Python at {root} cannot be sandboxed without exposing {root.resolve()}; "
                'install Python or the venv in its own folder, or set [build] sandbox = "off"'
            )
    return sorted(roots)


def require_bwrap(mode: Mode) -> str | None:
    """The bwrap executable for ``mode``, None when the sandbox is off; refuses when missing."""
    if mode == "off":
        return None
    found = shutil.which("bwrap")
    if found is None:
        raise ConfigError(
            "build sandbox: bwrap not found; install bubblewrap (apt-get install bubblewrap) "
            'or set [build] sandbox = "off" in deploy.toml to build without it'
        )
    return found


@dataclass(frozen=True)
class Step:
    """One confined run of repo-controlled code."""

    command: Sequence[str]
    work: Path
    """The step's private, writable folder (HOME, TMPDIR): new for this step, made by the
    deployer (or by :func:`prepare`) inside a folder of the deployer's that no step can write;
    the log goes beside it (:func:`log_path`)."""
    cwd: Path
    read_only: Sequence[Path] = ()
    writable: Sequence[Path] = ()
    network: bool = False
    env: Mapping[str, str] | None = None
    """Extra variables on top of :func:`allowed_env` (SOURCE_DATE_EPOCH, PIP_CONFIG_FILE...)."""


def allowed_env(home: Path, tmp: Path, python_bin: Path, mode: Mode) -> dict[str, str]:
    """The whole environment of a build step: an allow-list, a private HOME and TMPDIR."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOW}
    path = _SANDBOX_PATH if mode == "bwrap" else os.environ.get("PATH", os.defpath)
    env.update(
        HOME=str(home),
        TMPDIR=str(tmp),
        PATH=f"{python_bin}:{path}",
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def prepare(step: Step, mode: Mode, python: Path) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run ``step`` (confined unless ``mode`` is off).

    Refuses (:func:`require_bwrap`) when the sandbox is on and bwrap is missing. Used by
    :func:`run` and by the image worker (:mod:`sitedeploy.images.confined`), which needs the
    process's pipes rather than a finished run.
    """
    _own_folder(step.work)
    home, tmp = _own_folder(step.work / "home"), _own_folder(step.work / "tmp")
    env = {**allowed_env(home, tmp, python.parent, mode), **(step.env or {})}
    command = list(step.command)
    bwrap = require_bwrap(mode)
    if bwrap is not None:
        read_only = [*python_roots(python), *_no_links(step.read_only)]
        writable = _no_links([step.work, *step.writable])
        command = bwrap_argv(
            command, env=env, read_only=read_only, writable=writable, cwd=step.cwd,
            network=step.network, bwrap=bwrap,
        )  # fmt: skip
    return command, env


def _own_folder(path: Path) -> Path:
    """``path`` as a real folder: made here when absent; an existing one must not be a link.

    A step's work folder is one the deployer just made (``mkdtemp``) in a folder no step can
    write, so a link there can only mean a mistake in sitedeploy; still, never bind through one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise BuildError(f"sandbox: {path} is not a real folder (a link?); refusing to use it") from None
    return path


def _no_links(paths: Iterable[Path]) -> list[Path]:
    """``paths``, checked right before they are bound: bwrap would bind what a link names."""
    checked = list(paths)
    for path in checked:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue  # bwrap refuses a missing source itself
        if stat.S_ISLNK(mode):
            raise BuildError(f"sandbox: {path} is a symlink; refusing to bind it into a build step")
    return checked


def log_path(step: Step) -> Path:
    """Where :func:`run` writes the step's output: beside its work folder, in the folder the
    deployer made for it, which the step cannot write (a step could swap a log in its own
    folder for a link, and the next run's output would overwrite what the link names)."""
    return step.work.with_name(f"{step.work.name}.log")


def run(step: Step, mode: Mode, python: Path, timeout: float) -> tuple[int, Path]:
    """Run ``step`` (confined unless ``mode`` is off); returns its exit code and its log file.

    Output goes to a file, not memory: a build that prints gigabytes costs disk, not RAM. The
    log is a new file (``O_EXCL``, never a link) outside every folder the step can write.
    Raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds (the process is killed).
    """
    command, env = prepare(step, mode, python)
    log = log_path(step)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        # A list argv and no shell; with bwrap the environment is set inside (--clearenv).
        proc = subprocess.run(  # nosec B603: argv list, no shell, command built here
            command, cwd=step.cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, timeout=timeout, check=False,
        )  # fmt: skip
    return proc.returncode, log
