"""Every git command sitedeploy runs, and the one translation of git's failures.

git runs as a subprocess with an argument list (never a shell) and a timeout, in an environment
that keeps what git needs to reach a remote (``PATH``, ``HOME`` for credential helpers and
``~/.ssh``, ``SSH_AUTH_SOCK``, proxies) and drops the rest that matters: credentials of other
systems (``AWS_*``, anything named like a secret) and the ``GIT_DIR``-style variables that
would point git at another repository (set, for example, when sitedeploy runs from a git
hook). ``LC_ALL=C`` keeps git's messages in English so :func:`translate` can read them, and
prompts are off: a remote that wants a password fails at once instead of hanging the agent.

:func:`translate` is the table from git's stderr to the :class:`~sitedeploy.errors.SourceError`
tree: one line saying what sitedeploy tried, where (the URL scrubbed of credentials), what git
said, and what to do. A git that cannot start or runs out of time is translated the same way.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import (
    GitFailed,
    NotARepository,
    RefNotFound,
    RepoAccessDenied,
    RepoUnreachable,
    SourceError,
    looks_secret,
    scrub,
)

LOCAL_TIMEOUT = 600.0
"""Seconds for a command on the local mirror (a checkout of a very large site folder)."""
NETWORK_TIMEOUT = 1800.0
"""Seconds for a clone or fetch: a first clone of a large repository over a slow link."""
QUERY_TIMEOUT = 60.0
"""Seconds for ``ls-remote``: a few kilobytes; longer means the remote is in trouble."""

_REPO_VARS = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_QUARANTINE_PATH",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    }
)

# (what git says, the class it means, what to do). First match wins, so the order matters:
# "unable to access ...: returned error: 403" is about access, not about the network.
_TABLE: tuple[tuple[re.Pattern[str], type[SourceError], str], ...] = (
    (
        re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED", re.I),
        RepoAccessDenied,
        "the git server's SSH host key is not in known_hosts (or changed); check it, then "
        "add it with ssh-keyscan",
    ),
    (
        re.compile(
            r"Authentication failed|could not read (?:Username|Password)|terminal prompts disabled"
            r"|Permission denied \(|Access denied|returned error: 40[13]|invalid credentials",
            re.I,
        ),
        RepoAccessDenied,
        "give this machine read access (a credential helper, a deploy key or ssh-agent); "
        "never put a token in source.repo",
    ),
    (
        re.compile(
            r"not a git repository|does not appear to be a git repository|repository .* does not exist"
            r"|repository .* not found|Repository not found|returned error: 404",
            re.I,
        ),
        NotARepository,
        "check source.repo (a path or URL of a git repository this machine can read)",
    ),
    (
        re.compile(
            r"Could not resolve host|Failed to connect|Connection refused|timed out|Network is unreachable"
            r"|No route to host|Connection reset|Connection closed|early EOF|remote end hung up"
            r"|returned error: 5\d\d|Temporary failure|unable to access|Could not read from remote",
            re.I,
        ),
        RepoUnreachable,
        "check the network and that the git server is up, then run again",
    ),
    (
        re.compile(
            r"unknown revision|bad revision|ambiguous argument|Needed a single revision"
            r"|not a valid object name|invalid object name|bad object|couldn't find remote ref"
            r"|not a tree object|does not have any commits",
            re.I,
        ),
        RefNotFound,
        "use a branch, a tag or a commit that was pushed there",
    ),
)
_DAMAGED_MIRROR = "the local mirror {0} is damaged; delete it and run again (it is fetched anew)"


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git command runs with (see the module docstring)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _REPO_VARS and not k.startswith("AWS_") and not looks_secret(k)
    }
    env.update(LC_ALL="C", LANGUAGE="C", GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never")
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -oBatchMode=yes"  # never ask for a passphrase on a tty
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Git:
    """git against one repository: ``git_dir`` (a bare mirror) or none (``ls-remote URL``).
    ``remote`` is how messages name the repository (scrubbed when shown)."""

    git_dir: Path | None = None
    remote: str = ""

    def run(
        self,
        *args: str,
        doing: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        network: bool = False,
        timeout: float | None = None,
    ) -> bytes:
        """The stdout of ``git args``; any failure raised as a SourceError that says ``doing``.
        ``network``: the command talks to the remote (longer timeout, other hints)."""
        proc = self.completed(*args, doing=doing, stdin=stdin, env=env, network=network, timeout=timeout)
        if proc.returncode != 0:
            raise translate(proc.stderr.decode(errors="replace"), doing, self.git_dir)
        return proc.stdout

    def text(self, *args: str, doing: str, network: bool = False, timeout: float | None = None) -> str:
        out = self.run(*args, doing=doing, network=network, timeout=timeout)
        return out.decode(errors="replace").strip()

    def probe(self, *args: str) -> str | None:
        """stdout of a question git answers with its exit status (``rev-parse --verify``):
        None when the answer is no. Failing to run git at all still raises."""
        proc = self.completed(*args, doing=f"run git {args[0]}")
        return proc.stdout.decode(errors="replace").strip() if proc.returncode == 0 else None

    def completed(
        self,
        *args: str,
        doing: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        network: bool = False,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git and return what happened, whatever its exit status (``verify-commit`` says
        "untrusted" with it). Raises only when git cannot run or runs out of time."""
        cmd = ["git", *([f"--git-dir={self.git_dir}"] if self.git_dir else []), *args]
        limit = timeout or (NETWORK_TIMEOUT if network else LOCAL_TIMEOUT)
        return _execute(cmd, git_env(env), stdin, limit, doing, network)


