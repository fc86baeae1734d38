"""The content repository: a mirror in the state folder, refs, commits and exports.

sitedeploy never builds in a working copy: it keeps a bare mirror (``<state>/mirror.git``),
resolves a ref to a commit there, and exports exactly that commit's tree into a clean folder.
Uncommitted changes therefore never deploy. Every git failure becomes a SourceError.
"""

from __future__ import annotations

import fcntl
import os
import posixpath
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import NotARepository, RefNotFound, SourceError, scrub
from .gitrun import Git

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


def git_path(path: str) -> str:
    """A folder of the repo as git names it: ``""`` for the root (``.``, ``./``, ``""``)."""
    clean = posixpath.normpath(path.strip("/") or ".")
    return "" if clean == "." else clean


def is_url(repo: str) -> bool:
    return bool(_URL.match(repo))


class Source:
    """A mirror of the content repo at ``mirror_dir``, fetched from ``url``."""

    def __init__(self, url: str, mirror_dir: Path) -> None:
        self.url = url
        self.mirror_dir = mirror_dir
        self.git = Git(mirror_dir, remote=url)

    def sync(self) -> None:
        """Create the mirror, or fetch every branch and tag into it (pruning deleted ones).

        Always from ``source.repo`` as it is now (it may have moved since the mirror was made),
        and never from a URL stored in the mirror: its config keeps only the scrubbed URL, so a
        token in ``source.repo`` is not written to disk."""
        with self._mirror_lock():
            if not (self.mirror_dir / "HEAD").exists():
                _refuse_non_repo(self.url)
                self._clone()
            self.git.run(
                "fetch", "--prune", "--quiet", "--", self.url, "+refs/*:refs/*",
                doing=f"fetch {self.url}", network=True,
            )  # fmt: skip

    def _clone(self) -> None:
        self.mirror_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.mirror_dir.with_name(self.mirror_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        Git().run(
            "clone", "--mirror", "--quiet", "--", self.url, str(tmp), doing=f"clone {self.url}", network=True
        )
        Git(tmp).run("remote", "set-url", "origin", scrub(self.url), doing="scrub the mirror's remote URL")
        tmp.rename(self.mirror_dir)  # a half-made clone never looks like a mirror

    @contextmanager
    def _mirror_lock(self) -> Iterator[None]:
        """One fetch at a time per mirror: git refuses concurrent ref updates (a cron run and a
        manual deploy may overlap)."""
        self.mirror_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.mirror_dir.with_name(self.mirror_dir.name + ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _require_mirror(self) -> None:
        if not (self.mirror_dir / "HEAD").exists():
            raise SourceError(f"no mirror of {self.url} yet; run 'sitedeploy deploy' or 'build' first")

    def default_branch(self) -> str:
        self._require_mirror()
        head = self.git.probe("symbolic-ref", "--quiet", "HEAD")
        if head is None:
            raise RefNotFound(f"{self.url} has no default branch (its HEAD is detached); set source.branch")
        return head.removeprefix("refs/heads/")

    def resolve(self, ref: str | None, branch: str | None = None) -> Commit:
        """The commit ``ref`` names (branch, tag or sha); None means the tip of ``branch``."""
        name = ref or branch or self.default_branch()
        self._require_mirror()
        sha = self.git.probe("rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}")
        if sha is None:
            if self.git.probe("for-each-ref", "--count=1") == "":
                raise RefNotFound(
                    f"{self.url} has no commits yet; commit your files (git add -A; git commit) and run again"
                )
            raise RefNotFound(
                f"unknown ref '{name}' in {self.url}; use a branch, a tag or a commit that was pushed there"
            )
        return self.commit(sha)

    def commit(self, sha: str) -> Commit:
        self._require_mirror()
        out = self.git.text(
            "show",
            "-s",
            "--format=%H%x00%s%x00%an <%ae>%x00%ct",
            "--end-of-options",
            sha,
            "--",
            doing=f"read commit {sha[:12]}",
        )
        full, subject, author, when = out.split("\x00")
        return Commit(sha=full, subject=subject, author=author, committed_at=int(when))

    def tree_id(self, commit: str, path: str) -> str | None:
        """The git object id of ``path`` at ``commit`` (a content hash of the whole folder)."""
        return self.git.probe(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{commit}:{git_path(path)}"
        )

    def read_text(self, commit: str, path: str) -> str | None:
        """The text of file ``path`` at ``commit``; None when the commit has no such file."""
        return self.git.probe("cat-file", "blob", f"{commit}:{git_path(path)}")

    def last_change(self, commit: str, path: str) -> int:
        """Commit time of the newest commit up to ``commit`` that touched ``path``."""
        out = self.git.text(
            "log",
            "-1",
            "--format=%ct",
            commit,
            "--",
            git_path(path) or ".",
            doing=f"read the history of {path}",
        )
        return int(out) if out else self.commit(commit).committed_at

    def list_dir(self, commit: str, path: str) -> list[tuple[str, str]]:
        """(name, kind) of the entries of folder ``path`` at ``commit``; kind is blob or tree."""
        folder = git_path(path)
        out = self.git.probe("ls-tree", "--end-of-options", commit, "--", f"{folder}/" if folder else ".")
        entries = []
        for line in (out or "").splitlines():
            meta, name = line.split("\t", 1)
            entries.append((name.rsplit("/", 1)[-1], meta.split()[1]))
        return entries

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
        with self._workspace_lock(workspace):
            work = self._work_tree(workspace, index, f"check out {path} at {commit[:8]}")
            touched = work("diff-files", "--name-only", "-z") if index.exists() else b""
            work("read-tree", "--reset", "-u", tree)
            if touched:  # read-tree keeps a locally modified file if its entry did not change
                kept = set(work("ls-files", "-z").split(b"\0"))  # a path the commit dropped: gone
                touched = b"\0".join(p for p in touched.split(b"\0") if p and p in kept)
            if touched:
                work("checkout-index", "--force", "-q", "-z", "--stdin", stdin=touched + b"\0")
            work("clean", "-fdxq")

    def _work_tree(self, workspace: Path, index: Path, doing: str) -> Callable[..., bytes]:
        """git on the mirror with ``workspace`` as its work tree and its own index file."""
        env = {"GIT_INDEX_FILE": str(index)}

        def work(*args: str, stdin: bytes | None = None) -> bytes:
            return self.git.run(f"--work-tree={workspace}", *args, env=env, stdin=stdin, doing=doing)

        return work

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


def _refuse_non_repo(url: str) -> None:
    """A local folder that is not a git repository: say so, rather than git's clone error."""
    if is_url(url) or not Path(url).is_dir():
        return
    if (Path(url) / ".git").exists() or Git(Path(url)).probe("rev-parse", "--is-bare-repository") == "true":
        return
    raise NotARepository(
        f"{url} is not a git repository; run 'git init' there and commit your files, "
        "or point source.repo at the repository"
    )


def _run(cmd: list[str], env: dict[str, str], stdin: bytes | None = None) -> bytes:
    """``git ARGS`` through the runner, in the call style ``_refuse_escaping_links`` uses (its
    ``env`` is ignored: the runner's scrubbed environment applies)."""
    return Git().run(*cmd[1:], stdin=stdin, doing="list the links of the site")
