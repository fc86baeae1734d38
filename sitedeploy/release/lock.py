"""The target's deploy lock: a short lease, renewed by its holder while it works.

The lock is ``lock.json`` in the target's state store, created with the store's exclusive
create (``create_meta``). It names its owner (``user@host``), pid, purpose, when it was taken
and when it was last renewed, and when the lease ends (``expires_at``).

- **Lease**: the holder renews it every ``ttl / 3`` seconds from a heartbeat thread (so a long
  upload keeps it too), each renewal a read-compare-write of ``lock.json`` under its random
  token. A holder whose lock was replaced, or that could not renew before its lease ran out,
  has *lost* it: :meth:`Lease.check` raises :class:`~sitedeploy.errors.LeaseLost`, and the
  transaction calls it just before its one irreversible step (the switch), so a holder that
  was paused, cut off or too slow never switches over the run that took its place.
- **Takeover**: a lock whose lease ran out (``expires_at`` passed), whose process died on this
  machine, or that this process failed to release (a network error at release) is taken over
  by the next run, from any machine; :attr:`Lease.took_over` names the holder it replaced, so
  the transaction can say so in history. A dead holder thus blocks others for at most its TTL
  plus one renewal interval.
- **Clocks**: ``expires_at`` is wall-clock time, so machines that deploy to one target need
  clocks in step (NTP) to well within the TTL; a holder also stops trusting its lease a tenth
  of a TTL before it ends by its own clock.
- **Fence**: the transaction checks its lease just before the switch, and the targets close
  the moment between that check and the switch: a local target checks the lease token
  (:func:`fence`) under the ``flock`` that every change of ``lock.json`` takes, around the
  ``rename(2)`` that switches; each SSH host checks the token and renames in one script on
  the host (:func:`held_tokens`); on S3 the state object's write (the commit point) and every
  renewal carry ``If-Match`` of what this run last saw (``targets/s3/meta.py``). A renewal is
  a compare-and-swap too where the store offers ``renew_lock`` (local: under the ``flock``;
  SSH: one script per host), so it never overwrites a lock that another run took.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import LeaseLost, LockHeld, SitedeployError
from .records import MetaStore, dump, load, whoami

log = logging.getLogger(__name__)
LOCK = "lock.json"
DEFAULT_TTL = 60.0
_HELD: set[str] = set()  # tokens of the locks this process holds right now


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LockInfo:
    owner: str
    pid: int
    acquired_at: float
    expires_at: float
    purpose: str = "deploy"
    token: str = ""
    """Random per acquisition: tells this process's live locks from ones it failed to release."""
    renewed_at: float = 0.0
    """When the holder last renewed the lease (0 in locks written before leases)."""
    ttl: float = 0.0

    def describe(self) -> str:
        return f"{self.owner} (pid {self.pid}, {self.purpose} since {_iso(self.acquired_at)})"

    def details(self, now: float) -> str:
        """Everything ``unlock`` and ``status`` show: who, pid, purpose, since, last renewal."""
        renewed = self.renewed_at or self.acquired_at
        state = "expired" if now >= self.expires_at else f"lease ends in {self.expires_at - now:.0f}s"
        return f"{self.describe()}, last renewed {_iso(renewed)} ({now - renewed:.0f}s ago), {state}"

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


class Lease:
    """A held lock: renewed by a heartbeat thread until released; checked before a switch."""

    def __init__(
        self, store: MetaStore, beat_store: MetaStore, target: str, info: LockInfo, took_over: LockInfo | None
    ) -> None:
        self.store, self.beat_store, self.target = store, beat_store, target
        self.info, self.took_over = info, took_over
        self.trusted_until = info.expires_at - info.ttl / 10
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{target}", daemon=True)

    @property
    def owner(self) -> str:
        return self.info.owner

    @property
    def token(self) -> str:
        return self.info.token

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless this lease is still the target's current lock."""
        if self.lost is None and time.time() >= self.trusted_until:
            self.lost = f"its lease ran out at {_iso(self.info.expires_at)} before it could renew"
        if self.lost is None:
            current = read_lock(self.store)
            if current is None or current.token != self.token:
                self.lost = "it was taken over by " + (current.describe() if current else "nobody (removed)")
        if self.lost is not None:
            raise LeaseLost(
                f"target '{self.target}': this run lost its lock ({self.lost}); nothing was switched. "
                "Check 'sitedeploy status' and run again"
            )

    # --- heartbeat -------------------------------------------------------------------------

    def start(self) -> None:
        if self.info.ttl > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.info.ttl / 3):
            if self.lost is not None:
                return
            try:
                self._renew()
            except LeaseLost as exc:  # a store that renews conditionally saw the lock replaced
                self.lost = f"its renewal was refused ({exc.message})"
            except SitedeployError as exc:  # a blip: try again until the lease runs out
                log.warning("%s (renewing the lock; retried)", exc.message)

    def _renew(self) -> None:
        started = time.time()
        if started >= self.trusted_until:
            self.lost = f"its lease ran out at {_iso(self.info.expires_at)} before it could renew"
            return
        current = read_lock(self.beat_store)
        if current is None or current.token != self.token:
            self.lost = "it was taken over by " + (current.describe() if current else "nobody (removed)")
            return
        renewed = dataclasses.replace(self.info, renewed_at=started, expires_at=started + self.info.ttl)
        data = dump(dataclasses.asdict(renewed))
        swap = getattr(self.beat_store, "renew_lock", None)  # compare-and-swap where the store can
        if callable(swap) and not swap(self.token, data):
            self.lost = "it was taken over (the lock no longer holds this run's token)"
            return
        if not callable(swap):
            self.beat_store.write_meta(LOCK, data)
        self.info, self.trusted_until = renewed, renewed.expires_at - renewed.ttl / 10


