"""What the agent remembers between ticks and between ``--once`` runs, on this machine.

``<state_dir>/agent/state.json`` holds, per target, the commit last applied and the last
attempt and its error, so an idle tick compares the remote's refs with it and asks no target
anything. It is a cache: losing it costs one visit to each target, which says what is live.
The same facts go to the target's ``control.json`` (``agent``) for ``status`` on any machine.
The file is private to the agent's user (0600 in a 0700 folder): errors in it quote URLs and
paths of this machine, scrubbed of credentials, but nobody else needs to read them.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import LockHeld, scrub


@dataclass
class TargetMemory:
    applied: str | None = None
    """The commit the agent last saw live on the target (deployed or found there)."""
    attempted: str | None = None
    failed: str | None = None
    """A commit whose last attempt failed; not tried again unless ``retryable`` and due."""
    error: str = ""
    retryable: bool = False
    retry_at: float = 0.0
    failures: int = 0
    held: str | None = None
    """A commit not deployed because the target is pinned or suspended or marks it bad."""
    ref: str | None = None


@dataclass
class Memory:
    path: Path
    ticks: int = 0
    targets: dict[str, TargetMemory] = field(default_factory=dict)
    notify: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per target: the state last notified (see ``notify``)."""

    @classmethod
    def load(cls, state_dir: Path) -> Memory:
        path = state_dir / "agent" / "state.json"
        try:
            raw = json.loads(path.read_bytes())
            targets = {k: TargetMemory(**v) for k, v in raw.get("targets", {}).items()}
            return cls(path, raw.get("ticks", 0), targets, raw.get("notify", {}))
        except (FileNotFoundError, ValueError, TypeError):
            return cls(path)  # a missing or damaged cache only costs a visit to each target

    def target(self, name: str) -> TargetMemory:
        return self.targets.setdefault(name, TargetMemory())

    def save(self) -> None:
        data = {
            "ticks": self.ticks,
            "targets": {k: dataclasses.asdict(v) for k, v in self.targets.items()},
            "notify": self.notify,
        }
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".state.{os.getpid()}.tmp")
        write_private(tmp, scrub(json.dumps(data, indent=1, sort_keys=True)).encode())
        os.replace(tmp, self.path)


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` readable by this user only, from its first byte (no chmod window)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not change a file that already existed


class ProcessLock:
    """One agent per state folder on this machine: overlapping cron runs see it and leave."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "agent" / "agent.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise LockHeld(
                f"another sitedeploy agent ({holder}) is running with state folder "
                f"{self.path.parent.parent}; this run leaves it to finish"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
