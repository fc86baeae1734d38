"""The content repository: a mirror in the state folder, refs, commits and exports.

sitedeploy never builds in a working copy: it keeps a bare mirror (``<state>/mirror.git``),
resolves a ref to a commit there, and exports exactly that commit's tree into a clean folder.
Uncommitted changes therefore never deploy. Every git failure becomes a SourceError.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import git

from .errors import SourceError

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^[^/]+@[^/:]+:")


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str
    committed_at: int
    """Seconds since the epoch (the committer date): SOURCE_DATE_EPOCH for reproducible builds."""

    @property
    def short(self) -> str:
        return self.sha[:8]

    @property
    def committed_iso(self) -> str:
        return datetime.fromtimestamp(self.committed_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_url(repo: str) -> bool:
    return bool(_URL.match(repo))


class Source:
    """A mirror of the content repo at ``mirror_dir``, fetched from ``url``."""

    def __init__(self, url: str, mirror_dir: Path) -> None:
        self.url = url
        self.mirror_dir = mirror_dir
        self._repo: git.Repo | None = None

    @property
    def repo(self) -> git.Repo:
        if self._repo is None:
            if not (self.mirror_dir / "HEAD").exists():
                raise SourceError(f"no mirror of {self.url} yet; run 'sitedeploy deploy' or 'build' first")
            self._repo = git.Repo(self.mirror_dir)
        return self._repo

    def sync(self) -> None:
        """Create the mirror, or fetch every branch and tag into it (pruning deleted ones)."""
        with self._mirror_lock(), self._git_errors(f"fetch {self.url}"):
            if (self.mirror_dir / "HEAD").exists():
                # The mirror's refspec is +refs/*:refs/*: branches and tags, deleted ones pruned.
                self.repo.git.fetch("--prune", "origin")
            else:
                self.mirror_dir.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.mirror_dir.with_name(self.mirror_dir.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                git.Repo.clone_from(self.url, tmp, mirror=True)
                tmp.rename(self.mirror_dir)  # a half-made clone never looks like a mirror

    @contextmanager
    def _mirror_lock(self) -> Iterator[None]:
        """One fetch at a time per mirror: git refuses concurrent ref updates (a cron run and a
        manual deploy may overlap)."""
        self.mirror_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.mirror_dir.with_name(self.mirror_dir.name + ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def default_branch(self) -> str:
        with self._git_errors("read the default branch"):
            head = self.repo.git.symbolic_ref("--quiet", "HEAD")
        return str(head).removeprefix("refs/heads/")

    def resolve(self, ref: str | None, branch: str | None = None) -> Commit:
        """The commit ``ref`` names (branch, tag or sha); None means the tip of ``branch``."""
        name = ref or branch or self.default_branch()
        try:
            sha = self.repo.git.rev_parse("--verify", "--quiet", f"{name}^{{commit}}")
        except git.GitCommandError:
            raise SourceError(
                f"unknown ref '{name}' in {self.url}; use a branch, a tag or a commit that was pushed there"
            ) from None
        return self.commit(sha)

    def commit(self, sha: str) -> Commit:
        # `git show` rather than GitPython's object database: that one keeps cat-file
        # processes alive for the life of the Repo, which a long-running agent would pile up.
        with self._git_errors(f"read commit {sha[:12]}"):
            out = self.repo.git.show("-s", "--format=%H%x00%s%x00%an <%ae>%x00%ct", sha, "--")
        full, subject, author, when = str(out).split("\x00")
        return Commit(sha=full, subject=subject, author=author, committed_at=int(when))

    def tree_id(self, commit: str, path: str) -> str | None:
        """The git object id of ``path`` at ``commit`` (a content hash of the whole folder)."""
        try:
            return str(self.repo.git.rev_parse("--verify", "--quiet", f"{commit}:{path}"))
        except git.GitCommandError:
            return None

    def last_change(self, commit: str, path: str) -> int:
        """Commit time of the newest commit up to ``commit`` that touched ``path``."""
        with self._git_errors(f"read the history of {path}"):
            out = self.repo.git.log("-1", "--format=%ct", commit, "--", path)
        return int(out) if out else self.commit(commit).committed_at

    def list_dir(self, commit: str, path: str) -> list[tuple[str, str]]:
        """(name, kind) of the entries of folder ``path`` at ``commit``; kind is blob or tree."""
        try:
            out = self.repo.git.ls_tree(commit, "--", f"{path.rstrip('/')}/")
        except git.GitCommandError:
            return []
        entries = []
        for line in out.splitlines():
            meta, name = line.split("\t", 1)
            entries.append((name.rsplit("/", 1)[-1], meta.split()[1]))
        return entries

    def changed_paths(self, old: str, new: str) -> list[str]:
        """Paths that differ between two commits (added, modified, deleted, renamed)."""
        with self._git_errors(f"diff {old[:8]}..{new[:8]}"):
            out = self.repo.git.diff("--name-only", "--no-renames", old, new)
        return str(out).splitlines()

    def checkout(self, commit: str, path: str, workspace: Path) -> None:
        """Make ``workspace`` hold exactly the folder ``path`` of ``commit``, and nothing else.

        The workspace is kept between builds with its own git index, so only files that
        changed since the last checkout are written (a one-page edit of a 5,000-page site
        writes one file, not 400 MB). Files changed or added behind our back are put right.
        Symlinks are checked first: one whose target leaves the folder stops the build, so
        nothing outside the repository is ever read through it.
        """
        tree = self.tree_id(commit, path)
        if tree is None:
            raise SourceError(f"{path}: not a folder in commit {commit[:8]}")
        self._refuse_escaping_links(tree, path)
        workspace.mkdir(parents=True, exist_ok=True)
        index = workspace.with_name(f".{workspace.name}.index")
        git = ["git", f"--git-dir={self.mirror_dir}", f"--work-tree={workspace}"]
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        with self._workspace_lock(workspace), self._git_errors(f"check out {path} at {commit[:8]}"):
            touched = _run([*git, "diff-files", "--name-only", "-z"], env) if index.exists() else b""
            _run([*git, "read-tree", "--reset", "-u", tree], env)
            if touched:  # read-tree keeps a locally modified file if its entry did not change
                _run([*git, "checkout-index", "--force", "-q", "-z", "--stdin"], env, touched)
            _run([*git, "clean", "-fdxq"], env)

    def _refuse_escaping_links(self, tree: str, path: str) -> None:
        # Names and links are checked on the tree, before anything is written: links are
        # resolved against the tree itself (see tree_check), not by normalising their text.
        from . import tree_check

        git_dir, env = [f"--git-dir={self.mirror_dir}"], dict(os.environ)
        listing = _run(["git", *git_dir, "ls-tree", "-r", "-t", "-z", tree], env)
        entries = tree_check.parse_listing(listing, path)
        links = [e for e in entries if e.kind == "link"]
        if links:
            wanted = "".join(f"{e.oid}\n" for e in links).encode()
            contents = tree_check.parse_batch(_run(["git", *git_dir, "cat-file", "--batch"], env, wanted))
            targets = {e.path: c for e, c in zip(links, contents, strict=True)}
            tree_check.check_links(entries, targets, path)

    @contextmanager
    def _workspace_lock(self, workspace: Path) -> Iterator[None]:
        with workspace.with_name(f".{workspace.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @contextmanager
    def _git_errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except git.GitCommandError as exc:
            detail = (exc.stderr or "").strip().splitlines()
            reason = detail[-1].removeprefix("stderr: ").strip(" '") if detail else f"exit {exc.status}"
            raise SourceError(f"git: cannot {operation} ({reason})", retryable=True) from None
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise SourceError(f"{self.url}: not a git repository; check source.repo") from None


def _run(cmd: list[str], env: dict[str, str], stdin: bytes | None = None) -> bytes:
    try:
        return subprocess.run(cmd, env=env, input=stdin, capture_output=True, check=True).stdout
    except subprocess.CalledProcessError as exc:
        raise git.GitCommandError(cmd, exc.returncode, exc.stderr) from None
