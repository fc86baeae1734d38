"""A folder without a builder is published as it is, copied without ever reading outside it.

The checked-out folder has passed :mod:`sitedeploy.source.tree_check`, so its links resolve inside
it. The copy checks again anyway and materialises each link as the file or folder it names
(a release holds regular files only): a link whose real target leaves the folder, or a
folder link that leads back into itself, stops the build instead of being followed.
Zensical builds on such a copy too (it writes into its project folder). The copy only
ever creates: each folder with ``mkdir``, each file as a new name (``link`` or an exclusive
create), so nothing already at a destination (a link a build planted) is followed or written.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BuildError
from ..sandbox import untrusted
from . import Job, Warnings


def build(job: Job) -> Warnings:
    copy_tree(job.src, job.out, job, hard_links=True)
    return Warnings()


def copy_tree(src: Path, out: Path, job: Job, *, hard_links: bool = False) -> None:
    """Copy ``src`` to ``out``; links become copies of their (checked) targets.

    ``hard_links``: share inodes with ``src`` where possible; only for output nothing
    writes into (not for a folder a builder's code then runs in).
    """
    root = src.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not untrusted.is_real_dir(out):
        raise BuildError(f"site '{job.site}': {out} is not a real folder (a link?); refusing to copy into it")
    stack: list[tuple[Path, Path, frozenset[Path]]] = [(root, out, frozenset({root}))]
    while stack:  # iterative: a deep tree must not hit the recursion limit
        folder, dest, chain = stack.pop()
        if dest != out:
            os.mkdir(dest)  # never into what is there: a build may have planted a link
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            real = _real(Path(entry.path), root, job) if entry.is_symlink() else Path(entry.path)
            if real.is_dir():
                if real in chain:
                    raise BuildError(f"site '{job.site}': {_shown(entry, root, job)} is a folder link loop")
                stack.append((real, dest / entry.name, chain | {real}))
            elif real.is_file():
                _copy(real, dest / entry.name, hard_links)


def _copy(source: Path, target: Path, hard_links: bool) -> None:
    """A hard link when possible (no bytes copied), else a copy.

    Sharing the inode with the checkout is safe: git replaces a file by unlink and create,
    never by writing into it, and a cached build is checked against its manifest before reuse.
    """
    if hard_links:
        try:
            return os.link(source, target, follow_symlinks=False)
        except OSError:
            pass  # another file system: copy
    # "x": a new file, never through a link (or into a file) already at ``target``.
    with source.open("rb") as data, target.open("xb") as copy:
        untrusted.copy_fd(data.fileno(), copy.fileno(), os.fstat(data.fileno()).st_size)


def _real(link: Path, root: Path, job: Job) -> Path:
    real = Path(os.path.realpath(link))
    if not real.is_relative_to(root):
        raise BuildError(
            f"site '{job.site}': {_shown(link, root, job)} leads outside the site folder; "
            "link to a file inside it, or commit the file itself"
        )
    return real


def _shown(path: os.DirEntry[str] | Path, root: Path, job: Job) -> str:
    """The path as the repo names it (folders reached through links are under ``root`` too)."""
    full = Path(path)
    return f"{job.label}/{full.relative_to(root).as_posix()}" if full.is_relative_to(root) else str(full)
