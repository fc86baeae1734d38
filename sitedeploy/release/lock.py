"""The target's deploy lock: one holder at a time, taken over when its holder is gone.

The lock is ``lock.json`` in the target's state store, created with the store's exclusive
create (``create_meta``). It names its owner, pid, purpose and expiry, so a message can say who
holds it, and a lock whose process died, whose expiry passed, or that this process failed to
release (a network error at release) is taken over by the next run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import LockHeld, SitedeployError
from .records import MetaStore, dump, load, whoami

_HELD: set[str] = set()  # tokens of the locks this process holds right now


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
    while not store.create_meta("lock.json", dump(dataclasses.asdict(mine))):
        holder = _read_lock(store)
        if holder is None or holder.is_stale(time.time()):
            store.delete_meta("lock.json")  # take over a lock whose owner is gone or expired
            continue
        if time.monotonic() >= deadline:
            raise LockHeld(
                f"target '{target}' is locked by {holder.describe()}; wait for it to finish "
                f"(or pass --lock-timeout SECONDS), the lock expires by itself at "
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
        raw = load(store.read_meta("lock.json"))
        return LockInfo(**raw) if raw else None
    except (ValueError, TypeError):  # a foreign or damaged lock file holds nothing
        return None
