"""rollback, the agent's automatic revert, and the control commands (suspend, resume, marks).

Every form of rollback is a release transaction: to a retained release (no build, no
transfer), or to a commit whose release was pruned (built again from git, reproducibly, with
the lock taken only after the build). A manual rollback pins the target and marks the commit
it moved away from as bad, in the same transaction as the switch.
"""

from __future__ import annotations

import dataclasses
import re

from ..agent.triggers import wake_agent
from ..build import plan
from ..config import Config, TargetConfig
from ..errors import RollbackError, SourceError
from ..progress import SILENT, Progress
from ..release import control as ctl
from ..release.history import previous_release
from ..release.records import ReleaseRecord, read_control, read_history, read_release
from ..release.transaction import Rules, Transaction
from ..targets import Target, open_target
from .common import DeployResult, Failures, commit_of, each_target, rules_for, synced_source
from .deploy import publish

_SHA_PREFIX = re.compile(r"[0-9a-f]{4,40}")
"""What ``unmark`` takes as a commit's sha (or its start) rather than a ref to resolve."""


def rollback(
    config: Config,
    *,
    target: str | None = None,
    to: str | None = None,
    force: bool = False,
    lock_timeout: float | None = None,
    progress: Progress = SILENT,
    failures: Failures | None = None,
) -> list[DeployResult]:
    """Put an earlier release back: the one before the live one, or ``to`` (commit or release)."""

    def rollback_one(name: str, cfg: TargetConfig) -> DeployResult:
        rules = rules_for(cfg, force=force, lock_timeout=lock_timeout)
        with open_target(name, cfg, config) as t:
            return _rollback_one(config, t, rules, to, progress)

    return each_target(config.target(target), failures, rollback_one)


def _rollback_one(
    config: Config, t: Target, rules: Rules, to: str | None, progress: Progress
) -> DeployResult:
    live = t.live_release()
    live_record = read_release(t, live) if live else None
    if live_record is None:
        raise RollbackError(f"target '{t.name}' has no live release yet; nothing to roll back")
    if to is None and previous_release(t, live) is not None:
        return switch_back(t, rules, None, progress=progress, pin=True)
    kept = _find_release(t, to) if to else None
    if kept is not None:
        return switch_back(t, rules, kept, progress=progress, pin=True)
    return _rebuild(config, t, rules, to or _older_commit_in_history(t, live_record), progress)


def switch_back(
    t: Target, rules: Rules, release_id: str | None, *, progress: Progress = SILENT, pin: bool, note: str = ""
) -> DeployResult:
    """Make a retained release live again: no build, no transfer. None: the previous one."""
    with Transaction(t, rules, "rollback", note=note, progress=progress) as tx:
        if tx.live_record is None:
            raise RollbackError(f"target '{t.name}' has no live release yet; nothing to roll back")
        rid = release_id or previous_release(t, tx.live_record.id)
        if rid is None:
            raise RollbackError(
                f"target '{t.name}': {note or 'rollback'}; no earlier release to roll back to"
            )
        progress.step(f"{t.name}: switching back to {rid}")
        plan = tx.restore(rid)
        assert tx.record is not None
        if pin:
            tx.control_change = ctl.pinned_after_rollback(tx.live_record, tx.record)
    bad = moved_away(tx.live_record, tx.record) if pin else None
    return DeployResult(t.name, commit_of(tx.record), "rolled back", rid, plan, marked_bad=bad)


def _rebuild(config: Config, t: Target, rules: Rules, commit_ref: str, progress: Progress) -> DeployResult:
    """The release is no longer retained: build its commit again from git (reproducibly)."""
    source = synced_source(config)
    try:
        commit = source.resolve(commit_ref)
    except SourceError:
        raise RollbackError(
            f"target '{t.name}': '{commit_ref}' is neither a retained release nor a commit in the repo; "
            "see 'sitedeploy history'"
        ) from None
    kept = _find_release(t, commit.sha)  # `--to main` or a tag naming a commit that is still kept
    if kept is not None:
        return switch_back(t, rules, kept, progress=progress, pin=True)
    progress.step(f"{t.name}: release of {commit.short} is no longer kept; rebuilding it")
    lazy = plan(config, source, commit, progress, trust="production")
    cfg = config.targets[t.name]
    # A rollback may go to a commit marked bad or past a pin: the person asked for this commit.
    forced = dataclasses.replace(rules, force=True)
    return publish(
        t, forced, lazy, lazy.key_for(cfg), action="rollback", notes=["rebuilt from git"], pin=True
    )


