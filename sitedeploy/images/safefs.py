"""Read files the sandboxed image worker wrote, without following anything it planted.

The variant cache is writable from inside the sandbox, and the worker decodes hostile bytes,
so the deployer treats every path in the cache as planted: a symlink to ``~/.ssh/id_ed25519``
named like a variant, a folder swapped for a symlink to ``/`` between a check and a use, a
FIFO where ``outcome.json`` should be (a read would block forever). So:

- :func:`open_regular` walks from the cache folder (a bind the worker cannot replace) one
  component at a time with ``O_NOFOLLOW`` (``openat``), and returns a descriptor only for a
  regular file;
- :func:`place` hard-links that file into the site by path, then checks the new name is the
  very inode the descriptor holds; on any doubt it copies the bytes from the descriptor.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_regular(root: Path, parts: Sequence[str]) -> int:
    """A read-only descriptor for ``root/parts...``; OSError unless every part below ``root``
    is a real folder (no link) and the last one a regular file."""
    if not parts or any(not p or p in (".", "..") or "/" in p for p in parts):
        raise OSError(f"not a plain relative path: {parts!r}")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS, dir_fd=folder)
            os.close(folder)
            folder = inner
        fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=folder)
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{'/'.join(parts)} is not a regular file")
    return fd


def place(fd: int, path: Path, tmp: Path) -> None:
    """Make ``tmp`` (a fresh name) the file open as ``fd``, which was opened at ``path``.

    A hard link when it provably is the same inode (a warm build copies no bytes), else a copy
    of the descriptor's bytes. ``link`` does not follow a symlink at ``path`` itself, and the
    inode check catches one swapped in anywhere above it after :func:`open_regular` looked.
    """
    opened = os.fstat(fd)
    try:
        os.link(path, tmp, follow_symlinks=False)
        linked = os.lstat(tmp)
        if (linked.st_dev, linked.st_ino) == (opened.st_dev, opened.st_ino):
            return
        tmp.unlink()
    except OSError:  # another file system, links not supported, or a race lost: copy
        tmp.unlink(missing_ok=True)
    os.lseek(fd, 0, os.SEEK_SET)
    with os.fdopen(os.dup(fd), "rb") as source, tmp.open("xb") as target:
        shutil.copyfileobj(source, target)
