"""The S3 target's small files under ``<prefix>.sitedeploy/``, and what may be served from memory.

A read sends If-None-Match with the ETag of the copy in memory, so an unchanged file costs a
request but no body. While this process holds the target's lock (from creating ``lock.json``
until deleting it), the files that are only ever written under that lock cannot change behind
its back: the state object, the history, release records and manifests, and the listing of
``releases/``. After one read or write under the lock, those are answered from memory with no
request at all. ``control.json`` (pins and suspensions are set without the lock) and
``lock.json`` itself (taken over when stale) always go to the bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from ...errors import LeaseLost
from .client import Clients, error_code

STATE_DIR = ".sitedeploy/"
"""Below the target's prefix: sitedeploy's own files; never site content."""
LOCK = "lock.json"
_UNDER_LOCK = ("live.json", "history.json", "releases/", "manifests/")
_MISSING = ("NoSuchKey", "404", "NotFound")
_EXISTS = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")

Errors = Callable[[str], AbstractContextManager[None]]


class MetaFiles:
    def __init__(self, clients: Clients, bucket: str, prefix: str, errors: Errors) -> None:
        self.clients = clients
        self.bucket = bucket
        self.prefix = prefix
        self._errors = errors
        self._cache: dict[str, tuple[str, bytes]] = {}
        """By name: (ETag, bytes) of the last version read or written."""
        self._current: set[str] = set()
        """Names whose copy in memory (or absence from it) is current: only while locked."""
        self._locked = False
        self._releases: set[str] | None = None
        self.written: set[str] = set()
        """Ids of the release records written under the current lock (by this process)."""

    def read(self, name: str) -> bytes | None:
        if name in self._current:
            cached = self._cache.get(name)
            return cached[1] if cached else None
        key = self.prefix + name
        cached = self._cache.get(name)
        with self._errors(f"read {key}"):
            try:
                extra = {"IfNoneMatch": cached[0]} if cached else {}
                response = self.clients.s3.get_object(Bucket=self.bucket, Key=key, **extra)  # type: ignore[arg-type]
            except Exception as exc:
                code = error_code(exc)
                if code in ("304", "NotModified") and cached:
                    self._settled(name)
                    return cached[1]
                if code in _MISSING:
                    self._cache.pop(name, None)
                    self._settled(name)
                    if name == LOCK:  # our lock is gone (expired and taken over)
                        self._reset(locked=False)
                    return None
                raise
            data: bytes = response["Body"].read()
            self._remember(name, response["ETag"], data)
            if name == LOCK and self._locked:  # someone took our (expired) lock over
                self._reset(locked=False)
            return data

    def read_with_metadata(self, name: str) -> tuple[bytes, dict[str, str]] | None:
        """The file and its user metadata (always from the bucket; used only after a crash)."""
        key = self.prefix + name
        with self._errors(f"read {key}"):
            try:
                response = self.clients.s3.get_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                if error_code(exc) in _MISSING:
                    return None
                raise
            return response["Body"].read(), dict(response.get("Metadata", {}))

    def write(
        self, name: str, data: bytes, metadata: dict[str, str] | None = None, *, fenced: bool = False
    ) -> None:
        """``fenced``: only over the version this process last read or wrote (``If-Match``, or
        ``If-None-Match: *`` when it saw none): the state object's write is the switch's commit
        point, and a run that lost its lease must not commit over the run that took it."""
        key = self.prefix + name
        extra: dict[str, Any] = {"Metadata": metadata} if metadata else {}
        if fenced:
            cached = self._cache.get(name)
            extra.update({"IfMatch": cached[0]} if cached else {"IfNoneMatch": "*"})
        with self._errors(f"write {key}"):
            try:
                response = self.clients.s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType="application/json",
                    CacheControl="no-store",
                    **extra,
                )
            except Exception as exc:
                if fenced and error_code(exc) in _EXISTS:
                    raise LeaseLost(
                        f"s3://{self.bucket}/{key} changed since this run read it: another run took "
                        "the lock over (and may have switched); this run stopped without writing it "
                        "(run again)"
                    ) from None
                raise
        self._remember(name, response["ETag"], data)
        self._listed(name, True)
        if name.startswith("releases/") and name.endswith(".json"):
            self.written.add(name[len("releases/") : -len(".json")])

    def create(self, name: str, data: bytes) -> bool:
        key = self.prefix + name
        with self._errors(f"create {key}"):
            try:  # If-None-Match: * makes S3 refuse the write when the key exists
                response = self.clients.s3.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType="application/json", IfNoneMatch="*"
                )
            except Exception as exc:
                if error_code(exc) in _EXISTS:
                    return False
                raise
        self._cache[name] = (response["ETag"], data)
        if name == LOCK:  # ours from now on: trust only what is read under it
            self._reset(locked=True)
        return True

    def delete(self, name: str) -> None:
        key = self.prefix + name
        if name == LOCK:  # trust nothing from here, even if the delete fails
            self._reset(locked=False)
        with self._errors(f"delete {key}"):
            self.clients.s3.delete_object(Bucket=self.bucket, Key=key)
        self._cache.pop(name, None)
        self._settled(name)
        self._listed(name, False)

    def releases(self, listing: Callable[[], list[str]]) -> list[str]:
        """Release ids; ``listing`` lists the bucket, once per lock."""
        if self._releases is not None:
            return sorted(self._releases)
        ids = listing()
        if self._locked:
            self._releases = set(ids)
        return ids

    def forget(self, name: str) -> None:
        """Drop the copy in memory (immutable files kept parsed elsewhere)."""
        self._cache.pop(name, None)
        self._current.discard(name)

    def _reset(self, *, locked: bool) -> None:
        self._locked, self._current, self._releases, self.written = locked, set(), None, set()

    def _remember(self, name: str, etag: str, data: bytes) -> None:
        self._cache[name] = (etag, data)
        self._settled(name)

    def _settled(self, name: str) -> None:
        if self._locked and name.startswith(_UNDER_LOCK):
            self._current.add(name)

    def _listed(self, name: str, exists: bool) -> None:
        if self._releases is None or not (name.startswith("releases/") and name.endswith(".json")):
            return
        rid = name[len("releases/") : -len(".json")]
        if exists:
            self._releases.add(rid)
        else:
            self._releases.discard(rid)
