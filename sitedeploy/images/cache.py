"""A persistent, content-addressed store of rendered variants, shared by every site and commit.

Layout under the cache folder::

    images-v1/<key[:2]>/<key>/outcome.json      what became of the source (variants or error)
    images-v1/<key[:2]>/<key>/<digest>.<ext>     the encoded variants
    images-v1/tmp/                               entries being written

``key`` is the SHA-256 of the source bytes and the :class:`RenderSpec`, so a renamed, moved or
re-committed image is a hit and a changed setting is a miss. An entry is written into ``tmp/``
and renamed into place in one step, so a run killed half-way leaves either a complete entry or
none (stale temp folders are swept on the next write). Entries are immutable; a hit touches
``outcome.json``'s mtime, which is what least-recently-used eviction sorts by.

Entries are written (:meth:`VariantCache.put`) and evicted only by the image worker, inside
the sandbox; the deployer only reads them (:meth:`~VariantCache.get`, :meth:`~VariantCache.open_blob`),
and treats what it reads as planted: no link is followed (:mod:`.safefs`), ``outcome.json``
is checked field by field (:mod:`.wire`), and a variant file must have the recorded size and
hash to the digest it is named by (else the entry is a miss and is rendered again). Each
trust level has its own cache (:func:`sitedeploy.build.trust_dir`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import PIL  # the package only, for its version: PIL.Image is never imported here

from .model import EXTENSIONS, Outcome, Rendered, RenderSpec, Variant
from .safefs import open_regular
from .wire import KEY, outcome_from_json, outcome_to_json

SCHEMA = "images-v1"
_OUTCOME = "outcome.json"
_STALE_TMP_SECONDS = 3600
_CHUNK = 1024 * 1024
_MAX_OUTCOME_BYTES = 4 * 1024 * 1024


def cache_key(data: bytes, spec: RenderSpec) -> str:
    """Content address of a source under a spec; the Pillow version is part of it."""
    digest = _key_hash(spec)
    digest.update(data)
    return digest.hexdigest()


def file_cache_key(path: Path, spec: RenderSpec) -> str:
    """:func:`cache_key` of a file's bytes, read in chunks: memory stays flat whatever its size."""
    digest = _key_hash(spec)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _key_hash(spec: RenderSpec) -> hashlib._Hash:
    settings = dataclasses.replace(spec, avif_threads=0)  # threads never change the bytes
    header = json.dumps([SCHEMA, PIL.__version__, dataclasses.asdict(settings)], sort_keys=True)
    return hashlib.sha256(header.encode() + b"\0")


