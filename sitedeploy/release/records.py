"""What a target remembers about itself: release records, history, pins, locks.

Everything lives on the target (``<target>/.sitedeploy/``), so any machine that can reach a
target can answer "what is live?" and roll back. Targets only provide a tiny key-value
store of small files (:class:`MetaStore`); the records and their rules live here, once.

Files in the store:
    releases/<id>.json    the release record, written before the release can go live
    manifests/<id>.json   the release's manifest
    history.json          every deploy and rollback, oldest first; written after the switch
    control.json          pin, commits marked bad, suspension, agent bookkeeping
    lock.json             the deploy lock (owner, expiry; see .lock)
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from ..errors import TargetError
from .manifest import Manifest

HISTORY_LIMIT = 1000
Action = Literal["deploy", "rollback", "recover", "repair"]


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


def load(data: bytes | None) -> Any:
    return json.loads(data) if data else None


_ADVICE = {
    "history.json": "the next run starts a new history with the live release",
    "control.json": "pins, suspensions and bad marks are then forgotten",
}


def load_meta(store: MetaStore, name: str) -> Any:
    """A state file parsed, or a one-line TargetError naming it (truncated, hand-edited)."""
    data = store.read_meta(name)
    try:
        return load(data)
    except ValueError as exc:
        raise damaged(store, name, exc) from None


def damaged(store: MetaStore, name: str, exc: Exception) -> TargetError:
    where = f"target '{getattr(store, 'name', '?')}'"
    if hasattr(store, "describe"):
        where += f" ({store.describe()})"
    advice = _ADVICE.get(name, "that release can no longer be rolled back to")
    return TargetError(
        f"{where}: state file .sitedeploy/{name} is damaged ({type(exc).__name__}: {exc}); move it "
        f"aside and run again ({advice})",
        retryable=False,
    )


def dump(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True).encode() + b"\n"


def release_id(commit: str, when: float | None = None) -> str:
    """Sortable by creation time and readable: ``20261122T113000.123Z-1a2b3c4d``.

    Milliseconds keep two deploys in the same second in order (rollback picks by this order).
    """
    when = time.time() if when is None else when
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(when))
    return f"{stamp}.{int(when * 1000) % 1000:03d}Z-{commit[:8]}"


def read_release(store: MetaStore, rid: str) -> ReleaseRecord | None:
    raw = load_meta(store, f"releases/{rid}.json")
    return ReleaseRecord(**raw) if raw else None


def write_release(store: MetaStore, record: ReleaseRecord, manifest: Manifest) -> None:
    store.write_meta(f"manifests/{record.id}.json", manifest.to_json())
    store.write_meta(f"releases/{record.id}.json", dump(dataclasses.asdict(record)))


def read_manifest(store: MetaStore, rid: str) -> Manifest | None:
    data = store.read_meta(f"manifests/{rid}.json")
    try:
        return Manifest.from_json(data) if data else None
    except (ValueError, KeyError, TypeError) as exc:
        raise damaged(store, f"manifests/{rid}.json", exc) from None


def forget_release(store: MetaStore, rid: str) -> None:
    store.delete_meta(f"manifests/{rid}.json")
    store.delete_meta(f"releases/{rid}.json")


def read_history(store: MetaStore) -> list[HistoryEntry]:
    """Oldest first."""
    return [HistoryEntry(**e) for e in load_meta(store, "history.json") or []]


def append_history(store: MetaStore, entry: HistoryEntry) -> None:
    entries = [dataclasses.asdict(e) for e in read_history(store)] + [dataclasses.asdict(entry)]
    store.write_meta("history.json", dump(entries[-HISTORY_LIMIT:]))


def read_control(store: MetaStore) -> Control:
    raw = load_meta(store, "control.json") or {}
    return Control(
        pin=Mark(**raw["pin"]) if raw.get("pin") else None,
        bad_commits={c: Mark(**m) for c, m in raw.get("bad_commits", {}).items()},
        suspended=Mark(**raw["suspended"]) if raw.get("suspended") else None,
        agent=raw.get("agent", {}),
    )


def write_control(store: MetaStore, control: Control) -> None:
    store.write_meta("control.json", dump(dataclasses.asdict(control)))
