"""The release transaction: every release, rollback, repair and retirement reaches a target here.

Deploy, rollback (all its forms), ``verify --repair``, retiring a version's or preview's line
(``retire``, :mod:`.retire`), dry-run and the agent are thin callers of :class:`Transaction`, a
context manager in the style of mike's ``Commit``::

    with Transaction(target, rules, "deploy") as tx:     # lock; note an interrupted switch;
        if tx.live_record is None or ...:                 # read the live release and control
            tx.publish(record, manifest, build_dir)       # refuse holds; plan; check; prepare
    # clean exit: record → switch → history → control → prune; an exception: discard

The build happens *before* the transaction: the lock is held only to prepare and switch, so
an emergency rollback during a long build takes the lock at once, and the build then plans
against whatever is live when it gets the lock (or is refused by the rollback's pin).

Crash windows (every one converges on the next run):
- before the switch: the old release is live; a prepared release is reused (local, SSH) or
  rewritten (S3) by the next run, or pruned;
- after the switch, before the history entry: the next transaction finds the live release
  missing from history and records it (``recover``);
- during prune: a release that was not removed is removed next time.

The lock is a lease (:mod:`.lock`) renewed while the transaction works; the switch is fenced
(``Lease.check``: no switch after the lease ran out or was taken over). A takeover is noted.
The one other write path to a target is :func:`.control.update_control` (pins, suspensions,
marks, the agent's bookkeeping in ``control.json``): one read-apply-write under the same lock.

``SITEDEPLOY_CRASH_AT=<step>`` kills the process with SIGKILL at a named step (``prepare``,
``record``, ``switch``, ``history``, ``prune``, ``retire``); ``SITEDEPLOY_PAUSE_AT`` SIGSTOPs it.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from ..errors import PlanRefused, RollbackError, SitedeployError, TargetError
from ..progress import SILENT, Progress
from ..redirects.removed import RemovedPages, check_removed
from .control import ControlChange, hold_reason
from .diff import Plan, diff
from .history import history_entry, previous_release, record_interrupted_switch
from .lock import Lease, locked
from .manifest import Manifest
from .records import (
    Action,
    Control,
    ReleaseRecord,
    append_history,
    forget_release,
    read_control,
    read_manifest,
    read_release,
    write_control,
    write_release,
)
from .retire import Retirement, carry_out, plan_retirement

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from ..targets.base import Drift, Prepared, Target, TransferStats

log = logging.getLogger(__name__)
STATE_PREFIX = ".sitedeploy/"


@dataclass(frozen=True)
class Rules:
    """What a change to one target must respect, and what the person chose to override."""

    keep_releases: int = 10
    max_delete: int = 256
    lock_timeout: float = 0
    lock_ttl: float = 60.0
    """Seconds a lock lease lasts unless renewed (``[targets.X] lock_ttl``)."""
    force: bool = False
    """Deploy although the target is pinned or suspended or the commit is marked bad."""
    force_delete: bool = False
    """Publish although the plan deletes more than ``max_delete`` files."""
    removed_pages: RemovedPages = "warn"
    """What a deploy removing live pages without a redirect does (``redirects.removed``)."""


@dataclass(frozen=True)
class _Staged:
    """The release a transaction has prepared on the target, waiting for its switch."""

    record: ReleaseRecord
    manifest: Manifest
    plan: Plan
    new: bool
    """A release made by this transaction (its record is written before the switch)."""


class Transaction:
    def __init__(
        self,
        target: Target,
        rules: Rules,
        action: Action,
        *,
        note: str = "",
        progress: Progress = SILENT,
    ) -> None:
        self.target, self.rules, self.action, self.progress = target, rules, action, progress
        self.notes = [note] if note else []
        self.live_record: ReleaseRecord | None = None
        self.live_manifest: Manifest | None = None
        self.control = Control()
        self.stats: TransferStats | None = None
        self.control_change: ControlChange | None = None
        """Applied to ``control.json`` after the switch, under the same lock (rollback's pin)."""
        self.pruned: list[str] = []
        self._change: _Staged | None = None
        self._prepared: Prepared | None = None
        self._repair: tuple[str, Manifest, Path, list[Drift]] | None = None
        self._retire: Retirement | None = None
        self._lock: AbstractContextManager[Lease] | None = None
        self.lease: Lease | None = None

    # --- entering: lock and read --------------------------------------------------------------

    def __enter__(self) -> Self:
        self._lock = locked(
            self.target,
            self.target.name,
            purpose=self.action,
            ttl=self.rules.lock_ttl,
            timeout=self.rules.lock_timeout,
        )
        self.lease = self._lock.__enter__()
        if self.lease.took_over is not None:
            self.notes.append(f"took over the stale lock of {self.lease.took_over.describe()}")
        try:
            record_interrupted_switch(self.target)
            live = self.target.live_release()
            self.live_record = read_release(self.target, live) if live else None
            self.live_manifest = read_manifest(self.target, live) if live else None
            self.control = read_control(self.target)
        except BaseException as exc:
            self._lock.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    # --- the three kinds of change ------------------------------------------------------------

    def publish(self, record: ReleaseRecord, manifest: Manifest, build_dir: Path) -> Plan:
        """Prepare a new release from ``build_dir``; it goes live when the block ends cleanly."""
        self._check_hold(record.commit)
        plan = diff(manifest, self.live_manifest)
        check_plan(self.target.name, self.rules, plan, manifest)
        forced = check_removed(
            self.target.name,
            self.rules.removed_pages,
            self.rules.force,
            plan,
            manifest,
            build_dir,
            self.progress,
        )
        self.notes += [forced] if forced else []
        self._prepare(_Staged(record, manifest, plan, new=True), build_dir)
        return plan

    def restore(self, release_id: str) -> Plan:
        """Prepare a retained release to go live again: nothing is built or sent."""
        record = read_release(self.target, release_id)
        manifest = read_manifest(self.target, release_id)
        if record is None or manifest is None:
            raise RollbackError(
                f"target '{self.target.name}': release {release_id} has no record; pick another with --to"
            )
        if record.commit in self.control.bad_commits and not self.rules.force:
            raise PlanRefused(
                f"target '{self.target.name}': release {release_id} serves commit {record.commit[:8]}, "
                f"which is marked bad; 'sitedeploy unmark {record.commit[:8]}' or --force"
            )
        self._check_intact(record, manifest)
        plan = diff(manifest, self.live_manifest)
        self._prepare(_Staged(record, manifest, plan, new=False), None)
        return plan

    def _check_intact(self, record: ReleaseRecord, manifest: Manifest) -> None:
        """Never switch to a release that no longer matches its manifest (a file edited in
        place through a hard link, deleted, or added on the target since it was recorded)."""
        damaged = [d for d in self.target.verify(record.id, manifest) if not d.clean]
        if damaged:
            raise RollbackError(damaged_message(self.target.name, record, damaged))

    def repair(self, release_id: str, manifest: Manifest, build_dir: Path, drift: list[Drift]) -> None:
        """Make the live release's files match its manifest again, when the block ends cleanly.

        A change like any other: refused on a suspended target and past ``max_delete`` extra
        files unless forced (a pin is kept: repair restores exactly the pinned release)."""
        if self.live_record is None or self.live_record.id != release_id:
            raise TargetError(
                f"target '{self.target.name}': {release_id} is no longer live; run verify again"
            )
        check_repair(self.target.name, self.rules, self.control, drift)
        self._repair = (release_id, manifest, build_dir, drift)

    def retire(self, line: Target, what: str) -> int:
        """Delete a whole line the root no longer serves, at a clean exit (:mod:`.retire`)."""
        self._retire = plan_retirement(self, line, what)
        return self._retire.files

    @property
    def record(self) -> ReleaseRecord | None:
        return self._change.record if self._change else None

    @property
    def plan(self) -> Plan | None:
        return self._change.plan if self._change else None

    # --- leaving: commit or discard -----------------------------------------------------------

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._lock is not None
        try:
            if kind is None:
                self._commit()
        except BaseException as failure:
            kind, exc, tb = type(failure), failure, failure.__traceback__
            raise
        finally:
            if kind is not None and self._prepared is not None:
                self._discard()  # never switched: take back what prepare and record wrote
            self._lock.__exit__(kind, exc, tb)

    def _commit(self) -> None:
        if self._repair is not None:
            self._commit_repair(*self._repair)
        if self._retire is not None:
            carry_out(self, self._retire, _checkpoint)
        if self._change is None or self._prepared is None:
            return
        change, prepared = self._change, self._prepared
        if change.new:
            _checkpoint("record")
            write_release(self.target, change.record, change.manifest)
        _checkpoint("switch")
        entry = history_entry(self.action, change.record, change.plan, self._note())
        assert self.lease is not None
        self.lease.check()  # the fence: never switch over a run that took our lease
        recorded = prepared.switch(entry)
        self._prepared = None  # live now: from here on a failure is recovered, never discarded
        _checkpoint("history")
        if not recorded:
            append_history(self.target, entry)
        if self.control_change is not None:
            write_control(self.target, self.control_change(read_control(self.target)))
        _checkpoint("prune")
        self._prune()
        reload = getattr(self.target, "reload_server", None)  # local, SSH: nginx reads new rules
        if reload is not None:
            reload()  # a failure raises ReloadFailed: the release stays live and recorded

    def _commit_repair(
        self, release_id: str, manifest: Manifest, build_dir: Path, drift: list[Drift]
    ) -> None:
        self.target.repair(release_id, manifest, build_dir, drift)
        assert self.live_record is not None
        files = sorted({p for d in drift for p in d.missing + d.changed + d.extra})
        note = f"repaired {len(files)} file(s)" + (f", first {files[0]}" if files else "")
        append_history(self.target, history_entry("repair", self.live_record, None, note))

    def _discard(self) -> None:
        # The error that ended the block matters more than a failed clean-up: log, don't raise.
        assert self._prepared is not None and self._change is not None
        try:
            if self._prepared.discard() and self._change.new:
                forget_release(self.target, self._change.record.id)
        except SitedeployError as exc:
            log.warning("%s (left for the next run to clean up)", exc.message)
        self._prepared = None

    def _prune(self) -> None:
        try:
            self.pruned = prune(self.target, self.rules.keep_releases)
        except TargetError as exc:  # the release is live and recorded; the next run prunes
            log.warning("%s (pruning old releases is retried by the next run)", exc.message)

    # --- helpers ------------------------------------------------------------------------------

    def _prepare(self, change: _Staged, build_dir: Path | None) -> None:
        if self._change is not None:
            raise RuntimeError("one change per transaction")
        _checkpoint("prepare")
        self._prepared = self.target.prepare(
            change.record, change.manifest, change.plan, build_dir, self.progress
        )
        self._change, self.stats = change, self._prepared.stats

    def _check_hold(self, commit: str) -> None:
        forced = check_hold(self.target.name, self.control, commit, force=self.rules.force)
        if forced:
            self.notes.append(forced)

    def _note(self) -> str:
        return "; ".join(self.notes)


def check_hold(name: str, control: Control, commit: str, *, force: bool) -> str | None:
    """Refuse a deploy to a pinned or suspended target or of a commit marked bad, unless
    forced; return the note that history keeps when it was forced."""
    reason = hold_reason(control, commit)
    if reason is None:
        return None
    if not force:
        raise PlanRefused(f"target '{name}': {reason}; or pass --force to deploy anyway")
    return f"forced: {reason}"


def check_repair(name: str, rules: Rules, control: Control, drift: list[Drift]) -> None:
    """Refuse a repair of a suspended target, or one deleting more than ``max_delete`` files."""
    if control.suspended and not rules.force:
        reason = hold_reason(control, "")
        raise PlanRefused(f"target '{name}': {reason}; 'sitedeploy resume' or --force to repair anyway")
    extra = {p for d in drift for p in d.extra}
    if len(extra) > rules.max_delete and not rules.force_delete:
        raise PlanRefused(
            f"target '{name}': repair would delete {len(extra)} extra files (max_delete = "
            f"{rules.max_delete}); check they are not another site's, then raise max_delete or "
            "pass --force-delete"
        )


def check_plan(name: str, rules: Rules, plan: Plan, manifest: Manifest) -> None:
    """Refuse plans that are almost certainly mistakes, before anything is written."""
    reserved = next((p for p in manifest if p.startswith(STATE_PREFIX)), None)
    if reserved is not None:
        raise PlanRefused(
            f"target '{name}': the build writes {reserved}; {STATE_PREFIX} is where targets keep "
            "their own state (locks, records, history), so no content may go there"
        )
    pages = [p for p in manifest if p.endswith(".html")]
    if not pages:
        raise PlanRefused(
            f"target '{name}': the build has no HTML pages ({len(manifest)} files); refusing to publish "
            "an empty site — check the sites' paths and mounts"
        )
    if len(plan.deletes) > rules.max_delete and not rules.force_delete:
        raise PlanRefused(
            f"target '{name}' would delete {len(plan.deletes)} files (max_delete = {rules.max_delete}); "
            "raise max_delete or pass --force-delete"
        )


def damaged_message(name: str, record: ReleaseRecord, damaged: list[Drift]) -> str:
    """One line: which release, where, which files, and the way out (a rebuild is a new release)."""
    files = sorted({p for d in damaged for p in d.changed + d.missing + d.extra})
    where = ", ".join(d.where for d in damaged)
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (
        f"target '{name}': release {record.id} was changed on the target since it was recorded "
        f"({'; '.join(d.summary() for d in damaged)} at {where}: {shown}); refusing to switch to it. "
        f"Rebuild its commit as a new release with 'sitedeploy deploy --ref {record.commit[:12]}', "
        "or roll back to another release with --to"
    )


def prune(t: Target, keep: int) -> list[str]:
    """Remove the oldest releases beyond ``keep``; never the live one or the rollback candidate."""
    releases = t.list_releases()
    live = t.live_release()
    protect = {live, previous_release(t, live, releases)}
    removable = [r for r in releases if r not in protect]
    doomed = removable[: max(0, len(releases) - keep)]
    for rid in doomed:
        t.remove_release(rid)
        forget_release(t, rid)
    return doomed


def _checkpoint(step: str) -> None:
    """Fault injection for the reliability suite: die here, as a power cut would."""
    if os.environ.get("SITEDEPLOY_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("SITEDEPLOY_PAUSE_AT") == step:
        os.kill(os.getpid(), signal.SIGSTOP)
