"""status, history and verify: what the targets say about themselves."""

from __future__ import annotations

import dataclasses
import time

from ..build import build_release
from ..config import Config, TargetConfig
from ..errors import RollbackError, TargetError
from ..gitconfig import build_config_at
from ..progress import SILENT, Progress
from ..release import records as state
from ..release.control import hold_reason
from ..release.lock import read_lock
from ..release.manifest import Manifest
from ..release.records import HistoryEntry
from ..release.transaction import Transaction
from ..targets import Drift, Target, open_target
from ..targets.base import MultiHost
from .common import TargetStatus, VerifyResult, rules_for, synced_source


def status(config: Config, *, target: str | None = None) -> list[TargetStatus]:
    out = []
    for name, cfg in config.target(target).items():
        with open_target(name, cfg, config) as t:
            out.append(_status_one(t))
        if cfg.versions:  # a versioned target: its versions, aliases and what each serves
            from ..versions.api import versions_status

            out[-1] = dataclasses.replace(out[-1], versions=versions_status(config, name))
    return out


def _status_one(t: Target) -> TargetStatus:
    live = t.live_release()
    record = state.read_release(t, live) if live else None
    last = next((e for e in reversed(state.read_history(t)) if e.release == live), None)
    control = state.read_control(t)
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
        waiting=_waiting(control, record.commit if record else None),
        lock=_lock_line(t),
    )


def _lock_line(t: Target) -> str | None:
    holder = read_lock(t)
    return holder.details(time.time()) if holder else None


def _waiting(control: state.Control, live_commit: str | None) -> str | None:
    """Why the newest commit the agent saw is not live, if it is not."""
    newest = control.agent.get("last_attempted") or control.agent.get("held_commit")
    if not isinstance(newest, str) or not newest or newest == live_commit:
        return hold_reason(control, "") if control.pin or control.suspended else None
    reason = hold_reason(control, newest)
    if reason is None and control.agent.get("failed_commit") == newest:
        reason = f"failed: {control.agent.get('last_error') or 'see the agent log'}"
    return f"{newest[:12]} is not live: {reason}" if reason else None


def history(
    config: Config, *, target: str | None = None, limit: int | None = None
) -> dict[str, list[HistoryEntry]]:
    """Newest first, per target."""
    out = {}
    for name, cfg in config.target(target).items():
        with open_target(name, cfg, config) as t:
            entries = list(reversed(state.read_history(t)))
            out[name] = entries[:limit] if limit else entries
    return out


def verify(
    config: Config,
    *,
    target: str | None = None,
    repair: bool = False,
    lock_timeout: float | None = None,
    progress: Progress = SILENT,
) -> list[VerifyResult]:
    """Compare each target's live files with the live release's manifest; optionally heal."""
    results = []
    for name, cfg in config.target(target).items():
        with open_target(name, cfg, config) as t:
            results.append(_verify_one(config, t, cfg, repair, progress, lock_timeout))
    return results


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
    return _verify_one(config, t, cfg, repair, progress, lock_timeout)


def _verify_one(
    config: Config,
    t: Target,
    cfg: TargetConfig,
    repair: bool,
    progress: Progress,
    lock_timeout: float | None = None,
) -> VerifyResult:
    live = t.live_release()
    manifest = state.read_manifest(t, live) if live else None
    if live is None:
        return VerifyResult(t.name, None, [])
    if manifest is None:  # a state file deleted on the target: nothing to compare with
        raise TargetError(
            f"target '{t.name}': the live release {live} has no manifest (.sitedeploy/manifests/"
            f"{live}.json is gone); deploy again to publish and record a new release"
        )
    drift = t.verify(live, manifest)
    if cfg.versions or cfg.previews:  # other release lines share the place (sitedeploy.versions)
        from ..versions.layout import own_drift

        drift, repair = own_drift(cfg, drift), repair and not cfg.versions
    if not repair or all(d.clean for d in drift):
        return VerifyResult(t.name, live, drift)
    record = state.read_release(t, live)
    assert record is not None
    source = synced_source(config)
    commit = source.commit(record.commit)
    built = build_release(build_config_at(config, source, commit), source, commit, progress=progress)
    _check_reproduced(t.name, live, manifest, built.manifest, drift)
    with Transaction(t, rules_for(cfg, lock_timeout=lock_timeout), "repair", progress=progress) as tx:
        tx.repair(live, manifest, built.root, drift)
    return VerifyResult(t.name, live, drift, repaired=True)


def _check_reproduced(name: str, live: str, want: Manifest, got: Manifest, drift: list[Drift]) -> None:
    needed = {p for d in drift for p in d.missing + d.changed}
    wrong = sorted(p for p in needed if got.get(p) != want.get(p))
    if wrong:
        raise RollbackError(
            f"target '{name}': rebuilding {live} did not reproduce {wrong[0]} (and {len(wrong) - 1} more); "
            "deploy a new release instead of repairing"
        )