def moved_away(moved_from: ReleaseRecord, moved_to: ReleaseRecord) -> str | None:
    """The commit a pinning rollback marks bad (see ``control.pinned_after_rollback``)."""
    return moved_from.commit if moved_from.commit != moved_to.commit else None


def _older_commit_in_history(t: Target, live: ReleaseRecord) -> str:
    bad = read_control(t).bad_commits
    for entry in reversed(read_history(t)):
        if entry.commit != live.commit and entry.commit not in bad and entry.release < live.id:
            return entry.commit
    raise RollbackError(f"target '{t.name}': no earlier release in its history to roll back to")


def _find_release(t: Target, to: str) -> str | None:
    """A retained release named by id or by (a prefix of) its commit; None if not retained."""
    releases = t.list_releases()
    if to in releases:
        return to
    if len(to) >= 4:
        for rid in reversed(releases):
            record = read_release(t, rid)
            if record and record.commit.startswith(to.lower()):
                return rid
    return None


def revert_failed_switch(t: Target, rules: Rules, reason: str) -> DeployResult:
    """The agent's automatic rollback: a post-switch check failed, put the previous release back.

    Unlike ``rollback`` this does not pin the target: the agent remembers the failing commit
    itself, so the next new commit still deploys at once.
    """
    return switch_back(t, rules, None, pin=False, note=f"automatic: {reason}")


# --- control: one locked update each ------------------------------------------------------------


def _update(
    config: Config,
    target: str | None,
    change: ctl.ControlChange,
    lock_timeout: float | None,
    failures: Failures | None = None,
) -> list[str]:
    def update_one(name: str, cfg: TargetConfig) -> str:
        with open_target(name, cfg, config) as t:
            timeout = cfg.lock_timeout if lock_timeout is None else lock_timeout
            ctl.update_control(t, name, change, timeout=timeout)
        return name

    names = each_target(config.target(target), failures, update_one)
    if names:  # an agent on this machine acts on the change now, not after its interval
        wake_agent(config.state_dir)
    return names


def resume(
    config: Config,
    *,
    target: str | None = None,
    lock_timeout: float | None = None,
    failures: Failures | None = None,
) -> list[str]:
    """Lift pins and suspensions: the agent deploys these targets again."""
    return _update(config, target, ctl.resumed(), lock_timeout, failures)


def suspend(
    config: Config,
    *,
    target: str | None = None,
    reason: str = "",
    lock_timeout: float | None = None,
    failures: Failures | None = None,
) -> list[str]:
    """A release freeze: no deploy (manual or automatic) until ``resume``."""
    return _update(config, target, ctl.suspended(reason), lock_timeout, failures)


def mark_bad(
    config: Config,
    commit: str,
    *,
    target: str | None = None,
    reason: str = "",
    lock_timeout: float | None = None,
    failures: Failures | None = None,
) -> list[str]:
    """Never deploy ``commit`` (any ref the repo knows) to these targets, until ``unmark``."""
    sha = synced_source(config).resolve(commit).sha
    change = ctl.marked_bad(sha, reason or "marked bad by hand")
    return _update(config, target, change, lock_timeout, failures)


def unmark(
    config: Config,
    commit: str,
    *,
    target: str | None = None,
    lock_timeout: float | None = None,
    failures: Failures | None = None,
) -> list[str]:
    """Forget the bad marks of ``commit``: a sha prefix (a marked commit may be gone from the
    repo by now), or a branch or tag, which ``mark-bad`` takes too: the commit it names now."""
    return _update(config, target, ctl.unmarked(_marked_prefix(config, commit)), lock_timeout, failures)


def _marked_prefix(config: Config, commit: str) -> str:
    if _SHA_PREFIX.fullmatch(commit):
        return commit
    return synced_source(config).resolve(commit).sha
