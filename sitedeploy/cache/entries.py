"""Shared-cache entries: one object per build, signed, fetched and checked before any use.

An entry is one object, so that it appears whole or not at all (one conditional create)::

    sitedeploy-cache 2\\n                  the format
    <length of the signature>\\n
    <ssh signature>                       over the listing
    <length of the listing>\\n
    <listing>                             "sitedeploy-cache-entries v2\\n" then "<key> <sha256 of
                                          its archive>\\n" for each entry signed together
    <archive>                             :mod:`.packing` (tar, zstd or gzip)

The entries one run writes (a deploy's builds, a CI job's ``build --push``) are signed
**together**: one listing of every (key, archive sha256) pair, one ``ssh-keygen -Y sign``,
and each entry carries that listing and its signature. A reader checks a listing's signature
once per process (:meth:`SharedCache.signer`) and then, for each entry, only that the
listing names this key with this archive's sha256: a second agent fetching the 300 sites
one CI job pushed runs ``ssh-keygen`` once, not 300 times, and trusts exactly what it
trusted before: a signature by a key of ``cache_allowed_signers`` binding this key to these
bytes.

A fetched entry is used only if, in this order: the object is at most ``limit`` bytes; its
listing names this key with the sha256 of its archive, and the listing's signature verifies
against ``cache_allowed_signers``; the archive unpacks by the untrusted-output rules; every
file matches the manifest inside. Anything else is a miss with a reason (the caller prints
one line and builds), never a partial use.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import signing
from .packing import BadEntry, pack, unpack
from .stores import Store, StoreError

MAGIC = b"sitedeploy-cache 2\n"
_MAX_SIGNATURE = 16 * 1024
_MAX_LISTING = 1024 * 1024
BATCH = 5000
"""The most entries one signature covers (a listing of about 650 KB)."""
_CREATES = 4


@dataclass(frozen=True)
class Fetched:
    """What a lookup found: ``ok`` (unpacked and checked), or a ``problem`` (None: no entry)."""

    ok: bool
    problem: str | None = None
    signer: str = ""


@dataclass(frozen=True)
class Packed:
    """A local entry packed for the shared cache, waiting to be signed with its run's others."""

    key: str
    archive: Path
    """In a temporary folder of its own beside the local entry, removed by :meth:`SharedCache.store`."""
    digest: str


@dataclass(frozen=True)
class SharedCache:
    store: Store
    allowed_signers: Path
    signing_key: Path | None
    limit: int
    """The most bytes an entry may have, packed or unpacked."""
    max_age_days: float = 30
    _signers: dict[bytes, str | None] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def fetch(self, key: str, dest: Path) -> Fetched:
        """Unpack the entry of ``key`` into ``dest`` (a fresh folder) if it exists and checks out."""
        with tempfile.TemporaryFile(dir=dest.parent) as raw:
            if not self.store.read(_name(key), raw, self.limit):
                return Fetched(False)
            raw.seek(0)
            try:
                signature, listing, start, digest = _open_envelope(raw)
            except BadEntry as exc:
                return Fetched(False, f"damaged entry ({exc})")
            signer = self.signer(listing, signature) if _lists(listing, key, digest) else None
            if signer is None:
                return Fetched(False, "not signed by a key in cache_allowed_signers for this build")
            raw.seek(start)
            try:
                unpack(raw, dest, self.limit)
            except BadEntry as exc:
                shutil.rmtree(dest, ignore_errors=True)
                return Fetched(False, f"damaged entry ({exc})")
        return Fetched(True, signer=signer)

    def signer(self, listing: bytes, signature: bytes) -> str | None:
        """Who signed ``listing`` (None: nobody listed in ``cache_allowed_signers``), asked of
        ``ssh-keygen`` once per listing and signature in this process."""
        seen = hashlib.sha256(b"%d\n" % len(signature) + signature + listing).digest()
        with self._lock:  # the other fetches of one run wait, then find the answer here
            if seen not in self._signers:
                self._signers[seen] = signing.verify(listing, signature, self.allowed_signers)
            return self._signers[seen]

    def push(self, key: str, entry: Path) -> bool:
        """Store the local entry ``entry`` under ``key``; False if one was there already."""
        packed = self.pack(key, entry)
        return packed is not None and self.store_signed([packed])[0]

    def pack(self, key: str, entry: Path) -> Packed | None:
        """``entry`` packed for :meth:`store_signed`; None if ``key`` is stored already (looked
        up first: packing costs more than the look-up)."""
        if self.signing_key is None:
            raise StoreError("no cache_signing_key: this machine cannot write the shared cache")
        if self.store.exists(_name(key)):
            return None
        tmp = Path(tempfile.mkdtemp(prefix=".push-", dir=entry.parent))
        try:
            with (tmp / "archive").open("wb") as out:
                pack(entry, out)
            return Packed(key, tmp / "archive", _sha256(tmp / "archive"))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def store_signed(self, packed: list[Packed]) -> list[bool]:
        """Sign ``packed`` together (one signature per :data:`BATCH`) and create each entry;
        whether each was stored (False: another writer had). Removes the packed archives."""
        try:
            stored: list[bool] = []
            for at in range(0, len(packed), BATCH):
                stored += self._store_batch(packed[at : at + BATCH])
            return stored
        finally:
            for one in packed:
                shutil.rmtree(one.archive.parent, ignore_errors=True)

    def _store_batch(self, batch: list[Packed]) -> list[bool]:
        if not batch:
            return []
        if self.signing_key is None:
            raise StoreError("no cache_signing_key: this machine cannot write the shared cache")
        listing = signing.listing((one.key, one.digest) for one in batch)
        try:
            signature = signing.sign(listing, self.signing_key)
        except OSError as exc:
            raise StoreError(f"cache_signing_key {self.signing_key}: {exc}") from None
        header = MAGIC + b"%d\n" % len(signature) + signature + b"%d\n" % len(listing) + listing

        def create(one: Packed) -> bool:
            envelope = one.archive.with_name("entry")
            with envelope.open("wb") as out, one.archive.open("rb") as body:
                out.write(header)
                shutil.copyfileobj(body, out)
            return self.store.create(_name(one.key), envelope)

        with ThreadPoolExecutor(min(_CREATES, len(batch)), thread_name_prefix="cache-create") as pool:
            return list(pool.map(create, batch))

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


def _lists(listing: bytes, key: str, digest: str) -> bool:
    """Whether ``listing`` names ``key`` with the archive sha256 ``digest``."""
    return f"\n{key} {digest}\n".encode() in listing and listing.startswith(signing.LISTING_HEAD)


def _open_envelope(raw: IO[bytes]) -> tuple[bytes, bytes, int, str]:
    """The signature, the listing, where the archive starts, and the archive's sha256."""
    if raw.read(len(MAGIC)) != MAGIC:
        raise BadEntry("not a sitedeploy cache entry of this format")
    signature = _counted(raw, _MAX_SIGNATURE, "signature")
    listing = _counted(raw, _MAX_LISTING, "listing")
    start = raw.tell()
    digest = hashlib.sha256()
    while chunk := raw.read(1024 * 1024):
        digest.update(chunk)
    return signature, listing, start, digest.hexdigest()


def _counted(raw: IO[bytes], most: int, what: str) -> bytes:
    line = raw.readline(16)
    if not line.endswith(b"\n") or not line[:-1].isdigit() or int(line) > most:
        raise BadEntry(f"bad {what} length")
    data = raw.read(int(line))
    if len(data) != int(line):
        raise BadEntry(f"{what} cut short")
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as body:
        while chunk := body.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
