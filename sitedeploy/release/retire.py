"""The transaction's ``retire`` mode: remove a whole version's or preview's line.

A versioned target (or a target's previews) is a family: a root line that serves the list and
links, and one line per version or preview (``sitedeploy.versions.layout``). Removing one is
two steps: a root release that no longer names it (an ordinary publish), then this mode, which
deletes the line itself — under the root's lock *and* the line's own, obeying the root's holds
(suspended or pinned) and ``max_delete`` (the files the line serves), recorded in the root's
history (``retire``: who removed which line, when), and a no-op over a dry-run target.

A crash between the two steps, or halfway through the delete, leaves an *orphan*: a line the
live root no longer names. ``sitedeploy.versions.layout.finish_retirements`` finds them from the
root's record of deleted lines and retires them on the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PlanRefused
from .control import hold_reason
from .lock import locked
from .records import HistoryEntry, append_history, now_iso, read_manifest, whoami

if TYPE_CHECKING:
    from ..targets.base import Target
    from .transaction import Transaction


@dataclass(frozen=True)
class Retirement:
    line: Target
    what: str
    """For history and messages: ``version 2.1``, ``preview feature-x``."""
    files: int
    """Files the line serves now: what ``max_delete`` counts."""


def plan_retirement(tx: Transaction, line: Target, what: str) -> Retirement:
    """Refuse before anything is deleted: a held root, or more files than ``max_delete``."""
    name, rules = tx.target.name, tx.rules
    reason = hold_reason(tx.control, "") if tx.control.pin or tx.control.suspended else None
    if reason is not None and not rules.force:
        raise PlanRefused(f"target '{name}': {reason}; or pass --force to remove {what} anyway")
    live = line.live_release()
    manifest = read_manifest(line, live) if live else None
    files = len(manifest) if manifest is not None else 0
    if files > rules.max_delete and not rules.force_delete:
        raise PlanRefused(
            f"target '{name}': removing {what} deletes {files} files (max_delete = {rules.max_delete}); "
            "raise max_delete or pass --force"
        )
    return Retirement(line, what, files)


def carry_out(tx: Transaction, plan: Retirement, checkpoint: Callable[[str], None]) -> None:
    """Delete the line under its own lock, then say so in the root's history."""
    rules = tx.rules
    if not getattr(plan.line, "dry_run", False):  # the crash point is in real runs only
        checkpoint("retire")
    with locked(plan.line, plan.line.name, purpose="retire", ttl=rules.lock_ttl, timeout=rules.lock_timeout):
        plan.line.retire()
    record = tx.live_record
    note = "; ".join([f"removed {plan.what} ({plan.files} files)", *tx.notes])
    entry = HistoryEntry(
        action="retire",
        commit=record.commit if record else "",
        subject=record.subject if record else "",
        author=record.author if record else "",
        release=record.id if record else "",
        deployed_at=now_iso(),
        deployed_by=whoami(),
        removed=plan.files,
        note=note,
    )
    append_history(tx.target, entry)
