"""What a target remembers about itself: release records, history, pins, locks.

Everything lives on the target (``<target>/.sitedeploy/``), so any machine that can reach a
target can answer "what is live?" and roll back. Targets only provide a tiny key-value
store of small files (:class:`MetaStore`); the records and their rules live here, once.

Files in the store:
    releases/<id>.json    the release record, written before the release can go live
    manifests/<id>.json   the release's manifest
    history.json          every deploy and rollback, oldest first; written after the switch
    control.json          pin, commits marked bad, suspension, agent bookkeeping
    lock.json             the deploy lock (owner, expiry)
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from ..errors import LockHeld, SitedeployError
from .manifest import Manifest

HISTORY_LIMIT = 1000
_HELD: set[str] = set()  # tokens of the locks this process holds right now
Action = Literal["deploy", "rollback", "recover"]


class MetaStore(Protocol):
    """Small files under the target's ``.sitedeploy/`` folder (or prefix)."""

    def read_meta(self, name: str) -> bytes | None: ...

    def write_meta(self, name: str, data: bytes) -> None:
        """Replace ``name`` atomically: a reader sees the old bytes or the new, never a mix."""

    def create_meta(self, name: str, data: bytes) -> bool:
        """Create ``name`` only if it does not exist; False if it does (used for locks)."""

    def delete_meta(self, name: str) -> None: ...


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def whoami() -> str:
    """``user@host`` of whoever runs this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class ReleaseRecord:
    id: str
    commit: str
    subject: str
    author: str
    committed_at: str
    created_at: str
    created_by: str
    build_key: str
    """Fingerprint of commit and build settings: an equal key means nothing to publish."""
    files: int
    bytes: int


@dataclass(frozen=True)
class HistoryEntry:
    action: Action
    commit: str
    subject: str
    author: str
    release: str
    deployed_at: str
    deployed_by: str
    added: int = 0
    changed: int = 0
    removed: int = 0
    note: str = ""


@dataclass(frozen=True)
class Mark:
    """Who did something to a target, when and why (pins, bad commits, suspensions)."""

    by: str
    at: str
    reason: str = ""
    commit: str = ""


@dataclass(frozen=True)
class Control:
    pin: Mark | None = None
    bad_commits: dict[str, Mark] = field(default_factory=dict)
    suspended: Mark | None = None
    agent: dict[str, Any] = field(default_factory=dict)
    """The agent's own bookkeeping (last attempted commit, last error)."""


def _load(data: bytes | None) -> Any:
    return json.loads(data) if data else None


def _dump(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True).encode() + b"\n"


def release_id(commit: str, when: float | None = None) -> str:
    """Sortable by creation time and readable: ``20261122T113000.123Z-1a2b3c4d``.

    Milliseconds keep two deploys in the same second in order (rollback picks by this order).
    """
    when = time.time() if when is None else when
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(when))
    return f"{stamp}.{int(when * 1000) % 1000:03d}Z-{commit[:8]}"


def read_release(store: MetaStore, rid: str) -> ReleaseRecord | None:
    raw = _load(store.read_meta(f"releases/{rid}.json"))
    return ReleaseRecord(**raw) if raw else None


def write_release(store: MetaStore, record: ReleaseRecord, manifest: Manifest) -> None:
    store.write_meta(f"manifests/{record.id}.json", manifest.to_json())
    store.write_meta(f"releases/{record.id}.json", _dump(dataclasses.asdict(record)))


def read_manifest(store: MetaStore, rid: str) -> Manifest | None:
    data = store.read_meta(f"manifests/{rid}.json")
    return Manifest.from_json(data) if data else None


def forget_release(store: MetaStore, rid: str) -> None:
    store.delete_meta(f"manifests/{rid}.json")
    store.delete_meta(f"releases/{rid}.json")


def read_history(store: MetaStore) -> list[HistoryEntry]:
    """Oldest first."""
    return [HistoryEntry(**e) for e in _load(store.read_meta("history.json")) or []]


def append_history(store: MetaStore, entry: HistoryEntry) -> None:
    entries = [dataclasses.asdict(e) for e in read_history(store)] + [dataclasses.asdict(entry)]
    store.write_meta("history.json", _dump(entries[-HISTORY_LIMIT:]))


def read_control(store: MetaStore) -> Control:
    raw = _load(store.read_meta("control.json")) or {}
    return Control(
        pin=Mark(**raw["pin"]) if raw.get("pin") else None,
        bad_commits={c: Mark(**m) for c, m in raw.get("bad_commits", {}).items()},
        suspended=Mark(**raw["suspended"]) if raw.get("suspended") else None,
        agent=raw.get("agent", {}),
    )


def write_control(store: MetaStore, control: Control) -> None:
    store.write_meta("control.json", _dump(dataclasses.asdict(control)))


# --- the deploy lock -------------------------------------------------------------------


@dataclass(frozen=True)
class LockInfo:
    owner: str
    pid: int
    acquired_at: float
    expires_at: float
    purpose: str = "deploy"
    token: str = ""
    """Random per acquisition: tells this process's live locks from ones it failed to release."""

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.acquired_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.owner} (pid {self.pid}, {self.purpose} since {since})"

    def is_stale(self, now: float) -> bool:
        if now >= self.expires_at:
            return True
        if self.owner != whoami():
            return False
        if self.pid == os.getpid():  # ours, but not held now: a release that failed (network)
            return self.token not in _HELD
        return not _pid_alive(self.pid)  # same machine and the process is gone


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def locked(
    store: MetaStore, target: str, *, purpose: str = "deploy", ttl: float = 3600, timeout: float = 0
) -> Iterator[LockInfo]:
    """Hold the target's lock for the block; released on success and on any exception."""
    mine = LockInfo(whoami(), os.getpid(), time.time(), time.time() + ttl, purpose, uuid.uuid4().hex)
    deadline = time.monotonic() + timeout
    while not store.create_meta("lock.json", _dump(dataclasses.asdict(mine))):
        holder = _read_lock(store)
        if holder is None or holder.is_stale(time.time()):
            store.delete_meta("lock.json")  # take over a lock whose owner is gone or expired
            continue
        if time.monotonic() >= deadline:
            raise LockHeld(
                f"target '{target}' is locked by {holder.describe()}; wait for it to finish "
                f"(or pass a larger lock_timeout), the lock expires by itself at "
                f"{datetime.fromtimestamp(holder.expires_at, UTC):%Y-%m-%dT%H:%M:%SZ}"
            )
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
    _HELD.add(mine.token)
    try:
        yield mine
    finally:
        _HELD.discard(mine.token)
        _release(store, mine)


def _release(store: MetaStore, mine: LockInfo) -> None:
    # A failure here must not hide the error that ended the block, nor turn a finished deploy
    # into a failure: a lock left behind is taken over as stale by the next run.
    with contextlib.suppress(SitedeployError):
        if _read_lock(store) == mine:
            store.delete_meta("lock.json")


def _read_lock(store: MetaStore) -> LockInfo | None:
    try:
        raw = _load(store.read_meta("lock.json"))
        return LockInfo(**raw) if raw else None
    except (ValueError, TypeError):  # a foreign or damaged lock file holds nothing
        return None
