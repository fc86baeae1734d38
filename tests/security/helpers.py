"""Shared pieces of the security tests: canary secrets, a CLI run in a fresh process (so the
canaries sit in its initial environment, where /proc/<pid>/environ shows them), and git
plumbing for trees no file system lets a user create (invalid UTF-8, control characters)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fixtures.git import ContentRepo

CANARIES = {
    "AWS_ACCESS_KEY_ID": "AKIACANARYACCESSKEY1",
    "AWS_SECRET_ACCESS_KEY": "canary-aws-secret-0f9e8d7c",
    "SITEDEPLOY_WEBHOOK_SECRET": "canary-webhook-secret-5b4a",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/canary-slack-token-77",
}
HOME_CANARY = "canary-home-file-credential-3c2b"
SITEDEPLOY = Path(sys.executable).parent / "sitedeploy"
# Python source for code a content repo gets to run (a hook, an exploited image decoder):
# ``snoop(deployer_home, agent_socket, state_dir)`` returns everything it could read of the
# deployer's secrets, and tries a write into the state folder.
SNOOP = """
import glob, json, os, socket

def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError as exc:
        return "ERR " + type(exc).__name__

def _list(path):
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        return "ERR " + type(exc).__name__

def _connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return "connected"
    except OSError as exc:
        return "ERR " + type(exc).__name__
    finally:
        s.close()

def snoop(deployer_home, agent_socket, state_dir):
    found = {
        "environ": dict(os.environ),
        "proc": {p: _read(p) for p in glob.glob("/proc/*/environ")},
        "home_files": {
            p: _read(p)
            for p in [deployer_home + "/.aws/credentials", deployer_home + "/.ssh/id_ed25519",
                      os.path.expanduser("~/.aws/credentials")]
        },
        "agent": _connect(agent_socket),
        "state": _list(state_dir),
        "mirror_config": _read(state_dir + "/mirror.git/config"),
        "builds": _list(state_dir + "/builds"),
        "other_site": _list(state_dir + "/builds/other"),
        "root_home": _list("/root"),
    }
    try:
        open(state_dir + "/planted", "w").write("x")
        found["state_write"] = "written"
    except OSError as exc:
        found["state_write"] = "ERR " + type(exc).__name__
    return found
"""


def all_canaries() -> list[str]:
    return [*CANARIES.values(), HOME_CANARY]


def canary_home(tmp: Path) -> Path:
    """A deployer's HOME with credentials where AWS and ssh keep them."""
    home = tmp / "deployer-home"
    (home / ".aws").mkdir(parents=True)
    (home / ".ssh").mkdir()
    (home / ".aws" / "credentials").write_text(f"[default]\naws_secret_access_key = {HOME_CANARY}\n")
    (home / ".ssh" / "id_ed25519").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{HOME_CANARY}\n")
    return home


@contextmanager
def agent_socket(tmp: Path) -> Iterator[Path]:
    """A listening unix socket standing in for ssh-agent."""
    path = tmp / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(5)
    try:
        yield path
    finally:
        server.close()


def run_cli(args: list[str], env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``sitedeploy ARGS`` in a new process whose initial environment holds the canaries."""
    env = {**os.environ, **CANARIES, **env_extra}
    return subprocess.run(
        [str(SITEDEPLOY), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def release_file(state_dir: Path, rel: str) -> Path:
    """``rel`` in the newest assembled release of ``state_dir``."""
    releases = sorted((state_dir / "releases").iterdir(), key=lambda p: p.stat().st_mtime)
    return releases[-1] / rel


def read_json(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def commit_site_tree(repo: ContentRepo, entries: list[tuple[str, bytes, bytes]], message: str) -> str:
    """Commit a repo whose only site is ``sites/x``, made of raw (mode, path, content) entries.

    Built with ``git mktree``, so names git's index refuses (``..``) can be tested too: a
    hostile remote can push such trees. ``/`` in a path makes folders.
    """
    blobs: dict[bytes, bytes] = {}
    for _, _, content in entries:
        if content not in blobs:
            blobs[content] = _git(repo, ["hash-object", "-w", "--stdin"], content)
    site = _mktree(repo, [(mode, path, blobs[content]) for mode, path, content in entries])
    sites = _git(repo, ["mktree", "-z"], b"040000 tree " + site + b"\tx\0")
    root = _git(repo, ["mktree", "-z"], b"040000 tree " + sites + b"\tsites\0")
    head = _git(repo, ["rev-parse", "HEAD"], b"")
    commit = _git(repo, ["commit-tree", root.decode(), "-p", head.decode(), "-m", message], b"")
    _git(repo, ["update-ref", "refs/heads/main", commit.decode()], b"")
    return commit.decode()


def _mktree(repo: ContentRepo, entries: list[tuple[str, bytes, bytes]]) -> bytes:
    folders: dict[bytes, list[tuple[str, bytes, bytes]]] = {}
    lines = b""
    for mode, path, oid in entries:
        head, sep, rest = path.partition(b"/")
        if sep and head not in (b"..",):
            folders.setdefault(head, []).append((mode, rest, oid))
        else:
            lines += mode.encode() + b" blob " + oid + b"\t" + path + b"\0"
    for name, inner in folders.items():
        lines += b"040000 tree " + _mktree(repo, inner) + b"\t" + name + b"\0"
    return _git(repo, ["mktree", "-z"], lines)


def _git(repo: ContentRepo, args: list[str], stdin: bytes) -> bytes:
    from tests.fixtures.git import GIT_ENV

    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(["git", *args], cwd=repo.path, input=stdin, env=env, capture_output=True, check=True)
    return out.stdout.strip()
