"""Seals: what the deployer saw in a cache a sandboxed build may write, kept where no build can.

A cache that a build reuses (the incremental MkDocs builder's pack and page HTML, a site's
venv) is written by code the content repo controls, in the sandbox, with the folder bound
writable. What a build left there when it finished is what the next build of the same site
and trust level may reuse; anything changed after that — by a later build that failed, by a
build of another site, by hand — must not be. So after a build succeeds, the deployer
records every file of the folder (:func:`write_seal`): its path, size and SHA-256, and its
inode, mtime and ctime. Before the next build it compares the folder with that record
(:func:`broken_seal`); any difference and the cache is thrown away (:func:`discard`) and
the build runs in full, saying why.

The stat fields make the check cheap: a file whose (inode, size, mtime, ctime) are as
recorded is taken as unchanged without reading it, and only the others are hashed. Code in
the sandbox can set a file's mtime but not its ctime (the kernel sets it on every write,
rename or ``utime``), so a rewrite always shows. The seal lives in a deployer-only folder
(``<level>/seals/``), never bound into a sandbox. A symbolic link is recorded by its target
(a venv's ``bin/python`` is one), never followed; a FIFO or device breaks the seal.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
Entry = list[int | str]
"""A regular file: [inode, size, mtime_ns, ctime_ns, sha256]; a link: ["->", target]."""
Record = dict[str, Entry]


class Unsealable(Exception):
    """The folder holds something a seal cannot vouch for (a FIFO, a socket, a device)."""


def write_seal(folder: Path, seal: Path) -> None:
    """Record ``folder`` as it is now in ``seal``; reuses hashes of files unchanged since the
    last seal. A folder that cannot be sealed leaves no seal (the next build starts clean)."""
    old = _read(seal)
    seal.unlink(missing_ok=True)  # a crash below leaves no seal: the cache is not reused
    record: Record = {}
    try:
        for rel, entry in _walk(folder):
            before = old.get(rel)
            unwritten = before is not None and before[:4] == entry  # since the last seal
            record[rel] = before if unwritten and before else _complete(folder, rel, entry)
    except (Unsealable, OSError):
        return
    seal.parent.mkdir(parents=True, exist_ok=True)
    tmp = seal.with_name(f".{seal.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, separators=(",", ":")))
    os.replace(tmp, seal)


def broken_seal(folder: Path, seal: Path) -> str | None:
    """Why ``folder`` is not as its seal recorded it (or has no seal), None when it is."""
    if not seal.is_file():
        return "no seal from a finished build"
    recorded = _read(seal)
    try:
        present = dict(_walk(folder))
    except Unsealable as e:
        return str(e)
    except OSError as e:
        return f"cannot read it ({e.strerror})"
    if set(present) != set(recorded):
        extra = sorted(set(present) ^ set(recorded))
        return f"{extra[0]} was added or removed since the build that wrote it"
    for rel, entry in sorted(present.items()):
        if entry != recorded[rel][:4] and _completed_or_none(folder, rel, entry) != recorded[rel]:
            return f"{rel} changed since the build that wrote it"
    return None


def discard(folder: Path) -> None:
    """Empty ``folder`` (links in it are removed, never followed) and keep it."""
    if folder.is_symlink():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)  # fd-based: never follows a link inside
    folder.mkdir(parents=True, exist_ok=True)


def _read(seal: Path) -> Record:
    try:
        data = json.loads(seal.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _walk(folder: Path) -> list[tuple[str, Entry]]:
    """Every file and link below ``folder``: a link with its target, a regular file with its
    stat key (its hash is added by :func:`_complete`); Unsealable for anything else."""
    found: list[tuple[str, Entry]] = []
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(os.path.join(folder, rel)) as entries:
            for item in entries:
                path = f"{rel}/{item.name}" if rel else item.name
                st = item.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    pending.append(path)
                elif stat.S_ISLNK(st.st_mode):
                    found.append((path, ["->", os.readlink(item.path)]))
                elif stat.S_ISREG(st.st_mode):
                    found.append((path, [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]))
                else:
                    raise Unsealable(f"{path} is not a regular file, link or folder")
    return found


def _complete(folder: Path, rel: str, entry: Entry) -> Entry:
    """The full record of an entry from :func:`_walk`: a regular file gets its hash."""
    return entry if entry[0] == "->" else [*entry, _hash(folder, rel)]


def _completed_or_none(folder: Path, rel: str, entry: Entry) -> Entry | None:
    try:
        return _complete(folder, rel, entry)
    except (Unsealable, OSError):
        return None


def _hash(folder: Path, rel: str) -> str:
    """SHA-256 of ``folder/rel``, opened without following a link at any step."""
    fd = os.open(folder, _DIR)
    try:
        for part in rel.split("/")[:-1]:
            inner = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = inner
        file = os.open(rel.split("/")[-1], _FILE, dir_fd=fd)
    finally:
        os.close(fd)
    with os.fdopen(file, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise Unsealable(f"{rel} is not a regular file")
        return hashlib.file_digest(f, "sha256").hexdigest()
