"""What wakes the agent: the interval (with jitter), a push seen by watchdog, SIGHUP, a webhook,
and the wake file that ``resume``, ``suspend``, ``mark-bad`` and ``unmark`` touch.

Every trigger sets one :class:`Wakeup`; the loop sleeps on it until the interval is over or a
trigger arrives, so a burst of events (a push writes several files) becomes one tick.
SIGHUP asks for a *full* tick: each target is visited even when the agent believes it is up to
date (after ``sitedeploy resume``, say). A webhook asks for an ordinary tick only: whoever can
reach the port should at most cost one ``git ls-remote``, never a visit to every target.

The wake file (``<state_dir>/agent/wake``) asks for a full tick too: a control command run on
this machine touches it, and the agent looks at its modification time twice a second. A file,
not a signal, because the command often runs as another user than the agent (who could not
signal it) and a pid read from a file may have been reused; only its time is read, so whoever
may write it (the agent makes it group-writable) can at most cause a tick.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from pathlib import Path
from typing import Any

from .log import EventLog

DEBOUNCE = 0.05
WAKE_POLL = 0.5
"""Seconds between looks at the wake file's modification time (one ``stat``)."""


class Wakeup:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._reasons: list[str] = []
        self._full = False
        self.stopped = False

    def trigger(self, reason: str, *, full: bool = False) -> None:
        with self._cond:
            self._reasons.append(reason)
            self._full = self._full or full
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def wait(self, timeout: float) -> tuple[list[str], bool]:
        """Sleep until a trigger, a stop or ``timeout``; return (reasons, full) and reset."""
        with self._cond:
            if not self._reasons and not self.stopped:
                self._cond.wait(timeout)
            if self._reasons and not self.stopped:
                self._cond.wait(DEBOUNCE)  # let the rest of a burst arrive
            reasons, full = self._reasons or ["interval"], self._full
            self._reasons, self._full = [], False
            return reasons, full


def jittered(interval: float, jitter: float, rng: random.Random | None = None) -> float:
    """``interval`` ± ``jitter`` (a fraction): many agents polling one remote spread out."""
    spread = interval * max(0.0, min(jitter, 1.0))
    return max(0.1, interval + (rng or random).uniform(-spread, spread))


def git_dir(repo: Path) -> Path | None:
    """The folder holding refs of a repo on this machine (bare or not), if it is one."""
    if (repo / "HEAD").is_file() and (repo / "refs").is_dir():
        return repo
    if (repo / ".git" / "HEAD").is_file():
        return repo / ".git"
    return None


class RepoWatcher:
    """Watch a repository's refs on this machine (e.g. the bare repo receiving ``git push``)."""

    def __init__(self, repo: Path, wakeup: Wakeup, log: EventLog) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self.git_dir = git_dir(repo)
        self.observer: Any = Observer()
        if self.git_dir is None:
            return

        class RefChanged(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                path = str(getattr(event, "dest_path", "") or event.src_path)
                if path.endswith(".lock") or event.event_type in ("opened", "closed_no_write"):
                    return
                if "/refs/" in path or path.endswith(("packed-refs", "/HEAD")):
                    wakeup.trigger("watch")

        handler = RefChanged()
        self.observer.schedule(handler, str(self.git_dir / "refs"), recursive=True)
        self.observer.schedule(handler, str(self.git_dir), recursive=False)
        log.event("watching", repo=str(self.git_dir))

    def start(self) -> None:
        if self.git_dir is not None:
            self.observer.start()

    def stop(self) -> None:
        if self.git_dir is not None:
            self.observer.stop()
            self.observer.join(timeout=5)


def install_signal_handlers(wakeup: Wakeup) -> None:
    """SIGHUP: a full tick now. SIGTERM/SIGINT: finish the current step and exit.

    The handlers hand over to a thread: a handler runs inside whatever the main thread was
    doing, possibly while it holds the wakeup's lock.
    """

    def later(action: Any) -> Any:
        return lambda *_: threading.Thread(target=action, daemon=True).start()

    signal.signal(signal.SIGHUP, later(lambda: wakeup.trigger("sighup", full=True)))
    signal.signal(signal.SIGTERM, later(wakeup.stop))
    signal.signal(signal.SIGINT, later(wakeup.stop))


def wake_file(state_dir: Path) -> Path:
    return state_dir / "agent" / "wake"


def wake_agent(state_dir: Path) -> bool:
    """Ask an agent running with ``state_dir`` on this machine for a full tick now; False when
    no agent has used that folder or this user may not touch its wake file."""
    path = wake_file(state_dir)
    if not path.parent.is_dir():
        return False
    try:
        path.touch()
        os.utime(path)  # touch() leaves the time of an existing file alone when it cannot open it
    except OSError:
        return False
    return True


class WakeFileWatcher:
    """Trigger a full tick whenever the wake file's modification time changes."""

    def __init__(self, state_dir: Path, wakeup: Wakeup) -> None:
        self.path, self.wakeup = wake_file(state_dir), wakeup
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="wake-file", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # a file of another owner: it can still be read
            self.path.touch()
            self.path.chmod(0o660)  # the agent's group may wake it; umask would take that away
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        seen = self._mtime()
        while not self._stop.wait(WAKE_POLL):
            now = self._mtime()
            if now != seen:
                seen = now
                self.wakeup.trigger("control", full=True)

    def _mtime(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None
