"""status, history and verify: what the targets say about themselves."""

from __future__ import annotations

import dataclasses
import time

from ..agent.refs import Refs, parse_ls_remote, parse_tracked, resolve
from ..build import build_release
from ..config import Config, TargetConfig
from ..config.from_git import build_config_at
from ..errors import RollbackError, SitedeployError, TargetError
from ..progress import SILENT, Progress
from ..release.control import hold_reason
from ..release.lock import read_lock
from ..release.manifest import Manifest
from ..release.records import Control, HistoryEntry, read_control, read_history, read_manifest, read_release
from ..release.transaction import Rules, Transaction, check_repair
from ..source.gitrun import Git
from ..targets import Drift, Target, open_target
from ..targets.base import MultiHost
from ..targets.dryrun import DryRun
from ..targets.ownership import owned
from .common import (
    Failures,
    TargetStatus,
    VerifyResult,
    each_target,
    open_source,
    rules_for,
    synced_source,
)
from .tracking import tag_tracking


def status(
    config: Config, *, target: str | None = None, failures: Failures | None = None
) -> list[TargetStatus]:
    tips = _Tips(config)

    def status_of(name: str, cfg: TargetConfig) -> TargetStatus:
        tracking, tip = tips.of(name, cfg)
        with open_target(name, cfg, config) as t:
            found = _status_one(t, tracking, tip)
        if tracking and tip is None:
            found = dataclasses.replace(found, tip_error=tips.error or "the remote has no such ref")
        newest = tag_tracking(config, cfg, found.commit, found.waiting)  # ref = "tag:…"
        found = dataclasses.replace(found, newest_tag=newest)
        if cfg.versions:  # a versioned target: its versions, aliases and what each serves
            from ..versions.info import versions_status

            found = dataclasses.replace(found, versions=versions_status(config, name))
        return found

    return each_target(config.target(target), failures, status_of)


TIP_TIMEOUT = 15.0
"""Seconds ``status`` waits for the remote's refs before it shows the tips as unknown."""


