"""A local build-cache entry as one archive, and back — the way back treating it as hostile.

An entry (``out/`` plus ``manifest.json``, ``summary.txt``, ``warnings.json``, ``path.txt``)
is packed as a tar with fixed owners, modes and times (so two machines pack the same build
to the same bytes), compressed with zstd level 3 (``zstandard``, a dependency: on a 20-page
MkDocs site 3-4 times faster to pack than gzip at level 1 and about 5 times faster to
unpack, and smaller: the cache is on the build's critical path); gzip level 1 only where
the module is missing. The reader recognises either by its magic number.

Unpacking applies the rules sandbox output is read by (:mod:`sitedeploy.sandbox.untrusted`):
only regular files and folders (no symlinks, hard links, devices or FIFOs), no absolute
names and no ``..``, no name twice, at most :data:`MAX_FILES` files and ``limit`` bytes in
all and :data:`~sitedeploy.sandbox.untrusted.MAX_FILE_BYTES` per file, written with
``O_EXCL | O_NOFOLLOW`` into a fresh folder the deployer made. Every file of ``out/`` is
hashed while it is written and must match the entry's own manifest, which must list no
more and no fewer files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import IO, Any

from ..release.manifest import Manifest, files
from ..sandbox.untrusted import MAX_FILE_BYTES

META_FILES = ("manifest.json", "summary.txt", "warnings.json", "path.txt")
"""What a cache entry holds beside ``out/`` (``stats.json`` is per machine: not shared)."""
MAX_FILES = 1_000_000
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"


class BadEntry(Exception):
    """An archive that breaks a rule: the entry is ignored, never used."""


def _zstd() -> Any:
    try:
        import zstandard  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return zstandard


def pack(entry: Path, into: IO[bytes]) -> None:
    """Write ``entry`` (a finished local cache entry) as a compressed tar to ``into``."""
    zstd = _zstd()
    if zstd is not None:
        with zstd.ZstdCompressor(level=3).stream_writer(into, closefd=False) as stream:
            _tar(entry, stream)
    else:
        with gzip.GzipFile(fileobj=into, mode="wb", compresslevel=1, mtime=0) as stream:
            _tar(entry, stream)


def _tar(entry: Path, stream: Any) -> None:
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in META_FILES:
            if (entry / name).is_file():
                _add(tar, entry / name, name)
        for rel, full, _ in sorted(files(entry / "out")):  # by descriptor, links refused
            _add(tar, full, f"out/{rel}")


def _add(tar: tarfile.TarFile, path: Path, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
    with path.open("rb") as body:
        tar.addfile(info, body)


def unpack(archive: IO[bytes], dest: Path, limit: int) -> Manifest:
    """Unpack into ``dest`` (a new, empty folder) and check ``out/`` against the manifest
    inside; raises :class:`BadEntry` naming the first broken rule."""
    try:
        with _decompressed(archive) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            digests = _extract(tar, dest, limit)
        manifest = Manifest.from_json((dest / "manifest.json").read_bytes())
    except (tarfile.TarError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise BadEntry(f"unreadable archive ({type(exc).__name__}: {exc})") from None
    if set(manifest) != set(digests):
        raise BadEntry("its files differ from its manifest")
    wrong = next((rel for rel, digest in sorted(digests.items()) if manifest[rel].sha256 != digest), None)
    if wrong is not None:
        raise BadEntry(f"out/{wrong} does not match its sha256 in the manifest")
    return manifest


def _decompressed(archive: IO[bytes]) -> Any:
    head = archive.read(4)
    archive.seek(-len(head), io.SEEK_CUR)
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=archive, mode="rb")
    zstd = _zstd()
    if head == _ZSTD_MAGIC and zstd is not None:
        return zstd.ZstdDecompressor().stream_reader(archive, closefd=False)
    raise BadEntry("not a gzip archive" + ("" if zstd else " (zstd entries need the 'zstandard' module)"))


def _extract(tar: tarfile.TarFile, dest: Path, limit: int) -> dict[str, str]:
    """Every member written under ``dest``; returns the sha256 of each file of ``out/``."""
    digests: dict[str, str] = {}
    made: set[Path] = set()  # folders already made: one mkdir per folder, not per file
    total = count = 0
    for member in tar:
        name = _checked_name(member.name)
        count += 1
        if count > MAX_FILES:
            raise BadEntry(f"more than {MAX_FILES} members")
        if member.isdir():
            if not name.startswith("out/") and name != "out":
                raise BadEntry(f"unexpected folder {name!r}")
            (dest / name).mkdir(parents=True, exist_ok=True)
            continue
        if not member.isreg():
            raise BadEntry(f"{name!r} is not a regular file (links and devices are refused)")
        if not name.startswith("out/") and name not in META_FILES:
            raise BadEntry(f"unexpected file {name!r}")
        total += member.size
        if member.size > MAX_FILE_BYTES or total > limit:
            raise BadEntry(f"larger than {limit} bytes unpacked")
        body = tar.extractfile(member)
        if body is None:
            raise BadEntry(f"{name!r} has no body")
        if (dest / name).parent not in made:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            made.add((dest / name).parent)
        digest = _write(body, dest / name, member.size)
        if name.startswith("out/"):
            digests[name[len("out/") :]] = digest
    return digests


def _checked_name(name: str) -> str:
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in name or "\0" in name:
        raise BadEntry(f"member name {name!r} is absolute or leaves the entry")
    return name


def _write(body: IO[bytes], path: Path, size: int) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as out:
        left = size
        while left > 0:
            chunk = body.read(min(left, 1024 * 1024))
            if not chunk:
                raise BadEntry(f"{path.name}: archive ends early")
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()