class VariantCache:
    """Read and write cache entries; every method is safe to call from several processes."""

    def __init__(self, root: Path) -> None:
        self.base = root
        self.root = root / SCHEMA
        self._verified: dict[tuple[str, str], list[int]] = {}
        """(key, digest) -> the stat of the blob whose bytes were last found to match."""

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def blob(self, key: str, variant: Variant) -> Path:
        return self.entry(key) / _blob_name(variant)

    def get(self, key: str) -> Outcome | None:
        """The cached outcome, or None on a miss or an entry that is unreadable, malformed, or
        whose variant files are missing or of another size (each treated as a miss)."""
        try:
            fd = open_regular(self.base, _parts(key, _OUTCOME))
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size > _MAX_OUTCOME_BYTES:
                return None
            outcome = outcome_from_json(json.loads(os.read(fd, _MAX_OUTCOME_BYTES)))
            os.utime(fd)  # mark as recently used for eviction
        except (OSError, ValueError):  # WireError and JSON errors are ValueErrors
            return None
        finally:
            os.close(fd)
        if all(self._intact(key, v) for v in outcome.variants if not v.is_original):
            return outcome
        return None

    def _intact(self, key: str, variant: Variant) -> bool:
        try:
            fd = self.open_blob(key, variant)
        except OSError:
            return False
        os.close(fd)
        return True

    def open_blob(self, key: str, variant: Variant) -> int:
        """A descriptor on the variant's file, checked as :meth:`get` checks it; OSError if
        it is not a regular file of the recorded size reached without links, or its bytes
        do not hash to the digest it is named by."""
        fd = open_regular(self.base, _parts(key, _blob_name(variant)))
        st = os.fstat(fd)
        if st.st_size != variant.size or not self._hashes_to_digest(fd, st, key, variant):
            os.close(fd)
            raise OSError(f"{self.blob(key, variant)} is not the {variant.size} bytes it was written as")
        return fd

    def _hashes_to_digest(self, fd: int, st: os.stat_result, key: str, variant: Variant) -> bool:
        """Whether the blob's SHA-256 starts with its digest. Read once per version of the
        file: a blob whose (inode, size, mtime, ctime) are those last verified is unchanged
        (the worker can set an mtime, never a ctime), so :meth:`get` and the copy into the
        site hash it once between them."""
        stamp = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        if self._verified.get((key, variant.digest)) == stamp:
            return True
        with os.fdopen(os.dup(fd), "rb") as f:
            same = hashlib.file_digest(f, "sha256").hexdigest().startswith(variant.digest)
        os.lseek(fd, 0, os.SEEK_SET)
        if same:
            self._verified[(key, variant.digest)] = stamp
        return same

    def put(self, key: str, rendered: Rendered) -> bool:
        """Store an entry: write everything to a temp folder, then rename it into place."""
        tmp = self.root / "tmp" / f"{key}.{os.getpid()}.{uuid.uuid4().hex}"
        try:
            tmp.mkdir(parents=True)
            for variant in rendered.outcome.variants:
                if not variant.is_original:
                    (tmp / _blob_name(variant)).write_bytes(rendered.blobs[variant.digest])
            (tmp / _OUTCOME).write_text(json.dumps(outcome_to_json(rendered.outcome)))
            final = self.entry(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists() and self.get(key) is None:  # a damaged entry: replace it
                shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
            return True
        except OSError:
            # Another process renamed the same entry first (same key = same content), or the
            # disk is full: either way the build goes on without caching this image.
            shutil.rmtree(tmp, ignore_errors=True)
            return self.get(key) is not None

    def evict(self, max_bytes: int) -> int:
        """Delete least-recently-used entries until the cache fits; returns entries deleted."""
        self._sweep_tmp()
        entries = sorted(self._entries(), key=lambda e: e[0])
        total = sum(size for _, size, _ in entries)
        deleted = 0
        for _, size, path in entries:
            if total <= max_bytes:
                break
            shutil.rmtree(path, ignore_errors=True)
            total -= size
            deleted += 1
        return deleted

    def _entries(self) -> list[tuple[float, int, Path]]:
        """(last use, size, folder) of every entry; links are never followed (a planted link
        to a folder outside the cache must not make eviction delete there)."""
        found = []
        for shard in _scandir(self.root):
            if shard.name == "tmp" or not shard.is_dir(follow_symlinks=False):
                continue
            for entry in _scandir(Path(shard.path)):
                if not entry.is_dir(follow_symlinks=False):
                    continue
                files = [(f.name, f.stat(follow_symlinks=False)) for f in _scandir(Path(entry.path))]
                size = sum(st.st_size for _, st in files)
                used = max((st.st_mtime for name, st in files if name == _OUTCOME), default=0.0)
                found.append((used, size, Path(entry.path)))
        return found

    def _sweep_tmp(self) -> None:
        """Remove temp folders left by a run that was killed mid-write."""
        limit = time.time() - _STALE_TMP_SECONDS
        for entry in _scandir(self.root / "tmp"):
            if entry.stat(follow_symlinks=False).st_mtime < limit:
                shutil.rmtree(entry.path, ignore_errors=True)  # refuses links itself


def _parts(key: str, name: str) -> list[str]:
    """The path of ``name`` in ``key``'s entry, below the cache folder; OSError for a key that
    is not a SHA-256 (it would name no entry)."""
    if not KEY.fullmatch(key):
        raise OSError(f"not a cache key: {key!r}")
    return [SCHEMA, key[:2], key, name]


def _blob_name(variant: Variant) -> str:
    return f"{variant.digest}.{EXTENSIONS[variant.format]}"


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    """The entries of a real folder; nothing for a link, a file or a missing path."""
    if path.is_symlink():
        return []
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []
