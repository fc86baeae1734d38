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
(``<level>/seals/``), never bound into a sandbox. Links, FIFOs and devices in a sealed
folder are never followed or opened: they break the seal.
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
Record = dict[str, list[int | str]]
"""relative path -> [inode, size, mtime_ns, ctime_ns, sha256]"""


class Unsealable(Exception):
    """The folder holds something a seal cannot vouch for (a link, a FIFO, a device)."""


def write_seal(folder: Path, seal: Path, *, skip: tuple[str, ...] = ()) -> None:
    """Record ``folder`` as it is now in ``seal``; reuses hashes of files unchanged since the
    last seal. A folder that cannot be sealed leaves no seal (the next build starts clean)."""
    old = _read(seal)
    seal.unlink(missing_ok=True)  # a crash below leaves no seal: the cache is not reused
    record: Record = {}
    try:
        for rel, st in _walk(folder, skip):
            key, before = _key(st), old.get(rel)
            known = before is not None and before[:4] == key  # unwritten since the last seal
            record[rel] = [*key, before[4] if known and before else _hash(folder, rel)]
    except (Unsealable, OSError):
        return
    seal.parent.mkdir(parents=True, exist_ok=True)
    tmp = seal.with_name(f".{seal.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, separators=(",", ":")))
    os.replace(tmp, seal)


def broken_seal(folder: Path, seal: Path, *, skip: tuple[str, ...] = ()) -> str | None:
    """Why ``folder`` is not as its seal recorded it (or has no seal), None when it is."""
    if not seal.is_file():
        return "no seal from a finished build"
    recorded = _read(seal)
    try:
        present = dict(_walk(folder, skip))
    except Unsealable as e:
        return str(e)
    except OSError as e:
        return f"cannot read it ({e.strerror})"
    if set(present) != set(recorded):
        extra = sorted(set(present) ^ set(recorded))
        return f"{extra[0]} was added or removed since the build that wrote it"
    for rel, st in sorted(present.items()):
        if _key(st) != recorded[rel][:4] and _digest_or_none(folder, rel) != recorded[rel][4]:
            return f"{rel} changed since the build that wrote it"
    return None


def _digest_or_none(folder: Path, rel: str) -> str | None:
    try:
        return _hash(folder, rel)
    except (Unsealable, OSError):
        return None


def discard(folder: Path) -> None:
    """Empty ``folder`` (links in it are removed, never followed) and keep it."""
    if folder.is_symlink():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)  # fd-based: never follows a link inside
    folder.mkdir(parents=True, exist_ok=True)


def _key(st: os.stat_result) -> list[int | str]:
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _read(seal: Path) -> Record:
    try:
        data = json.loads(seal.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _walk(folder: Path, skip: tuple[str, ...]) -> list[tuple[str, os.stat_result]]:
    """Every regular file below ``folder`` with its lstat; Unsealable for anything else."""
    found: list[tuple[str, os.stat_result]] = []
    pending = [""]
    while pending:
        rel = pending.pop()
        for entry in os.scandir(folder / rel if rel else folder):
            path = f"{rel}/{entry.name}" if rel else entry.name
            if path in skip:
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                pending.append(path)
            elif stat.S_ISREG(st.st_mode):
                found.append((path, st))
            else:
                raise Unsealable(f"{path} is not a regular file or folder")
    return found


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
