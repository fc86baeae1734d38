"""Shared-cache entries: one object per build, signed, fetched and checked before any use.

An entry is one object, so that it appears whole or not at all (one conditional create)::

    sitedeploy-cache 1\\n                  the format
    <length of the signature>\\n
    <ssh signature>                       over  "sitedeploy-cache-entry v1 <key> <sha256 of archive>"
    <archive>                             :mod:`.packing` (tar, zstd or gzip)

A fetched entry is used only if, in this order: the object is at most ``limit`` bytes; its
signature verifies against ``cache_allowed_signers`` for *this* key; the archive unpacks by
the untrusted-output rules; every file matches the manifest inside. Anything else is a miss
with a reason (the caller prints one line and builds), never a partial use.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import signing
from .packing import BadEntry, pack, unpack
from .stores import Store, StoreError

MAGIC = b"sitedeploy-cache 1\n"
_MAX_SIGNATURE = 16 * 1024


@dataclass(frozen=True)
class Fetched:
    """What a lookup found: ``ok`` (unpacked and checked), or a ``problem`` (None: no entry)."""

    ok: bool
    problem: str | None = None
    signer: str = ""


@dataclass(frozen=True)
class SharedCache:
    store: Store
    allowed_signers: Path
    signing_key: Path | None
    limit: int
    """The most bytes an entry may have, packed or unpacked."""
    max_age_days: float = 30

    def fetch(self, key: str, dest: Path) -> Fetched:
        """Unpack the entry of ``key`` into ``dest`` (a fresh folder) if it exists and checks out."""
        with tempfile.TemporaryFile(dir=dest.parent) as raw:
            if not self.store.read(_name(key), raw, self.limit):
                return Fetched(False)
            raw.seek(0)
            try:
                signature, start, digest = _open_envelope(raw)
            except BadEntry as exc:
                return Fetched(False, f"damaged entry ({exc})")
            signer = signing.verify(signing.message(key, digest), signature, self.allowed_signers)
            if signer is None:
                return Fetched(False, "not signed by a key in cache_allowed_signers for this build")
            raw.seek(start)
            try:
                unpack(raw, dest, self.limit)
            except BadEntry as exc:
                shutil.rmtree(dest, ignore_errors=True)
                return Fetched(False, f"damaged entry ({exc})")
        return Fetched(True, signer=signer)

    def push(self, key: str, entry: Path) -> bool:
        """Store the local entry ``entry`` under ``key``; False if one was there already
        (looked up first: packing and signing cost more than the look-up)."""
        if self.signing_key is None:
            raise StoreError("no cache_signing_key: this machine cannot write the shared cache")
        if self.store.exists(_name(key)):
            return False
        with tempfile.TemporaryDirectory(prefix=".push-", dir=entry.parent) as tmp:
            archive, envelope = Path(tmp) / "archive", Path(tmp) / "entry"
            with archive.open("wb") as out:
                pack(entry, out)
            digest = _sha256(archive)
            try:
                signature = signing.sign(signing.message(key, digest), self.signing_key)
            except OSError as exc:
                raise StoreError(f"cache_signing_key {self.signing_key}: {exc}") from None
            with envelope.open("wb") as out, archive.open("rb") as body:
                out.write(MAGIC + b"%d\n" % len(signature) + signature)
                shutil.copyfileobj(body, out)
            return self.store.create(_name(key), envelope)

    def evict(self, now: float | None = None) -> int:
        """Delete entries written more than ``max_age_days`` ago; how many went. Safe while
        others read: see :mod:`.stores`."""
        if self.max_age_days <= 0:
            return 0
        cutoff = (time.time() if now is None else now) - self.max_age_days * 86400
        old = [name for name, written in self.store.entries() if written < cutoff]
        for name in old:
            self.store.delete(name)
        return len(old)


def _name(key: str) -> str:
    return f"{key}.entry"


def _open_envelope(raw: IO[bytes]) -> tuple[bytes, int, str]:
    """The signature, where the archive starts, and the archive's sha256."""
    if raw.read(len(MAGIC)) != MAGIC:
        raise BadEntry("not a sitedeploy cache entry of this format")
    line = raw.readline(16)
    if not line.endswith(b"\n") or not line[:-1].isdigit() or int(line) > _MAX_SIGNATURE:
        raise BadEntry("bad signature length")
    signature = raw.read(int(line))
    start = raw.tell()
    digest = hashlib.sha256()
    while chunk := raw.read(1024 * 1024):
        digest.update(chunk)
    return signature, start, digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as body:
        while chunk := body.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
