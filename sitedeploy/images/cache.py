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
from typing import Any

import PIL

from .variants import EXTENSIONS, Outcome, Rendered, RenderSpec, Variant

SCHEMA = "images-v1"
_OUTCOME = "outcome.json"
_STALE_TMP_SECONDS = 3600
_CHUNK = 1024 * 1024


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
        self.root = root / SCHEMA

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def blob(self, key: str, variant: Variant) -> Path:
        return self.entry(key) / f"{variant.digest}.{EXTENSIONS[variant.format]}"

    def get(self, key: str) -> Outcome | None:
        """The cached outcome, or None on a miss or an unreadable entry (treated as a miss)."""
        meta = self.entry(key) / _OUTCOME
        try:
            outcome = _outcome_from_json(json.loads(meta.read_bytes()))
            os.utime(meta)  # mark as recently used for eviction
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if all(self.blob(key, v).is_file() for v in outcome.variants if not v.is_original):
            return outcome
        return None

    def put(self, key: str, rendered: Rendered) -> bool:
        """Store an entry: write everything to a temp folder, then rename it into place."""
        tmp = self.root / "tmp" / f"{key}.{os.getpid()}.{uuid.uuid4().hex}"
        try:
            tmp.mkdir(parents=True)
            for variant in rendered.outcome.variants:
                if not variant.is_original:
                    (tmp / f"{variant.digest}.{EXTENSIONS[variant.format]}").write_bytes(
                        rendered.blobs[variant.digest]
                    )
            (tmp / _OUTCOME).write_text(json.dumps(_outcome_to_json(rendered.outcome)))
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
        found = []
        for shard in _scandir(self.root):
            if shard.name == "tmp" or not shard.is_dir():
                continue
            for entry in _scandir(Path(shard.path)):
                files = list(_scandir(Path(entry.path)))
                size = sum(f.stat().st_size for f in files)
                used = max((f.stat().st_mtime for f in files if f.name == _OUTCOME), default=0.0)
                found.append((used, size, Path(entry.path)))
        return found

    def _sweep_tmp(self) -> None:
        """Remove temp folders left by a run that was killed mid-write."""
        limit = time.time() - _STALE_TMP_SECONDS
        for entry in _scandir(self.root / "tmp"):
            if entry.stat().st_mtime < limit:
                shutil.rmtree(entry.path, ignore_errors=True)


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []


def _outcome_to_json(outcome: Outcome) -> dict[str, Any]:
    return dataclasses.asdict(outcome)


def _outcome_from_json(raw: dict[str, Any]) -> Outcome:
    variants = tuple(Variant(**v) for v in raw["variants"])
    return Outcome(raw["status"], raw["width"], raw["height"], raw["fallback"], variants, raw["reason"])
