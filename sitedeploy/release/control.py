"""Pins, suspensions and commits marked bad: what holds deploys to a target, and who said so.

``control.json`` on the target is changed only through :func:`update_control`, which takes the
target's lock, reads, applies one change and writes: a ``suspend`` that lands between the
agent's read and its write cannot be undone silently. :func:`hold_reason` is the one
rule every deploy obeys, manual or automatic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from .lock import locked
from .records import Control, Mark, MetaStore, ReleaseRecord, now_iso, read_control, whoami, write_control

ControlChange = Callable[[Control], Control]
"""An edit of a target's ``control.json`` (pins, suspensions, marks), applied under its lock."""


def update_control(store: MetaStore, target: str, change: ControlChange, *, timeout: float = 0) -> Control:
    """Apply ``change`` to the target's control state under its lock; return the new state."""
    with locked(store, target, purpose="control", timeout=timeout):
        updated = change(read_control(store))
        write_control(store, updated)
        return updated


def hold_reason(control: Control, commit: str) -> str | None:
    """Why ``commit`` may not be deployed to a target now, or None."""
    if control.suspended:
        reason = control.suspended.reason or "no reason given"
        return f"suspended by {control.suspended.by}: {reason}; 'sitedeploy resume' lifts it"
    if control.pin:
        return f"pinned by {control.pin.by} ({control.pin.reason}); 'sitedeploy resume' unpins"
    if commit in control.bad_commits:
        mark = control.bad_commits[commit]
        return (
            f"commit {commit[:8]} is marked bad ({mark.reason}); 'sitedeploy unmark {commit[:8]}' clears it"
        )
    return None


def mark(reason: str = "", commit: str = "") -> Mark:
    """A mark made now by whoever runs this process."""
    return Mark(whoami(), now_iso(), reason, commit)


def pinned(reason: str, commit: str) -> ControlChange:
    return lambda c: dataclasses.replace(c, pin=mark(reason, commit))


def suspended(reason: str) -> ControlChange:
    return lambda c: dataclasses.replace(c, suspended=mark(reason))


def resumed() -> ControlChange:
    return lambda c: dataclasses.replace(c, pin=None, suspended=None)


def marked_bad(commit: str, reason: str) -> ControlChange:
    return lambda c: dataclasses.replace(c, bad_commits={**c.bad_commits, commit: mark(reason, commit)})


def unmarked(prefix: str) -> ControlChange:
    """Forget the bad marks of every commit starting with ``prefix``."""
    prefix = prefix.lower()
    return lambda c: dataclasses.replace(
        c, bad_commits={sha: m for sha, m in c.bad_commits.items() if not sha.startswith(prefix)}
    )


def pinned_after_rollback(moved_from: ReleaseRecord, moved_to: ReleaseRecord) -> ControlChange:
    """Hold automatic deploys, and never redeploy the commit a rollback moved away from."""

    def change(control: Control) -> Control:
        bad = dict(control.bad_commits)
        if moved_from.commit != moved_to.commit:
            bad[moved_from.commit] = mark(f"rolled back from {moved_from.id}", moved_from.commit)
        pin = mark(f"rollback to {moved_to.id}", moved_to.commit)
        return dataclasses.replace(control, pin=pin, bad_commits=bad)

    return change


def with_agent_facts(facts: Mapping[str, object]) -> ControlChange:
    """The agent's bookkeeping, mirrored where ``status`` on any machine sees it."""
    return lambda c: dataclasses.replace(
        c, agent={**c.agent, **facts, "updated_at": now_iso(), "by": whoami()}
    )