def _execute(
    cmd: list[str], env: dict[str, str], stdin: bytes | None, timeout: float, doing: str, network: bool
) -> subprocess.CompletedProcess[bytes]:
    try:
        # A session of its own: on timeout the whole group goes, ssh under git fetch included.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise GitFailed(f"git: cannot {doing}: git is not installed; install git (2.30 or newer)") from None
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        if network:
            raise RepoUnreachable(
                f"git: cannot {doing}: no answer in {timeout:.0f} s; check the network and the git server"
            ) from None
        raise GitFailed(f"git: cannot {doing}: still running after {timeout:.0f} s", retryable=True) from None
    except BaseException:  # Ctrl-C: leave no git behind
        _kill_group(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def translate(stderr: str, doing: str, mirror: Path | None = None) -> SourceError:
    """The one-line SourceError for what git printed on a failure (see ``_TABLE``).

    The message always keeps git's own cause (its first ``fatal:``/``error:`` line) beside the
    line the table matched: "Could not read from remote repository" alone hides why."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = next((line for line in lines if line.startswith(("fatal:", "error:"))), None)
    unsafe = _dubious_ownership(lines, doing)
    if unsafe is not None:
        return unsafe
    for pattern, kind, hint in _TABLE:
        said = next((line for line in lines if pattern.search(line)), None)
        if said is not None:
            if kind is NotARepository and mirror is not None and str(mirror) in said:
                hint = _DAMAGED_MIRROR.format(mirror)  # our own mirror is broken, not source.repo
            return kind(f"git: cannot {doing} ({_git_said(fatal, said)}); {hint}")
    said = fatal or (lines[-1] if lines else "no message")
    return GitFailed(f"git: cannot {doing} ({_reason(said)})")


_DUBIOUS = re.compile(r"dubious ownership in repository at '(?P<path>[^']+)'", re.I)
_SAFE_DIRECTORY = re.compile(r"git config --global --add safe\.directory (?P<path>\S.*)$")


def _dubious_ownership(lines: list[str], doing: str) -> SourceError | None:
    """git (2.35.2 and newer) refuses a repository owned by another user than the one running
    it; the fix is one trusted exception, named with the exact command git suggests."""
    found = next((m for m in map(_DUBIOUS.search, lines) if m), None)
    if found is None:
        return None
    command = next((m for m in map(_SAFE_DIRECTORY.search, lines) if m), None)
    path = command["path"] if command else found["path"]
    return RepoAccessDenied(
        f"git: cannot {doing} (dubious ownership: {scrub(found['path'])} is owned by another user than "
        f"the one running sitedeploy); if that repository is trusted, run as this user: "
        f"git config --global --add safe.directory {scrub(path)} (or run sitedeploy as its owner)"
    )


def _git_said(fatal: str | None, matched: str) -> str:
    """The matched line, and git's own cause when that is another line."""
    if fatal is None or fatal == matched:
        return _reason(matched)
    return f"{_reason(matched)}; git: {_reason(fatal)}"


def _reason(line: str) -> str:
    for prefix in ("fatal:", "error:", "remote:", "ssh:"):
        line = line.removeprefix(prefix).strip()
    return scrub(line)[:300]
