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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from ..errors import StateDamaged
from .manifest import Manifest

HISTORY_LIMIT = 1000
Action = Literal["deploy", "rollback", "recover", "repair", "retire"]


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
    """``user@host`` of whoever runs this process (``SITEDEPLOY_IDENTITY`` overrides it: a
    test that plays a second machine, or a deploy host behind a generic name)."""
    named = os.environ.get("SITEDEPLOY_IDENTITY", "").strip()
    if named:
        return named
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
    build_config: dict[str, Any] | None = None
    """The build settings the release was built with and where they came from
    (``{"origin": …, "tables": …}``); None in records written before it was kept."""


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


def dump(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True).encode() + b"\n"


def release_id(commit: str, when: float | None = None) -> str:
    """Sortable by creation time and readable: ``20261122T113000.123Z-1a2b3c4d``.

    Milliseconds keep two deploys in the same second in order (rollback picks by this order).
    """
    when = time.time() if when is None else when
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(when))
    return f"{stamp}.{int(when * 1000) % 1000:03d}Z-{commit[:8]}"


@contextmanager
def _parsing(store: MetaStore, name: str, advice: str) -> Iterator[None]:
    """A state file someone truncated or edited by hand: one line naming it, never a traceback."""
    try:
        yield
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        where = f"target '{getattr(store, 'name', '?')}'"
        if hasattr(store, "describe"):
            where += f" ({store.describe()})"
        raise StateDamaged(
            f"{where}: .sitedeploy/{name} on the target is damaged ({type(exc).__name__}: {exc}); {advice}"
        ) from None


def read_release(store: MetaStore, rid: str) -> ReleaseRecord | None:
    name = f"releases/{rid}.json"
    with _parsing(store, name, "remove it with the release folder, or deploy again"):
        raw = load(store.read_meta(name))
        return ReleaseRecord(**raw) if raw else None


def write_release(store: MetaStore, record: ReleaseRecord, manifest: Manifest) -> None:
    store.write_meta(f"manifests/{record.id}.json", manifest.to_json())
    store.write_meta(f"releases/{record.id}.json", dump(dataclasses.asdict(record)))


def read_manifest(store: MetaStore, rid: str) -> Manifest | None:
    name = f"manifests/{rid}.json"
    with _parsing(store, name, "deploy again: a new release gets a new manifest"):
        data = store.read_meta(name)
        return Manifest.from_json(data) if data else None


def forget_release(store: MetaStore, rid: str) -> None:
    store.delete_meta(f"manifests/{rid}.json")
    store.delete_meta(f"releases/{rid}.json")


def read_history(store: MetaStore) -> list[HistoryEntry]:
    """Oldest first."""
    with _parsing(
        store,
        "history.json",
        "move it aside and run again: the next run starts a new history with the live release",
    ):
        return [HistoryEntry(**e) for e in load(store.read_meta("history.json")) or []]


def append_history(store: MetaStore, entry: HistoryEntry) -> None:
    store.write_meta("history.json", dump(history_with(store, entry)))


def history_with(store: MetaStore, entry: HistoryEntry) -> list[dict[str, Any]]:
    """The history with ``entry`` appended, oldest entries beyond the limit dropped."""
    entries = [dataclasses.asdict(e) for e in read_history(store)] + [dataclasses.asdict(entry)]
    return entries[-HISTORY_LIMIT:]


def read_control(store: MetaStore) -> Control:
    with _parsing(store, "control.json", "fix it, or delete it (pins, freezes and bad marks are then lost)"):
        raw = load(store.read_meta("control.json")) or {}
        return Control(
            pin=Mark(**raw["pin"]) if raw.get("pin") else None,
            bad_commits={c: Mark(**m) for c, m in raw.get("bad_commits", {}).items()},
            suspended=Mark(**raw["suspended"]) if raw.get("suspended") else None,
            agent=dict(raw.get("agent", {})),
        )


def write_control(store: MetaStore, control: Control) -> None:
    store.write_meta("control.json", dump(dataclasses.asdict(control)))