def held_tokens() -> list[str]:
    """Tokens of the leases this process holds now (a target's fenced switch checks them)."""
    return sorted(_HELD)


def token_of(raw: bytes | None) -> str | None:
    """The token of a lock file's bytes (None: no lock, or a foreign or damaged file)."""
    holder = _parse(raw)
    return holder.token if holder else None


def fence(target: str, raw: bytes | None) -> None:
    """Raise :class:`LeaseLost` unless ``raw`` (the lock file as read under the store's own
    guard, just before an irreversible step) is a lease this process holds now."""
    holder = _parse(raw)
    if holder is not None and holder.token in _HELD:
        return
    who = holder.describe() if holder else "nobody (it was removed)"
    raise LeaseLost(
        f"target '{target}': this run lost its lock (it is held by {who}); nothing was switched. "
        "Check 'sitedeploy status' and run again"
    )


def _lease_store(store: MetaStore) -> MetaStore:
    """The store the heartbeat thread renews through: its own connection where the target's
    is not safe to share between threads (SSH's SFTP session)."""
    make = getattr(store, "lease_store", None)
    return make() if callable(make) else store


@contextmanager
def locked(
    store: MetaStore,
    target: str,
    *,
    purpose: str = "deploy",
    ttl: float = DEFAULT_TTL,
    timeout: float = 0,
) -> Iterator[Lease]:
    """Hold the target's lock for the block; released on success and on any exception."""
    mine, took_over = _acquire(store, target, purpose, ttl, timeout)
    beat_store = _lease_store(store)
    lease = Lease(store, beat_store, target, mine, took_over)
    _HELD.add(mine.token)
    lease.start()
    try:
        yield lease
    finally:
        lease.stop()
        _HELD.discard(mine.token)
        _release(store, lease.info)
        if beat_store is not store:
            with contextlib.suppress(SitedeployError):
                _close(beat_store)


def _close(store: Any) -> None:
    store.close()


def _fresh(purpose: str, ttl: float, token: str) -> LockInfo:
    now = time.time()
    return LockInfo(whoami(), os.getpid(), now, now + ttl, purpose, token, now, ttl)


def _acquire(
    store: MetaStore, target: str, purpose: str, ttl: float, timeout: float
) -> tuple[LockInfo, LockInfo | None]:
    """Create the lock, taking over a stale one: the lock as written (its lease starts at the
    attempt that succeeded, not when this run began to wait) and the holder it replaced."""
    deadline = time.monotonic() + timeout
    token = uuid.uuid4().hex
    took_over: LockInfo | None = None
    while not store.create_meta(LOCK, dump(dataclasses.asdict(mine := _fresh(purpose, ttl, token)))):
        holder = read_lock(store)
        if holder is None or holder.is_stale(time.time()):
            store.delete_meta(LOCK)  # take over a lock whose owner is gone or whose lease ran out
            took_over = holder or took_over
            continue
        if time.monotonic() >= deadline:
            raise LockHeld(
                f"target '{target}' is locked by {holder.describe()}; wait for it to finish "
                f"(or pass --lock-timeout SECONDS); its lease ends by itself at "
                f"{_iso(holder.expires_at)} unless renewed ('sitedeploy unlock' shows it)"
            )
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
    return mine, took_over


def _release(store: MetaStore, mine: LockInfo) -> None:
    # A failure here must not hide the error that ended the block, nor turn a finished deploy
    # into a failure: a lock left behind is taken over as stale by the next run.
    with contextlib.suppress(SitedeployError):
        held = read_lock(store)
        if held is not None and held.token == mine.token:
            store.delete_meta(LOCK)


def read_lock(store: MetaStore) -> LockInfo | None:
    """The target's lock as it is now, or None (no lock, or a foreign or damaged file)."""
    return _parse(store.read_meta(LOCK))


def _parse(data: bytes | None) -> LockInfo | None:
    try:
        raw = load(data)
        return LockInfo(**raw) if isinstance(raw, dict) else None
    except (ValueError, TypeError):  # a foreign or damaged lock file holds nothing
        return None


_read_lock = read_lock  # the reliability suite's name for it


def break_lock(store: MetaStore, target: str, *, force: bool) -> LockInfo | None:
    """Remove the target's lock (``sitedeploy unlock``); refused while its lease is fresh
    unless ``force``. The holder removed, or None when there was no lock."""
    holder = read_lock(store)
    if holder is None:
        if store.read_meta(LOCK) is not None:  # unreadable: nothing holds it, remove it
            store.delete_meta(LOCK)
        return None
    if not holder.is_stale(time.time()) and not force:
        raise LockHeld(
            f"target '{target}' is locked by {holder.details(time.time())}; its lease is fresh, so "
            "its holder is probably still working. Wait, or pass --force if you know it is gone"
        )
    store.delete_meta(LOCK)
    return holder
