"""The one way sitedeploy reads what sandboxed code wrote.

A build, a hook, ``pip install`` and the image worker run code the content repo controls,
and everything they can write is planted until proven otherwise: a symlink named like the
output folder that points at ``/etc``, a link in place of a page that points at
``~/.ssh/id_ed25519``, a FIFO where a file should be (a read blocks forever), a hard link that
shares its inode with a file the next build can write in place, a sparse file of a terabyte.
So the deployer never opens such a folder by path. It starts from a folder it made itself
(the *anchor*), opens each component below it with ``O_NOFOLLOW`` (``openat``), walks by
descriptor (``os.scandir(fd)``) and accepts only real folders and regular files; anything
else stops the build with one line naming the site and the path.

What callers get:

- :func:`walk`: every file below a folder as (relative path, folder fd, name, stat);
- :func:`open_regular`: a read-only descriptor for one file;
- :func:`copy_out`: the output moved into a folder the deployer owns, so that later stages
  (images, manifest, the build cache) read only the deployer's own files. Checked whole
  first; a tree whose files each have one link is renamed in one step (no bytes copied: once
  the step's process tree is gone, no other name for them exists); a file with more links
  (one shared with a folder the next build can write, such as Zensical's ``.cache``, which
  could then change a published file in place) is copied from its descriptor into a new
  inode, the rest moved one by one;
- :func:`read_tail`: at most the last bytes of a file, for a log.

Limits: at most :data:`MAX_DEPTH` folders deep and :data:`MAX_FILE_BYTES` per file.

The image worker's variant cache is read by the same rules in :mod:`sitedeploy.images.safefs`
(``openat`` with ``O_NOFOLLOW`` from the cache folder, regular files only), which reports an
``OSError`` per entry so that one bad entry is re-rendered rather than failing the build.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError

MAX_DEPTH = 128
"""Folders nested deeper than this are refused (each level holds a descriptor while walked)."""
MAX_FILE_BYTES = 4 * 1024**3
"""A file larger than this is refused: the manifest hashes every byte, a target stores it."""
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KINDS = {
    stat.S_IFLNK: "a symlink",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
}


class UnsafeOutput(BuildError):
    """Sandboxed code left something the deployer will not touch (a link, a FIFO...)."""


@dataclass(frozen=True)
class File:
    """A regular file found by :func:`walk`; ``folder`` is open only while the walk is there."""

    rel: str
    folder: int
    name: str
    stat: os.stat_result


def refuse(where: str, rel: str, what: str) -> UnsafeOutput:
    shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return UnsafeOutput(
        f"{where}: the build left {what} at {shown!r}; sitedeploy publishes regular files and "
        "folders only and never follows a link the build made; remove it from the build"
    )


def open_dir(anchor: Path, parts: Sequence[str], where: str) -> int:
    """A descriptor for ``anchor/parts...``: ``anchor`` is the deployer's own folder, every
    part below it must be a real folder (``O_NOFOLLOW``), never a link."""
    fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    done: list[str] = []
    try:
        for part in parts:
            if not part or part in (".", "..") or "/" in part:
                raise refuse(where, "/".join([*done, part]), "a path that leaves its folder")
            done.append(part)
            inner = _open_at(fd, part, _DIR_FLAGS, where, "/".join(done))
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(folder: int, name: str, rel: str, where: str) -> int:
    """A read-only descriptor for the regular file ``name`` in ``folder`` (nothing else)."""
    fd = _open_at(folder, name, _FILE_FLAGS, where, rel)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise refuse(where, rel, _KINDS.get(stat.S_IFMT(st.st_mode), "a special file"))
    return fd


def _open_at(folder: int, name: str, flags: int, where: str, rel: str) -> int:
    try:
        return os.open(name, flags, dir_fd=folder)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            kind = _kind_at(folder, name)
            raise refuse(where, rel, kind) from None
        if exc.errno == errno.ENOENT:
            raise UnsafeOutput(f"{where}: the build wrote no {rel!r}") from None
        raise UnsafeOutput(f"{where}: cannot open {rel!r} the build wrote: {exc.strerror}") from None


def _kind_at(folder: int, name: str) -> str:
    try:
        mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
    except OSError:
        return "something unreadable"
    return _KINDS.get(stat.S_IFMT(mode), "a file where a folder belongs")


def walk(root: int, where: str, prefix: str = "") -> Iterator[File | str]:
    """Everything below the open folder ``root``: each regular file as a :class:`File`, each
    folder as its relative path (``guide/``) before what it holds. Sorted by name within a
    folder; refuses links, FIFOs, sockets and devices (:class:`UnsafeOutput`). Only one
    descriptor per level is open at a time; ``root`` stays open (the caller's)."""
    yield from _walk(root, where, prefix, 0)


def _walk(folder: int, where: str, prefix: str, depth: int) -> Iterator[File | str]:
    if depth > MAX_DEPTH:
        raise refuse(where, prefix, f"folders nested deeper than {MAX_DEPTH}")
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    subfolders: list[str] = []
    for entry in entries:
        rel = prefix + entry.name
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            subfolders.append(entry.name)
        elif not stat.S_ISREG(st.st_mode):
            raise refuse(where, rel, _KINDS.get(stat.S_IFMT(st.st_mode), "a special file"))
        elif st.st_size > MAX_FILE_BYTES:
            raise refuse(where, rel, f"a file over {MAX_FILE_BYTES // 1024**3} GiB")
        else:
            yield File(rel, folder, entry.name, st)
    for name in subfolders:
        inner = _open_at(folder, name, _DIR_FLAGS, where, prefix + name)
        try:
            yield f"{prefix}{name}/"
            yield from _walk(inner, where, f"{prefix}{name}/", depth + 1)
        finally:
            os.close(inner)


def copy_out(anchor: Path, parts: Sequence[str], dest: Path, where: str) -> None:
    """Move the sandbox's output ``anchor/parts...`` to ``dest`` (a new name in a folder of
    the deployer's): real folders and regular files only, every file a name only ``dest`` holds.

    The whole tree is checked first, by descriptor. When no file has a second name, the folder
    is renamed in one step (the step's processes are gone: bwrap's PID namespace dies with it,
    so nothing changes it between the check and the rename, and every later walk refuses a
    link again); otherwise it is rebuilt file by file, each shared file copied to a new inode.
    """
    *above, name = parts
    if not name or name in (".", "..") or "/" in name:
        raise refuse(where, "/".join(parts), "a path that leaves its folder")
    parent = open_dir(anchor, above, where)
    try:
        root = _open_at(parent, name, _DIR_FLAGS, where, "/".join(parts))
        try:
            shared = _has_shared(root, where)
            if not shared:
                os.rename(name, dest, src_dir_fd=parent)
                return
            _rebuild(root, dest, where)
        finally:
            os.close(root)
    finally:
        os.close(parent)


def _has_shared(root: int, where: str) -> bool:
    """Whether any file below ``root`` has another name (refusing what :func:`walk` refuses)."""
    shared = False
    for found in walk(root, where):
        if not isinstance(found, str) and found.stat.st_nlink > 1:
            shared = True
    return shared


def _rebuild(root: int, dest: Path, where: str) -> None:
    os.mkdir(dest, 0o755)
    for found in walk(root, where):
        if isinstance(found, str):
            os.mkdir(dest / found, 0o755)
        else:
            _take(found, dest / found.rel, where)


def _take(found: File, target: Path, where: str) -> None:
    """``found`` at ``target``: renamed when it has no other name, else a copy of its bytes."""
    if found.stat.st_nlink == 1:
        try:
            os.rename(found.name, target, src_dir_fd=found.folder)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    fd = open_regular(found.folder, found.name, found.rel, where)
    try:
        with open(target, "xb") as out:
            copy_fd(fd, out.fileno(), found.stat.st_size)
    finally:
        os.close(fd)


def copy_fd(source: int, target: int, size: int) -> None:
    """Copy by the kernel (``copy_file_range``: a reflink where the file system can), with
    a plain read/write loop where it cannot."""
    done = 0
    try:
        while done < size:
            step = os.copy_file_range(source, target, size - done)
            if step == 0:
                break
            done += step
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(source, done, os.SEEK_SET)
    with os.fdopen(os.dup(source), "rb") as src, os.fdopen(os.dup(target), "ab") as out:
        shutil.copyfileobj(src, out)


def read_tail(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of the regular file ``path`` (never a link, never a FIFO)."""
    fd = os.open(path, _FILE_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return b""
        os.lseek(fd, max(0, st.st_size - limit), os.SEEK_SET)
        chunks: list[bytes] = []
        while len(got := os.read(fd, 1 << 16)) and sum(map(len, chunks)) < limit:
            chunks.append(got)
        return b"".join(chunks)[-limit:]
    finally:
        os.close(fd)


def is_real_dir(path: Path) -> bool:
    """Whether ``path`` itself (not what a link there names) is a folder."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
