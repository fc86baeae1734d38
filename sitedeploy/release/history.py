"""What a target's history says: the entry a change writes, the run a crash interrupted, and
the release a rollback goes back to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .diff import Plan
from .records import (
    Action,
    HistoryEntry,
    ReleaseRecord,
    append_history,
    now_iso,
    read_control,
    read_history,
    read_release,
    whoami,
)

if TYPE_CHECKING:
    from ..targets.base import Target


def history_entry(action: Action, record: ReleaseRecord, plan: Plan | None, note: str = "") -> HistoryEntry:
    return HistoryEntry(
        action=action,
        commit=record.commit,
        subject=record.subject,
        author=record.author,
        release=record.id,
        deployed_at=now_iso(),
        deployed_by=whoami(),
        added=plan.added if plan else 0,
        changed=plan.changed if plan else 0,
        removed=len(plan.deletes) if plan else 0,
        note=note,
    )


def record_interrupted_switch(t: Target) -> None:
    """A run that died between the switch and the history entry: record the live release now."""
    live = t.live_release()
    history = read_history(t)
    if live is None or (history and history[-1].release == live):
        return
    record = read_release(t, live)
    if record is not None:
        append_history(t, history_entry("recover", record, None, "recorded after an interrupted run"))


def previous_release(t: Target, live: str | None, releases: list[str] | None = None) -> str | None:
    """The newest retained release older than the live one, of another commit not marked bad.

    A release of the live commit is skipped: it exists when a run was killed after staging
    and the commit was deployed again, and going "back" to it would change nothing.
    """
    releases = t.list_releases() if releases is None else releases
    skip = set(read_control(t).bad_commits)
    live_record = read_release(t, live) if live else None
    if live_record:
        skip.add(live_record.commit)
    for rid in reversed([r for r in releases if live is None or r < live]):
        record = read_release(t, rid)
        if record and record.commit not in skip:
            return rid
    return None