class _Tips:
    """The commit each target's tracked ref points at now: one ``git ls-remote``, on first use.
    A remote that does not answer leaves the tips unknown; status still reads the targets."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._refs: Refs | None = None
        self.error: str | None = None

    def of(self, name: str, cfg: TargetConfig) -> tuple[str | None, str | None]:
        if cfg.versions:  # many release lines, each with its own tag (sitedeploy.versions)
            return None, None
        tracked = parse_tracked(cfg.ref, self.config.source.branch, f"targets.{name}.ref")
        if self._refs is None and self.error is None:
            url = open_source(self.config).url
            try:  # a short wait: status must answer quickly while the git server is down
                out = Git(remote=url).text(
                    "ls-remote", "--", url, doing=f"list the refs of {url}", network=True, timeout=TIP_TIMEOUT
                )
                self._refs = parse_ls_remote(out)
            except SitedeployError as exc:
                self.error = exc.message
        found = resolve(tracked, self._refs) if self._refs is not None else None
        return tracked.describe(), found[1] if found else None


def _status_one(t: Target, tracking: str | None = None, tip: str | None = None) -> TargetStatus:
    live = t.live_release()
    record = read_release(t, live) if live else None
    last = next((e for e in reversed(read_history(t)) if e.release == live), None)
    control = read_control(t)
    return TargetStatus(
        target=t.name,
        location=t.describe(),
        release=live,
        commit=record.commit if record else None,
        subject=record.subject if record else None,
        author=record.author if record else None,
        deployed_at=last.deployed_at if last else None,
        deployed_by=last.deployed_by if last else None,
        action=last.action if last else None,
        pinned=control.pin,
        suspended=control.suspended,
        bad_commits=control.bad_commits,
        releases=t.list_releases(),
        hosts=t.live_by_host() if isinstance(t, MultiHost) else None,
        agent=control.agent,
        waiting=_waiting(control, record.commit if record else None, tip),
        tracking=tracking,
        tip=tip,
        lock=_lock_line(t),
    )


def _lock_line(t: Target) -> str | None:
    holder = read_lock(t)
    return holder.details(time.time()) if holder else None


def _waiting(control: Control, live_commit: str | None, tip: str | None = None) -> str | None:
    """Why the tip of the tracked ref (else the newest commit the agent saw) is not live."""
    agent = control.agent
    newest = tip or agent.get("last_attempted") or agent.get("held_commit")
    if not isinstance(newest, str) or not newest or newest == live_commit:
        return hold_reason(control, "") if control.pin or control.suspended else None
    reason = hold_reason(control, newest)
    if reason is None and agent.get("failed_commit") == newest:
        reason = f"failed: {agent.get('last_error') or 'see the agent log'}"
    if reason is None and agent.get("last_attempted") == newest:
        reason = "the agent is deploying it (building, or waiting for the target's lock)"
    if reason is None and tip is not None:
        reason = "not deployed yet ('sitedeploy deploy', or the agent's next tick)"
    return f"{newest[:12]} is not live: {reason}" if reason else None


def history(
    config: Config, *, target: str | None = None, limit: int | None = None, failures: Failures | None = None
) -> dict[str, list[HistoryEntry]]:
    """Newest first, per target."""

    def history_of(name: str, cfg: TargetConfig) -> tuple[str, list[HistoryEntry]]:
        with open_target(name, cfg, config) as t:
            entries = list(reversed(read_history(t)))
        return name, entries[:limit] if limit else entries

    return dict(each_target(config.target(target), failures, history_of))


def verify(
    config: Config,
    *,
    target: str | None = None,
    repair: bool = False,
    lock_timeout: float | None = None,
    progress: Progress = SILENT,
    dry_run: bool = False,
    force: bool = False,
    force_delete: bool = False,
    failures: Failures | None = None,
) -> list[VerifyResult]:
    """Compare each target's live files with the live release's manifest; optionally heal
    (a transaction like any change: ``max_delete``, suspension and ``--dry-run`` apply).
    ``failures``: see ``each_target``."""

    def verify_one(name: str, cfg: TargetConfig) -> VerifyResult:
        with open_target(name, cfg, config) as t:
            rules = rules_for(cfg, force=force, force_delete=force_delete, lock_timeout=lock_timeout)
            checked: Target = DryRun(t) if dry_run else t
            return _verify_one(config, checked, cfg, repair, progress, rules)

    return each_target(config.target(target), failures, verify_one)


def verify_target(
    config: Config,
    t: Target,
    cfg: TargetConfig,
    *,
    repair: bool = False,
    lock_timeout: float | None = None,
    progress: Progress = SILENT,
) -> VerifyResult:
    """``verify`` for one opened target (the agent's drift check)."""
    return _verify_one(config, t, cfg, repair, progress, rules_for(cfg, lock_timeout=lock_timeout))


def _verify_one(
    config: Config,
    t: Target,
    cfg: TargetConfig,
    repair: bool,
    progress: Progress,
    rules: Rules,
) -> VerifyResult:
    live = t.live_release()
    manifest = read_manifest(t, live) if live else None
    if live is None:
        return VerifyResult(t.name, None, [])
    if manifest is None:  # a state file deleted on the target: nothing to compare with
        raise TargetError(
            f"target '{t.name}': the live release {live} has no manifest (.sitedeploy/manifests/"
            f"{live}.json is gone); deploy again to publish and record a new release"
        )
    drift = owned(t.verify(live, manifest))  # never another target's files (targets.ownership)
    if cfg.versions or cfg.previews:  # other release lines share the place (sitedeploy.versions)
        from ..versions.layout import own_drift

        drift, repair = own_drift(cfg, drift), repair and not cfg.versions
    if not repair or all(d.clean for d in drift):
        return VerifyResult(t.name, live, drift)
    check_repair(t.name, rules, read_control(t), drift)  # before a rebuild; again under the lock
    record = read_release(t, live)
    assert record is not None
    source = synced_source(config)
    commit = source.commit(record.commit)
    built = build_release(
        build_config_at(config, source, commit), source, commit, trust="production", progress=progress
    )
    _check_reproduced(t.name, live, manifest, built.manifest, drift)
    with Transaction(t, rules, "repair", progress=progress) as tx:
        tx.repair(live, manifest, built.root, drift)
    return VerifyResult(t.name, live, drift, repaired=not isinstance(t, DryRun))


def _check_reproduced(name: str, live: str, want: Manifest, got: Manifest, drift: list[Drift]) -> None:
    needed = {p for d in drift for p in d.missing + d.changed}
    wrong = sorted(p for p in needed if got.get(p) != want.get(p))
    if wrong:
        raise RollbackError(
            f"target '{name}': rebuilding {live} did not reproduce {wrong[0]} (and {len(wrong) - 1} more); "
            "deploy a new release instead of repairing"
        )
