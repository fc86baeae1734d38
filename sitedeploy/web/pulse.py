"""What the status page knows of the agent: its heartbeat and its recent activity, on disk.

The agent writes two small files into its state folder, so that the page served by the agent
itself and ``sitedeploy status --serve`` run beside it (or after it, or beside a cron
``--once``) tell the same story:

    <state_dir>/agent/heartbeat.json   pid, started, last tick, next poll, last webhook, interval
    <state_dir>/agent/activity.jsonl   the last ACTIVITY_KEPT events worth showing, oldest first

Both are private to the agent's user (0600, like ``state.json``) and hold only what the log
holds: events are already scrubbed and stripped of secret-sounding fields by
:class:`~sitedeploy.agent.log.EventLog` before they reach :meth:`Pulse.listen`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

ACTIVITY_KEPT = 200
SHOWN = frozenset(
    {
        "started", "stopped", "wake", "webhook", "deploying", "deployed", "failed", "rolled-back", "held",
        "superseded", "drift", "drift-not-repaired", "drift-check-failed", "remote-failed", "tick-failed",
        "internal-error", "gate", "signature", "ref-missing", "forge-failed", "status-not-recorded",
    }
)  # fmt: skip
"""Events the timeline shows; build steps and per-request chatter are left to the log."""
SUMMARY_FIELDS = ("commit", "release", "line", "reason", "reasons", "error", "sender", "url", "seconds")


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Pulse:
    """The agent's side: call :meth:`listen` with each log record, :meth:`ticked` after each tick."""

    def __init__(self, state_dir: Path, *, mode: str, interval: float | None, clock: Any = time.time) -> None:
        self.folder = state_dir / "agent"
        self.clock = clock
        self._lock = threading.Lock()
        self._beat: dict[str, Any] = {
            "pid": os.getpid(),
            "mode": mode,
            "interval": interval,
            "started_at": iso(clock()),
            "last_tick_at": None,
            "next_poll_at": None,
            "last_webhook_at": read_heartbeat(state_dir).get("last_webhook_at"),
            "stopped_at": None,
        }
        self._events: deque[dict[str, Any]] = deque(read_activity(state_dir), maxlen=ACTIVITY_KEPT)

    def listen(self, record: dict[str, Any]) -> None:
        name = str(record.get("event", ""))
        if name not in SHOWN and not name.startswith(("version-", "preview-")):
            return
        with self._lock:
            if name == "webhook":
                self._beat["last_webhook_at"] = iso(self.clock())
                self._save_beat()
            self._events.append(record)
            lines = "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in self._events)
            _write(self.folder / "activity.jsonl", lines.encode())

    def ticked(self, next_in: float | None) -> None:
        now = self.clock()
        with self._lock:
            self._beat["last_tick_at"] = iso(now)
            self._beat["next_poll_at"] = iso(now + next_in) if next_in is not None else None
            self._save_beat()

    def stopped(self) -> None:
        with self._lock:
            self._beat["stopped_at"] = iso(self.clock())
            self._beat["next_poll_at"] = None
            self._save_beat()

    def _save_beat(self) -> None:
        _write(self.folder / "heartbeat.json", json.dumps(self._beat, sort_keys=True).encode())


def read_heartbeat(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / "agent" / "heartbeat.json").read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_activity(state_dir: Path) -> list[dict[str, Any]]:
    try:
        text = (state_dir / "agent" / "activity.jsonl").read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for line in text.splitlines()[-ACTIVITY_KEPT:]:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn line (a crash mid-write is impossible: the file is replaced whole)
        if isinstance(record, dict):
            out.append(record)
    return out


def summary(record: dict[str, Any]) -> str:
    """One line for the timeline: the event's telling fields, in a fixed order."""
    parts = [f"{k}={record[k]}" for k in SUMMARY_FIELDS if record.get(k) not in (None, "")]
    return " ".join(parts)


def _write(path: Path, data: bytes) -> None:
    from ..agent.memory import write_private

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    write_private(tmp, data)
    os.replace(tmp, path)
