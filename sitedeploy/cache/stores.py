"""Where shared-cache entries live: a folder (a shared disk, NFS) or an S3 bucket.

A store knows five things: read an entry, whether one exists, create one **only if it does not
exist yet**, list entries with their age, delete one. The conditional create is what lets any number of
writers race on the same key: exactly one wins, the others find it taken and move on (a key
names byte-identical builds, so whose copy wins does not matter). A folder creates by
``link(2)`` of a finished temporary file, which fails if the name exists; S3 by
``PutObject`` with ``If-None-Match: *``.

Eviction deletes whole entries. A reader that already opened an entry keeps reading it (a
folder: the open descriptor outlives the name; S3: a GET in flight is served whole), and a
reader that comes after finds nothing and builds: eviction never hands out half an entry.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

LAYOUT = "v1"
"""The folder (key prefix) entries of this format live under."""
_CHUNK = 1024 * 1024


class StoreError(Exception):
    """The store failed (unreachable, denied, full): one line, no credentials."""


class TooLarge(StoreError):
    """An entry is larger than the cap: treated as damaged, never read further."""


class Store(Protocol):
    where: str
    """The store as shown in messages (``s3://bucket/prefix/`` or a folder)."""

    def read(self, name: str, into: BinaryIO, limit: int) -> bool:
        """Copy entry ``name`` into ``into``; False if there is none."""

    def exists(self, name: str) -> bool:
        """Whether ``name`` is there: a writer skips packing and signing a build already stored
        (a hint only: :meth:`create` stays the one check that counts)."""

    def create(self, name: str, data: Path) -> bool:
        """Store ``data`` as ``name`` unless that exists; False if it did (another writer won)."""

    def entries(self) -> Iterator[tuple[str, float]]:
        """Every entry's name and when it was written (seconds since the epoch)."""

    def delete(self, name: str) -> None:
        """Remove ``name``; a missing one is not an error."""


def open_store(url: str, endpoint_url: str | None, base: Path) -> Store:
    """``s3://bucket/prefix/`` or a folder path (relative to ``base``)."""
    if url.startswith("s3://"):
        from ..targets.s3.cache_store import S3Store  # boto3 only when a bucket is used

        bucket, _, prefix = url[len("s3://") :].partition("/")
        return S3Store(bucket, prefix, endpoint_url)
    return FolderStore((base / Path(url).expanduser()).resolve())


def copy_limited(source: BinaryIO, into: BinaryIO, limit: int, where: str) -> None:
    """Copy at most ``limit`` bytes; more means a damaged or hostile entry."""
    total = 0
    while chunk := source.read(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"{where}: larger than {limit} bytes")
        into.write(chunk)


class FolderStore:
    """Entries as files in ``<root>/v1/``; new ones written under ``<root>/.tmp/`` first."""

    def __init__(self, root: Path) -> None:
        self.root, self.where = root, str(root)
        self._entries, self._tmp = root / LAYOUT, root / ".tmp"

    def read(self, name: str, into: BinaryIO, limit: int) -> bool:
        try:
            fd = os.open(self._entries / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"{self.where}: cannot read {name} ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as source:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoreError(f"{self.where}: {name} is not a regular file")
            copy_limited(source, into, limit, f"{self.where}/{name}")
        return True

    def exists(self, name: str) -> bool:
        try:
            return os.path.lexists(self._entries / name)
        except OSError as exc:
            raise StoreError(f"{self.where}: cannot look up {name} ({exc.strerror})") from None

    def create(self, name: str, data: Path) -> bool:
        try:
            self._entries.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
            tmp = self._tmp / f"{name}.{secrets.token_hex(8)}"
            with data.open("rb") as source, open(tmp, "xb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise StoreError(f"{self.where}: cannot write {name} ({exc.strerror})") from None
        try:
            os.link(tmp, self._entries / name)  # fails if the name exists: the conditional create
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            raise StoreError(f"{self.where}: cannot write {name} ({exc.strerror})") from None
        finally:
            tmp.unlink(missing_ok=True)

    def entries(self) -> Iterator[tuple[str, float]]:
        self._sweep_tmp()
        try:
            found = list(os.scandir(self._entries))
        except FileNotFoundError:
            return
        for entry in found:
            try:
                yield entry.name, entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue  # another evictor got there first

    def delete(self, name: str) -> None:
        try:
            (self._entries / name).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.where}: cannot delete {name} ({exc.strerror})") from None

    def _sweep_tmp(self) -> None:
        """Temporary files a crashed writer left, a day after they were begun."""
        try:
            found = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return
        for entry in found:
            try:
                if time.time() - entry.stat(follow_symlinks=False).st_mtime > 86400:
                    os.unlink(entry.path)
            except OSError:
                continue
